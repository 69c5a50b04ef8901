package field

import (
	"google.golang.org/grpc"

	ecogridv1 "ecogrid/api/ecogrid/v1"
)

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
	return s.reports.ExportReports(ctx, c, ExportFormat(req.GetFormat()), fl, w)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
