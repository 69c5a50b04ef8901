package cases

import (
	"context"

	ecogridv1 "ecogrid/api/ecogrid/v1"
)

// CaseService department steps: thin handlers over Tracker.DepartmentStep.

func (s *Service) departmentStep(ctx context.Context, caseID, requestID string, a Action, in DepartmentInput) (*ecogridv1.Case, error) {
	caller, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.tracker.DepartmentStep(ctx, caller, caseID, requestID, a, in)
	if err != nil {
		return nil, err
	}
	return s.caseForCaller(ctx, caller, c)
}

// TransferCase implements CaseService.
func (s *Service) TransferCase(ctx context.Context, req *ecogridv1.TransferCaseRequest) (*ecogridv1.TransferCaseResponse, error) {
	c, err := s.departmentStep(ctx, req.GetCaseId(), req.GetRequestId(), ActionTransfer,
		DepartmentInput{DepartmentID: req.GetDepartmentId(), Note: req.GetNote()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.TransferCaseResponse{Case: c}, nil
}

// AcceptTransfer implements CaseService.
func (s *Service) AcceptTransfer(ctx context.Context, req *ecogridv1.AcceptTransferRequest) (*ecogridv1.AcceptTransferResponse, error) {
	c, err := s.departmentStep(ctx, req.GetCaseId(), req.GetRequestId(), ActionAcceptTransfer,
		DepartmentInput{DepartmentID: req.GetDepartmentId(), Note: req.GetNote()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.AcceptTransferResponse{Case: c}, nil
}

// RefuseTransfer implements CaseService.
func (s *Service) RefuseTransfer(ctx context.Context, req *ecogridv1.RefuseTransferRequest) (*ecogridv1.RefuseTransferResponse, error) {
	c, err := s.departmentStep(ctx, req.GetCaseId(), req.GetRequestId(), ActionRefuseTransfer,
		DepartmentInput{DepartmentID: req.GetDepartmentId(), Note: req.GetReason()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.RefuseTransferResponse{Case: c}, nil
}

// OpenJointHandling implements CaseService.
func (s *Service) OpenJointHandling(ctx context.Context, req *ecogridv1.OpenJointHandlingRequest) (*ecogridv1.OpenJointHandlingResponse, error) {
	in := DepartmentInput{DepartmentID: req.GetLeadDepartmentId(), Cooperating: req.GetCooperatingDepartmentIds(), Note: req.GetNote()}
	if len(req.GetTasks()) > 0 {
		in.Tasks = make(map[string]string, len(req.GetTasks()))
		for _, t := range req.GetTasks() {
			in.Tasks[t.GetDepartmentId()] = t.GetTask()
		}
	}
	c, err := s.departmentStep(ctx, req.GetCaseId(), req.GetRequestId(), ActionOpenJoint, in)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.OpenJointHandlingResponse{Case: c}, nil
}

// CompleteJointTask implements CaseService.
func (s *Service) CompleteJointTask(ctx context.Context, req *ecogridv1.CompleteJointTaskRequest) (*ecogridv1.CompleteJointTaskResponse, error) {
	c, err := s.departmentStep(ctx, req.GetCaseId(), req.GetRequestId(), ActionCompleteJoint,
		DepartmentInput{DepartmentID: req.GetDepartmentId(), Note: req.GetNote(), Photos: req.GetPhotoSha256()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.CompleteJointTaskResponse{Case: c}, nil
}

// VerifyDepartmentHandling implements CaseService.
func (s *Service) VerifyDepartmentHandling(ctx context.Context, req *ecogridv1.VerifyDepartmentHandlingRequest) (*ecogridv1.VerifyDepartmentHandlingResponse, error) {
	c, err := s.departmentStep(ctx, req.GetCaseId(), req.GetRequestId(), ActionDepartmentVerify,
		DepartmentInput{DepartmentID: req.GetDepartmentId(), Note: req.GetNote()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.VerifyDepartmentHandlingResponse{Case: c}, nil
}
