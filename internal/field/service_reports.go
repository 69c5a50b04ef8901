package field

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/structerr"
)

// SubmitReport implements FieldService.
func (s *Service) SubmitReport(ctx context.Context, req *ecogridv1.SubmitReportRequest) (*ecogridv1.SubmitReportResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	d, err := draftOf(req.GetReport())
	if err != nil {
		return nil, structerr.PrefixField(err, "report")
	}
	r, replayed, err := s.reports.SubmitReport(ctx, c, d)
	if err != nil {
		return nil, structerr.PrefixField(err, "report")
	}
	return &ecogridv1.SubmitReportResponse{Report: reportPB(r), Replayed: replayed}, nil
}

// SubmitReportBatch implements FieldService.
func (s *Service) SubmitReportBatch(ctx context.Context, req *ecogridv1.SubmitReportBatchRequest) (*ecogridv1.SubmitReportBatchResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	drafts := make([]Draft, len(req.GetReports()))
	bad := make([]error, len(drafts))
	for i, d := range req.GetReports() {
		drafts[i], bad[i] = draftOf(d)
	}
	if len(drafts) > s.reports.cfg.MaxBatchReports || len(drafts) == 0 {
		_, err := s.reports.SubmitReportBatch(ctx, c, drafts)
		return nil, err
	}
	out := &ecogridv1.SubmitReportBatchResponse{Results: make([]*ecogridv1.SubmitReportBatchResult, len(drafts))}
	for i, d := range drafts {
		res := &ecogridv1.SubmitReportBatchResult{ReportId: req.GetReports()[i].GetReportId()}
		out.Results[i] = res
		var r Report
		var replayed bool
		err := bad[i]
		if err == nil {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			r, replayed, err = s.reports.SubmitReport(ctx, c, d)
		}
		if err != nil {
			st := status.Convert(structerr.ToStatus(err))
			if st.Code() == codes.Internal {
				s.log.ErrorContext(ctx, "batch report failed", "report_id", res.ReportId, "error", err)
			}
			res.ErrorCode, res.ErrorMessage = int32(st.Code()), st.Message()
			continue
		}
		res.Report, res.Replayed = reportPB(r), replayed
	}
	return out, nil
}

// GetReport implements FieldService.
func (s *Service) GetReport(ctx context.Context, req *ecogridv1.GetReportRequest) (*ecogridv1.GetReportResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	r, err := s.reports.GetReport(ctx, c, req.GetReportId())
	if err != nil {
		return nil, err
	}
	return &ecogridv1.GetReportResponse{Report: reportPB(r)}, nil
}

// ListReports implements FieldService.
func (s *Service) ListReports(ctx context.Context, req *ecogridv1.ListReportsRequest) (*ecogridv1.ListReportsResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	fl, err := filterOf(req.GetFilter())
	if err != nil {
		return nil, err
	}
	reports, next, err := s.reports.ListReports(ctx, c, fl, int(req.GetPage().GetPageSize()), req.GetPage().GetPageToken())
	if err != nil {
		return nil, err
	}
	out := &ecogridv1.ListReportsResponse{NextPageToken: next}
	for _, r := range reports {
		out.Reports = append(out.Reports, reportPB(r))
	}
	return out, nil
}

// ListCategories implements FieldService.
func (s *Service) ListCategories(ctx context.Context, req *ecogridv1.ListCategoriesRequest) (*ecogridv1.ListCategoriesResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	county := req.GetCountyCode()
	if county == "" {
		county = homeCounty(c)
	}
	cats, err := s.reports.ListCategories(ctx, county)
	if err != nil {
		return nil, err
	}
	out := &ecogridv1.ListCategoriesResponse{}
	for _, k := range cats {
		out.Categories = append(out.Categories, &ecogridv1.Category{Code: k.Code, Name: k.Name, CountyCode: k.CountyCode})
	}
	return out, nil
}

// CreateCategory implements FieldService.
func (s *Service) CreateCategory(ctx context.Context, req *ecogridv1.CreateCategoryRequest) (*ecogridv1.CreateCategoryResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	k, err := s.reports.CreateCategory(ctx, c, Category{CountyCode: req.GetCountyCode(), Code: req.GetCode(), Name: req.GetName()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.CreateCategoryResponse{Category: &ecogridv1.Category{Code: k.Code, Name: k.Name, CountyCode: k.CountyCode}}, nil
}
