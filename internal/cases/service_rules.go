package cases

import (
	"context"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/structerr"
)

// CaseService deadline rules of a county.

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
