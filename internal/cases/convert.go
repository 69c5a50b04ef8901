package cases

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
)

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

// CaseToProto converts a case for the API, with overdue figures as of now.
func CaseToProto(c *Case, now time.Time) *ecogridv1.Case {
	p := &ecogridv1.Case{
		Id: c.ID, ReportId: c.ReportID, CountyCode: c.CountyCode, TownshipCode: c.TownshipCode,
		VillageCode: c.VillageCode, Category: c.Category,
		Severity:    ecogridv1.Severity(ecogridv1.Severity_value[c.Severity]),
		Description: c.Description, ReporterId: c.ReporterID, PhotoSha256: c.PhotoSHA256,
		ObservedAt: ts(c.ObservedAt), ReportedAt: timestamppb.New(c.ReportedAt),
		State: stateToProto(c.State), SupervisorId: c.SupervisorID, HandlerId: c.HandlerID,
		DispatchedAt: ts(c.DispatchedAt), Deadline: ts(c.Deadline),
		ExtensionDays: int32(c.ExtensionDays), PendingExtensionDays: int32(c.PendingExtensionDays),
		PendingExtensionReason: c.PendingExtensionReason, RectificationNote: c.RectificationNote,
		RectificationPhotoSha256: c.RectificationPhotos, RectifiedAt: ts(c.RectifiedAt),
		VerifiedBy: c.VerifiedBy, VerifiedAt: ts(c.VerifiedAt), ClosedAt: ts(c.ClosedAt),
		Escalated: c.EscalatedAt != nil, EscalatedAt: ts(c.EscalatedAt), EscalationReason: c.EscalationReason,
		Overdue: c.Overdue(now), OverdueDays: int32(c.OverdueDays(now)), ReopenCount: int32(c.ReopenCount),
		CreatedAt: timestamppb.New(c.CreatedAt), UpdatedAt: timestamppb.New(c.UpdatedAt),
		ZoneCodes: c.ZoneCodes, ReachCodes: c.ReachCodes, ZoneDeadline: ts(c.ZoneDeadline),
	}
	if c.HasLocation {
		p.Position = &ecogridv1.Position{Latitude: c.Latitude, Longitude: c.Longitude,
			CoordinateSystem: ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_WGS84}
	}
	for _, r := range c.Responsible {
		p.Responsible = append(p.Responsible, &ecogridv1.CaseResponsiblePerson{
			PersonId: r.PersonID, Name: r.Name, Role: r.Role, NodeCode: r.NodeCode})
	}
	for _, a := range NextSteps(c) {
		p.NextSteps = append(p.NextSteps, actionToProto(a))
	}
	return p
}

func stateToProto(s State) ecogridv1.CaseState {
	if s == "" {
		return ecogridv1.CaseState_CASE_STATE_UNSPECIFIED
	}
	return ecogridv1.CaseState(ecogridv1.CaseState_value["CASE_STATE_"+strings.ToUpper(string(s))])
}

func stateFromProto(s ecogridv1.CaseState) (State, bool) {
	if s == ecogridv1.CaseState_CASE_STATE_UNSPECIFIED {
		return "", false
	}
	name, ok := ecogridv1.CaseState_name[int32(s)]
	if !ok {
		return "", false
	}
	return State(strings.ToLower(strings.TrimPrefix(name, "CASE_STATE_"))), true
}

// StateFromName parses a state as written on a command line ("in_progress").
func StateFromName(name string) (State, bool) {
	s := State(strings.ToLower(strings.TrimSpace(name)))
	return s, validState(s)
}

func actionToProto(a Action) ecogridv1.CaseAction {
	return ecogridv1.CaseAction(ecogridv1.CaseAction_value["CASE_ACTION_"+strings.ToUpper(string(a))])
}

func ruleToProto(r CountyRule) *ecogridv1.DeadlineRule {
	return &ecogridv1.DeadlineRule{
		Severity:    ecogridv1.Severity(ecogridv1.Severity_value[r.Severity]),
		RectifyDays: int32(r.RectifyDays), MaxDays: int32(r.MaxDays), CountySpecific: r.CountySpecific,
	}
}
