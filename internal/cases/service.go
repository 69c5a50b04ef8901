package cases

import (
	"context"
	"log/slog"

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
