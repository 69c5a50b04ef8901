package field

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"
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
		return nil, err
	}
	r, replayed, err := s.f.SubmitReport(ctx, c, d)
	if err != nil {
		return nil, err
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
	if len(drafts) > s.f.cfg.MaxBatchReports || len(drafts) == 0 {
		_, err := s.f.SubmitReportBatch(ctx, c, drafts)
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
			r, replayed, err = s.f.SubmitReport(ctx, c, d)
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
	r, err := s.f.GetReport(ctx, c, req.GetReportId())
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
	reports, next, err := s.f.ListReports(ctx, c, fl, int(req.GetPage().GetPageSize()), req.GetPage().GetPageToken())
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
	cats, err := s.f.ListCategories(ctx, county)
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
	k, err := s.f.CreateCategory(ctx, c, Category{CountyCode: req.GetCountyCode(), Code: req.GetCode(), Name: req.GetName()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.CreateCategoryResponse{Category: &ecogridv1.Category{Code: k.Code, Name: k.Name, CountyCode: k.CountyCode}}, nil
}

// StartPatrol implements FieldService.
func (s *Service) StartPatrol(ctx context.Context, req *ecogridv1.StartPatrolRequest) (*ecogridv1.StartPatrolResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	started, err := timeOf("started_at", req.GetStartedAt())
	if err != nil {
		return nil, err
	}
	p, err := s.f.StartPatrol(ctx, c, req.GetPatrolId(), started)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.StartPatrolResponse{Patrol: patrolPB(p)}, nil
}

// AppendTrackPoints implements FieldService.
func (s *Service) AppendTrackPoints(ctx context.Context, req *ecogridv1.AppendTrackPointsRequest) (*ecogridv1.AppendTrackPointsResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	pts := make([]TrackPoint, len(req.GetPoints()))
	for i, p := range req.GetPoints() {
		// A bad point is refused inside the domain and counted; conversion
		// errors leave a zero point, which the domain refuses the same way.
		at, _ := timeOf("recorded_at", p.GetRecordedAt())
		pos, _ := positionOf(p.GetPosition())
		pts[i] = TrackPoint{RecordedAt: at, Position: pos}
	}
	res, err := s.f.AppendTrackPoints(ctx, c, req.GetPatrolId(), pts)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.AppendTrackPointsResponse{
		Added: int32(res.Added), Duplicates: int32(res.Duplicates), PointCount: res.PointCount,
		Rejected: int32(res.Rejected), FirstRejection: res.FirstRejection,
	}, nil
}

// EndPatrol implements FieldService.
func (s *Service) EndPatrol(ctx context.Context, req *ecogridv1.EndPatrolRequest) (*ecogridv1.EndPatrolResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	ended, err := timeOf("ended_at", req.GetEndedAt())
	if err != nil {
		return nil, err
	}
	p, err := s.f.EndPatrol(ctx, c, req.GetPatrolId(), ended)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.EndPatrolResponse{Patrol: patrolPB(p)}, nil
}

// GetPatrol implements FieldService.
func (s *Service) GetPatrol(ctx context.Context, req *ecogridv1.GetPatrolRequest) (*ecogridv1.GetPatrolResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.f.GetPatrol(ctx, c, req.GetPatrolId())
	if err != nil {
		return nil, err
	}
	return &ecogridv1.GetPatrolResponse{Patrol: patrolPB(p)}, nil
}

// GetPatrolCompliance implements FieldService.
func (s *Service) GetPatrolCompliance(ctx context.Context, req *ecogridv1.GetPatrolComplianceRequest) (*ecogridv1.GetPatrolComplianceResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	from, err := timeOf("from", req.GetFrom())
	if err != nil {
		return nil, err
	}
	to, err := timeOf("to", req.GetTo())
	if err != nil {
		return nil, err
	}
	rows, err := s.f.PatrolCompliance(ctx, c, req.GetNodeCode(), Period(req.GetPeriod()), from, to)
	if err != nil {
		return nil, err
	}
	out := &ecogridv1.GetPatrolComplianceResponse{}
	for _, r := range rows {
		out.Rows = append(out.Rows, &ecogridv1.ComplianceRow{
			InspectorId: r.InspectorID, CellCode: r.CellCode, PeriodStart: tsOf(r.PeriodStart),
			Required: int32(r.Required), Done: int32(r.Done), Implausible: int32(r.Implausible), Compliant: r.Compliant(),
		})
	}
	return out, nil
}

// UploadPhoto implements FieldService. The stream's first message is the
// header; chunks follow. Whatever arrived before a dropped connection is
// kept; the response says where to resume when the stream ended early.
func (s *Service) UploadPhoto(stream grpc.ClientStreamingServer[ecogridv1.UploadPhotoRequest, ecogridv1.UploadPhotoResponse]) error {
	ctx := stream.Context()
	c, err := callerOf(ctx)
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return structerr.NewInvalidArgument("the first message of an upload must be its header")
	}
	u, err := s.f.BeginUpload(ctx, c, UploadHeader{
		UploadID: h.GetUploadId(), ReportID: h.GetReportId(), Size: h.GetSize(), SHA256: h.GetSha256(), ContentType: h.GetContentType(),
	})
	if err != nil {
		return err
	}
	if st := u.Status(); st.Complete {
		// Stored already (this upload before, or the same photo by anyone).
		// An app that sends the header alone and closes learns it without
		// sending a byte; a chunk after completion is refused, and the app
		// asks GetUploadStatus.
		_, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(uploadResponse(st))
		}
		if err != nil {
			return err
		}
		return structerr.NewFailedPrecondition("upload %s is already complete", st.UploadID)
	}
	defer func() {
		if err := u.Close(ctx); err != nil {
			s.log.ErrorContext(ctx, "keeping upload progress failed", "upload_id", u.h.UploadID, "error", err)
		}
	}()
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if err := u.Close(ctx); err != nil {
				return err
			}
			return stream.SendAndClose(uploadResponse(u.Status()))
		}
		if err != nil {
			return err
		}
		chunk := msg.GetChunk()
		if chunk == nil {
			return structerr.NewInvalidArgument("only chunks may follow the header")
		}
		st, err := u.Write(ctx, chunk.GetOffset(), chunk.GetData())
		if err != nil {
			return err
		}
		if st.Complete {
			return stream.SendAndClose(uploadResponse(st))
		}
	}
}

func uploadResponse(st UploadStatus) *ecogridv1.UploadPhotoResponse {
	out := &ecogridv1.UploadPhotoResponse{UploadId: st.UploadID, State: ecogridv1.UploadState_UPLOAD_STATE_PARTIAL,
		CommittedOffset: st.Committed, Photo: photoPB(st.Photo), ExifMismatch: st.ExifMismatch}
	if st.Complete {
		out.State = ecogridv1.UploadState_UPLOAD_STATE_COMPLETE
	}
	return out
}

// GetUploadStatus implements FieldService.
func (s *Service) GetUploadStatus(ctx context.Context, req *ecogridv1.GetUploadStatusRequest) (*ecogridv1.GetUploadStatusResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.f.UploadStatus(ctx, c, req.GetUploadId(), req.GetReportId(), req.GetSha256())
	if err != nil {
		return nil, err
	}
	r := uploadResponse(st)
	return &ecogridv1.GetUploadStatusResponse{UploadId: r.UploadId, State: r.State, CommittedOffset: r.CommittedOffset, Size: st.Size, Photo: r.Photo}, nil
}

// downloadChunk is the size of DownloadPhoto messages.
const downloadChunk = 256 << 10

// DownloadPhoto implements FieldService.
func (s *Service) DownloadPhoto(req *ecogridv1.DownloadPhotoRequest, stream grpc.ServerStreamingServer[ecogridv1.DownloadPhotoResponse]) error {
	ctx := stream.Context()
	c, err := callerOf(ctx)
	if err != nil {
		return err
	}
	meta, r, err := s.f.OpenPhoto(ctx, c, req.GetSha256())
	if err != nil {
		return err
	}
	defer r.Close()
	buf := make([]byte, downloadChunk)
	off := int64(0)
	first := true
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 || first {
			msg := &ecogridv1.DownloadPhotoResponse{Offset: off, Data: buf[:n]}
			if first {
				msg.Photo = photoPB(&meta)
				first = false
			}
			if err := stream.Send(msg); err != nil {
				return err
			}
			off += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// ExportReports implements FieldService.
func (s *Service) ExportReports(req *ecogridv1.ExportReportsRequest, stream grpc.ServerStreamingServer[ecogridv1.ExportReportsResponse]) error {
	ctx := stream.Context()
	c, err := callerOf(ctx)
	if err != nil {
		return err
	}
	fl, err := filterOf(req.GetFilter())
	if err != nil {
		return err
	}
	w := writerFunc(func(p []byte) (int, error) {
		if err := stream.Send(&ecogridv1.ExportReportsResponse{Data: p}); err != nil {
			return 0, err
		}
		return len(p), nil
	})
	return s.f.ExportReports(ctx, c, ExportFormat(req.GetFormat()), fl, w)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
