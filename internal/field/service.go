package field

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/coord"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Service is the FieldService gRPC server: thin handlers that read the
// caller, convert messages and call the aggregate the RPC is about, one
// file per group of RPCs (service_reports.go, service_patrols.go,
// service_photos.go, service_export.go).
type Service struct {
	ecogridv1.UnimplementedFieldServiceServer
	reports    *Reports
	patrols    *Patrols
	photos     *Photos
	compliance *Compliance
	log        *slog.Logger
}

var _ ecogridv1.FieldServiceServer = (*Service)(nil)

// NewService returns the gRPC service over the field domain.
func NewService(f *Field, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{reports: f.Reports, patrols: f.Patrols, photos: f.Photos, compliance: f.Compliance, log: logger}
}

func callerOf(ctx context.Context) (scope.Caller, error) {
	c, ok := scope.FromContext(ctx)
	if !ok || c.PersonID == "" {
		return scope.Caller{}, structerr.NewUnauthenticated("sign in first")
	}
	return c, nil
}

// timeOf converts an optional timestamp; nil is the zero time.
func timeOf(name string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, structerr.NewInvalidArgument("%s is not a valid time", name)
	}
	return ts.AsTime(), nil
}

func tsOf(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func positionOf(p *ecogridv1.Position) (Position, error) {
	if p == nil {
		return Position{}, structerr.NewInvalidArgument("position is missing")
	}
	return Position{Lat: p.GetLatitude(), Lon: p.GetLongitude(), System: coord.System(p.GetCoordinateSystem()), AccuracyM: p.GetAccuracyM()}, nil
}

func positionPB(p Position) *ecogridv1.Position {
	return &ecogridv1.Position{Latitude: p.Lat, Longitude: p.Lon, CoordinateSystem: ecogridv1.CoordinateSystem(p.System), AccuracyM: p.AccuracyM}
}

func draftOf(d *ecogridv1.ReportDraft) (Draft, error) {
	if d == nil {
		return Draft{}, structerr.NewInvalidArgument("report is missing")
	}
	observed, err := timeOf("observed_at", d.GetObservedAt())
	if err != nil {
		return Draft{}, err
	}
	pos, err := positionOf(d.GetPosition())
	if err != nil {
		return Draft{}, err
	}
	return Draft{
		ID: d.GetReportId(), ObservedAt: observed, Category: d.GetCategory(), Severity: Severity(d.GetSeverity()),
		Description: d.GetDescription(), Position: pos, PatrolID: d.GetPatrolId(), PhotoSHA256: d.GetPhotoSha256(),
		Violation: d.GetViolation(),
	}, nil
}

func reportPB(r Report) *ecogridv1.Report {
	return &ecogridv1.Report{
		ReportId: r.ID, ReporterId: r.ReporterID, ObservedAt: tsOf(r.ObservedAt), ReceivedAt: tsOf(r.ReceivedAt),
		Category: r.Category, Severity: ecogridv1.Severity(r.Severity), Description: r.Description,
		OriginalPosition: positionPB(r.Position), Latitude: r.Lat, Longitude: r.Lon,
		Location:            &ecogridv1.GridLocation{CountyCode: r.Location.CountyCode, TownshipCode: r.Location.TownshipCode, VillageCode: r.Location.VillageCode},
		OutsideAssignedArea: r.OutsideArea, PatrolId: r.PatrolID, PhotoSha256: r.PhotoSHA256, Violation: r.Violation,
		PhotoExifMismatch: r.ExifMismatch,
		ZoneCodes:         r.Places.ZoneCodes, ReachCodes: r.Places.ReachCodes(), ZoneEscalates: r.Places.EscalateNow,
	}
}

func patrolPB(p Patrol) *ecogridv1.Patrol {
	out := &ecogridv1.Patrol{
		PatrolId: p.ID, InspectorId: p.InspectorID, CountyCode: p.CountyCode, State: ecogridv1.PatrolState_PATROL_STATE_ACTIVE,
		StartedAt: tsOf(p.StartedAt), PointCount: p.PointCount, DistanceM: p.DistanceM, DurationS: int64(p.Duration / time.Second),
		CellCodes: p.CellCodes, MaxSpeedKmh: p.MaxSpeedKmh, PointsOutsideArea: p.PointsOutsideArea,
	}
	if p.EndedAt != nil {
		out.State = ecogridv1.PatrolState_PATROL_STATE_ENDED
		out.EndedAt = tsOf(*p.EndedAt)
	}
	for _, f := range p.Flags {
		out.Flags = append(out.Flags, ecogridv1.PatrolFlag(f))
	}
	return out
}

func photoPB(p *PhotoMeta) *ecogridv1.Photo {
	if p == nil {
		return nil
	}
	out := &ecogridv1.Photo{Sha256: p.SHA256, Size: p.Size, ContentType: p.ContentType, Width: int32(p.Width), Height: int32(p.Height)}
	if p.ExifLat != nil && p.ExifLon != nil {
		out.HasExifPosition, out.ExifLatitude, out.ExifLongitude = true, *p.ExifLat, *p.ExifLon
	}
	if p.ExifTime != nil {
		out.ExifTime = tsOf(*p.ExifTime)
	}
	return out
}

func filterOf(f *ecogridv1.ReportFilter) (ReportFilter, error) {
	var out ReportFilter
	if f == nil {
		return out, nil
	}
	var err error
	if out.ObservedFrom, err = timeOf("observed_from", f.GetObservedFrom()); err != nil {
		return out, err
	}
	if out.ObservedTo, err = timeOf("observed_to", f.GetObservedTo()); err != nil {
		return out, err
	}
	out.NodeCode, out.Category, out.ReporterID = f.GetNodeCode(), f.GetCategory(), f.GetReporterId()
	switch f.GetViolation() {
	case ecogridv1.ViolationFilter_VIOLATION_FILTER_ONLY:
		v := true
		out.Violation = &v
	case ecogridv1.ViolationFilter_VIOLATION_FILTER_EXCLUDE:
		v := false
		out.Violation = &v
	}
	return out, nil
}
