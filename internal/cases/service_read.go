package cases

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// CaseService reads: lists, one case, its timeline, the cases to hand over.

// ListCases implements CaseService.
func (s *Service) ListCases(ctx context.Context, req *ecogridv1.ListCasesRequest) (*ecogridv1.ListCasesResponse, error) {
	caller, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	f := Filter{NodeCode: req.GetNodeCode(), OverdueOnly: req.GetOverdueOnly(), EscalatedOnly: req.GetEscalatedOnly(),
		HandlerID: req.GetHandlerId(), Category: strings.TrimSpace(req.GetCategory()),
		PageSize: int(req.GetPage().GetPageSize()), PageToken: req.GetPage().GetPageToken()}
	if req.GetCreatedFrom() != nil {
		f.CreatedFrom = req.GetCreatedFrom().AsTime()
	}
	if req.GetCreatedTo() != nil {
		f.CreatedTo = req.GetCreatedTo().AsTime()
	}
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
	p, err := s.caseForCaller(ctx, caller, c)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.GetCaseResponse{Case: p}, nil
}

// caseForCaller is the case as the API shows it to caller: with the steps
// they may take now.
func (s *Service) caseForCaller(ctx context.Context, caller scope.Caller, c *Case) (*ecogridv1.Case, error) {
	p := CaseToProto(c, time.Now())
	steps, err := s.tracker.StepsFor(ctx, caller, c)
	if err != nil {
		return nil, err
	}
	for _, a := range steps {
		p.YourSteps = append(p.YourSteps, actionToProto(a))
	}
	return p, nil
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
