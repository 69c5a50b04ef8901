package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
	"ecogrid/internal/tabular"
)

// Service is the AuditService.
type Service struct {
	ecogridv1.UnimplementedAuditServiceServer
	auditor *Auditor
	logger  *slog.Logger
}

var _ ecogridv1.AuditServiceServer = (*Service)(nil)

// NewService returns the AuditService over a.
func NewService(a *Auditor, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{auditor: a, logger: logger}
}

// TenureAudit implements AuditService.
func (s *Service) TenureAudit(ctx context.Context, req *ecogridv1.TenureAuditRequest) (*ecogridv1.TenureAuditResponse, error) {
	c, ok := scope.FromContext(ctx)
	if !ok {
		return nil, structerr.NewUnauthenticated("sign in to make an audit")
	}
	r := Request{ReportID: req.GetReportId(), PersonID: req.GetPersonId(), AssignmentID: req.GetAssignmentId()}
	if req.GetFromTime() != nil {
		r.From = req.GetFromTime().AsTime()
	}
	if req.GetToTime() != nil {
		r.To = req.GetToTime().AsTime()
	}
	rep, err := s.auditor.TenureAudit(ctx, c, r)
	if err != nil {
		return nil, err
	}
	resp, err := reportProto(rep)
	if err != nil {
		return nil, err
	}
	switch req.GetFormat() {
	case ecogridv1.TenureAuditFormat_TENURE_AUDIT_FORMAT_CSV:
		var b bytes.Buffer
		if err := WriteCSV(&b, rep); err != nil {
			return nil, err
		}
		resp.Document, resp.ContentType = b.Bytes(), tabular.CSV.ContentType()
	case ecogridv1.TenureAuditFormat_TENURE_AUDIT_FORMAT_XLSX:
		var b bytes.Buffer
		if err := WriteTable(&b, rep, tabular.XLSX); err != nil {
			return nil, err
		}
		resp.Document, resp.ContentType = b.Bytes(), tabular.XLSX.ContentType()
	case ecogridv1.TenureAuditFormat_TENURE_AUDIT_FORMAT_PDF:
		var b bytes.Buffer
		if err := WritePDF(&b, rep); err != nil {
			return nil, err
		}
		resp.Document, resp.ContentType = b.Bytes(), "application/pdf"
	}
	s.logger.Info("tenure audit made", "report_id", rep.ReportID, "person_id", rep.Facts.PersonID,
		"auditor_id", rep.AuditorID, "cases", rep.Facts.Summary.Cases, "records", len(rep.Evidence))
	return resp, nil
}

func reportProto(rep *Report) (*ecogridv1.TenureAuditResponse, error) {
	data, err := json.Marshal(rep)
	if err != nil {
		return nil, err
	}
	f, s := rep.Facts, rep.Facts.Summary
	resp := &ecogridv1.TenureAuditResponse{
		ReportId: rep.ReportID, PersonId: f.PersonID, PersonName: f.PersonName,
		FromTime: timestamppb.New(f.Params.From), ToTime: timestamppb.New(f.Params.To),
		Summary: &ecogridv1.TenureAuditSummary{
			Posts: int32(s.Posts), Cases: int32(s.Cases), Accepted: int32(s.Accepted), MeanResponseHours: s.MeanResponseHours,
			Closed: int32(s.Closed), ClosedOnTime: int32(s.ClosedOnTime), ClosedLate: int32(s.ClosedLate), Overdue: int32(s.Overdue),
			OverdueDays: int32(s.OverdueDays), Escalated: int32(s.Escalated), Reopened: int32(s.Reopened), OpenAtEnd: int32(s.OpenAtEnd),
			ReportsFiled: int32(s.ReportsFiled), Acts: int32(s.Acts),
		},
		GenerationRecord: citeText(rep.Generation),
		ReportJson:       data,
	}
	if resp.PersonName == "" {
		resp.PersonName = rep.PersonNames[f.PersonID]
	}
	for _, m := range rep.Patrols {
		resp.PatrolMonths = append(resp.PatrolMonths, &ecogridv1.TenureAuditPatrolMonth{AssignmentId: m.AssignmentID, CellCode: m.CellCode,
			CellName: m.CellName, Month: m.Month, Required: int32(m.Required), Done: int32(m.Done), Flagged: int32(m.Flagged), Compliant: m.Compliant})
	}
	for _, c := range f.Cases {
		pc := &ecogridv1.TenureAuditCase{CaseId: c.CaseID, CountyCode: c.County, NodeCode: c.NodeCode, NodeName: rep.NodeNames[c.NodeCode],
			OpenedAt: ts(c.OpenedAt), Deadline: ts(c.Deadline), ClosedAt: ts(c.ClosedAt), OverdueDays: int32(c.OverdueDays),
			Escalated: c.Escalated, Reopened: int32(c.Reopened), StateAtEnd: c.StateAtEnd, OpenAtEnd: c.OpenAtEnd, Responsible: c.Responsible}
		for _, x := range c.Cites {
			pc.LedgerRecords = append(pc.LedgerRecords, citeText(x))
		}
		resp.Cases = append(resp.Cases, pc)
	}
	return resp, nil
}

func citeText(c Cite) string { return c.County + "/" + strconv.FormatInt(c.Seq, 10) }

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}
