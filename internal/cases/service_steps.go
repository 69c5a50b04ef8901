package cases

import (
	"context"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/structerr"
)

// CaseService workflow steps: one thin handler per action of the Workflow.

func (s *Service) step(ctx context.Context, caseID, requestID string, a Action, in Input) (*ecogridv1.Case, error) {
	caller, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.tracker.Transition(ctx, caller, caseID, requestID, a, in)
	if err != nil {
		return nil, err
	}
	return s.caseForCaller(ctx, caller, c)
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
