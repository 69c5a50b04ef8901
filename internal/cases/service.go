package cases

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Service is CaseService on cased: thin handlers over the Tracker.
type Service struct {
	ecogridv1.UnimplementedCaseServiceServer
	tracker *Tracker
	log     *slog.Logger
}

var _ ecogridv1.CaseServiceServer = (*Service)(nil)

// NewService returns the gRPC service over tracker.
func NewService(tracker *Tracker, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{tracker: tracker, log: log}
}

func callerFrom(ctx context.Context) (scope.Caller, error) {
	c, ok := scope.FromContext(ctx)
	if !ok || c.PersonID == "" {
		return scope.Caller{}, structerr.NewUnauthenticated("sign in first")
	}
	return c, nil
}

// ListCases implements CaseService.
func (s *Service) ListCases(ctx context.Context, req *ecogridv1.ListCasesRequest) (*ecogridv1.ListCasesResponse, error) {
	caller, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	f := Filter{NodeCode: req.GetNodeCode(), OverdueOnly: req.GetOverdueOnly(), EscalatedOnly: req.GetEscalatedOnly(),
		PageSize: int(req.GetPage().GetPageSize()), PageToken: req.GetPage().GetPageToken()}
	for _, st := range req.GetStates() {
		state, ok := stateFromProto(st)
		if !ok {
			return nil, structerr.NewInvalidArgument("unknown case state %v", st)
		}
		f.States = append(f.States, state)
	}
	list, next, err := s.tracker.List(ctx, caller, f)
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListCasesResponse{NextPageToken: next}
	now := time.Now()
	for _, c := range list {
		resp.Cases = append(resp.Cases, CaseToProto(c, now))
	}
	return resp, nil
}

// GetCase implements CaseService.
func (s *Service) GetCase(ctx context.Context, req *ecogridv1.GetCaseRequest) (*ecogridv1.GetCaseResponse, error) {
	caller, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.tracker.Get(ctx, caller, req.GetCaseId())
	if err != nil {
		return nil, err
	}
	return &ecogridv1.GetCaseResponse{Case: CaseToProto(c, time.Now())}, nil
}

// GetCaseTimeline implements CaseService.
func (s *Service) GetCaseTimeline(ctx context.Context, req *ecogridv1.GetCaseTimelineRequest) (*ecogridv1.GetCaseTimelineResponse, error) {
	caller, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := s.tracker.Timeline(ctx, caller, req.GetCaseId())
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.GetCaseTimelineResponse{}
	for _, e := range entries {
		details, _ := json.Marshal(e.Details)
		resp.Entries = append(resp.Entries, &ecogridv1.CaseTimelineEntry{
			Id: e.ID, Action: actionToProto(e.Action), FromState: stateToProto(e.From), ToState: stateToProto(e.To),
			ActorId: e.ActorID, ActorRole: e.ActorRole, ActorNodeCode: e.ActorNodeCode, Note: e.Note,
			DetailsJson: string(details), At: timestamppb.New(e.At),
		})
	}
	return resp, nil
}

// ListHandoverCases implements CaseService.
func (s *Service) ListHandoverCases(ctx context.Context, req *ecogridv1.ListHandoverCasesRequest) (*ecogridv1.ListHandoverCasesResponse, error) {
	caller, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.GetPersonId()) == "" {
		return nil, structerr.NewInvalidArgument("person_id is required")
	}
	list, err := s.tracker.OpenCasesHeldBy(ctx, req.GetPersonId())
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListHandoverCasesResponse{}
	now := time.Now()
	for _, c := range list {
		if Visible(caller, c) {
			resp.Cases = append(resp.Cases, CaseToProto(c, now))
		}
	}
	return resp, nil
}

func (s *Service) step(ctx context.Context, caseID, requestID string, a Action, in Input) (*ecogridv1.Case, error) {
	caller, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.tracker.Transition(ctx, caller, caseID, requestID, a, in)
	if err != nil {
		return nil, err
	}
	return CaseToProto(c, time.Now()), nil
}

// AcceptCase implements CaseService.
func (s *Service) AcceptCase(ctx context.Context, req *ecogridv1.AcceptCaseRequest) (*ecogridv1.AcceptCaseResponse, error) {
	c, err := s.step(ctx, req.GetCaseId(), req.GetRequestId(), ActionAccept, Input{Note: req.GetNote()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.AcceptCaseResponse{Case: c}, nil
}

// RejectCase implements CaseService.
func (s *Service) RejectCase(ctx context.Context, req *ecogridv1.RejectCaseRequest) (*ecogridv1.RejectCaseResponse, error) {
	c, err := s.step(ctx, req.GetCaseId(), req.GetRequestId(), ActionReject, Input{Note: req.GetReason()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.RejectCaseResponse{Case: c}, nil
}

// DispatchCase implements CaseService.
func (s *Service) DispatchCase(ctx context.Context, req *ecogridv1.DispatchCaseRequest) (*ecogridv1.DispatchCaseResponse, error) {
	in := Input{Note: req.GetNote(), HandlerID: req.GetHandlerId()}
	if req.GetDeadline() != nil {
		if err := req.GetDeadline().CheckValid(); err != nil {
			return nil, structerr.NewInvalidArgument("deadline: %v", err)
		}
		d := req.GetDeadline().AsTime()
		in.Deadline = &d
	}
	c, err := s.step(ctx, req.GetCaseId(), req.GetRequestId(), ActionDispatch, in)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.DispatchCaseResponse{Case: c}, nil
}

// StartWork implements CaseService.
func (s *Service) StartWork(ctx context.Context, req *ecogridv1.StartWorkRequest) (*ecogridv1.StartWorkResponse, error) {
	c, err := s.step(ctx, req.GetCaseId(), req.GetRequestId(), ActionStartWork, Input{Note: req.GetNote()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.StartWorkResponse{Case: c}, nil
}

// SubmitRectification implements CaseService.
func (s *Service) SubmitRectification(ctx context.Context, req *ecogridv1.SubmitRectificationRequest) (*ecogridv1.SubmitRectificationResponse, error) {
	c, err := s.step(ctx, req.GetCaseId(), req.GetRequestId(), ActionSubmitRectification,
		Input{Note: req.GetNote(), Photos: req.GetPhotoSha256()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.SubmitRectificationResponse{Case: c}, nil
}

// VerifyRectification implements CaseService.
func (s *Service) VerifyRectification(ctx context.Context, req *ecogridv1.VerifyRectificationRequest) (*ecogridv1.VerifyRectificationResponse, error) {
	c, err := s.step(ctx, req.GetCaseId(), req.GetRequestId(), ActionVerify, Input{Note: req.GetNote()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.VerifyRectificationResponse{Case: c}, nil
}

// CloseCase implements CaseService.
func (s *Service) CloseCase(ctx context.Context, req *ecogridv1.CloseCaseRequest) (*ecogridv1.CloseCaseResponse, error) {
	c, err := s.step(ctx, req.GetCaseId(), req.GetRequestId(), ActionClose, Input{Note: req.GetNote()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.CloseCaseResponse{Case: c}, nil
}

// ReturnCase implements CaseService.
func (s *Service) ReturnCase(ctx context.Context, req *ecogridv1.ReturnCaseRequest) (*ecogridv1.ReturnCaseResponse, error) {
	c, err := s.step(ctx, req.GetCaseId(), req.GetRequestId(), ActionReturn, Input{Note: req.GetReason()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.ReturnCaseResponse{Case: c}, nil
}

// RequestExtension implements CaseService.
func (s *Service) RequestExtension(ctx context.Context, req *ecogridv1.RequestExtensionRequest) (*ecogridv1.RequestExtensionResponse, error) {
	c, err := s.step(ctx, req.GetCaseId(), req.GetRequestId(), ActionRequestExtension,
		Input{Note: req.GetReason(), ExtensionDays: int(req.GetDays())})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.RequestExtensionResponse{Case: c}, nil
}

// ApproveExtension implements CaseService.
func (s *Service) ApproveExtension(ctx context.Context, req *ecogridv1.ApproveExtensionRequest) (*ecogridv1.ApproveExtensionResponse, error) {
	c, err := s.step(ctx, req.GetCaseId(), req.GetRequestId(), ActionApproveExtension, Input{Note: req.GetNote()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.ApproveExtensionResponse{Case: c}, nil
}

// DeclineExtension implements CaseService.
func (s *Service) DeclineExtension(ctx context.Context, req *ecogridv1.DeclineExtensionRequest) (*ecogridv1.DeclineExtensionResponse, error) {
	c, err := s.step(ctx, req.GetCaseId(), req.GetRequestId(), ActionDeclineExtension, Input{Note: req.GetNote()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.DeclineExtensionResponse{Case: c}, nil
}

// ReopenCase implements CaseService.
func (s *Service) ReopenCase(ctx context.Context, req *ecogridv1.ReopenCaseRequest) (*ecogridv1.ReopenCaseResponse, error) {
	c, err := s.step(ctx, req.GetCaseId(), req.GetRequestId(), ActionReopen, Input{Note: req.GetReason()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.ReopenCaseResponse{Case: c}, nil
}

// ReassignCase implements CaseService.
func (s *Service) ReassignCase(ctx context.Context, req *ecogridv1.ReassignCaseRequest) (*ecogridv1.ReassignCaseResponse, error) {
	c, err := s.step(ctx, req.GetCaseId(), req.GetRequestId(), ActionReassign,
		Input{Note: req.GetReason(), HandlerID: req.GetHandlerId()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.ReassignCaseResponse{Case: c}, nil
}

// EscalateCase implements CaseService.
func (s *Service) EscalateCase(ctx context.Context, req *ecogridv1.EscalateCaseRequest) (*ecogridv1.EscalateCaseResponse, error) {
	c, err := s.step(ctx, req.GetCaseId(), req.GetRequestId(), ActionEscalate, Input{Note: req.GetReason()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.EscalateCaseResponse{Case: c}, nil
}

// ListDeadlineRules implements CaseService.
func (s *Service) ListDeadlineRules(ctx context.Context, req *ecogridv1.ListDeadlineRulesRequest) (*ecogridv1.ListDeadlineRulesResponse, error) {
	caller, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	rules, err := s.tracker.Rules(ctx, caller, req.GetCountyCode())
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListDeadlineRulesResponse{}
	for _, r := range rules {
		resp.Rules = append(resp.Rules, ruleToProto(r))
	}
	return resp, nil
}

// SetDeadlineRule implements CaseService.
func (s *Service) SetDeadlineRule(ctx context.Context, req *ecogridv1.SetDeadlineRuleRequest) (*ecogridv1.SetDeadlineRuleResponse, error) {
	caller, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	r := req.GetRule()
	if r == nil || r.GetSeverity() == ecogridv1.Severity_SEVERITY_UNSPECIFIED {
		return nil, structerr.NewInvalidArgument("rule with a severity is required")
	}
	got, err := s.tracker.SetRule(ctx, caller, req.GetCountyCode(), DeadlineRule{
		Severity: r.GetSeverity().String(), RectifyDays: int(r.GetRectifyDays()), MaxDays: int(r.GetMaxDays())})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.SetDeadlineRuleResponse{Rule: ruleToProto(got)}, nil
}
