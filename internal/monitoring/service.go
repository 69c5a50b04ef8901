package monitoring

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
	"ecogrid/internal/zones"
)

// Service is the MonitoringService gRPC server: thin handlers over Monitor.
type Service struct {
	ecogridv1.UnimplementedMonitoringServiceServer
	m   *Monitor
	log *slog.Logger
	// MaxImportBytes bounds one CSV import (default 32 MiB).
	MaxImportBytes int
}

var _ ecogridv1.MonitoringServiceServer = (*Service)(nil)

// NewService returns the MonitoringService.
func NewService(m *Monitor, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{m: m, log: logger, MaxImportBytes: 32 << 20}
}

func callerFrom(ctx context.Context) (scope.Caller, error) {
	c, ok := scope.FromContext(ctx)
	if !ok {
		return scope.Caller{}, structerr.NewUnauthenticated("sign in first")
	}
	return c, nil
}

// inCounty applies the zones' authority: reading with a grant in the
// county, writing as its county office; another county is NotFound.
func inCounty(c scope.Caller, county string, write bool) error {
	if !zones.ValidCounty(county) {
		return structerr.NewInvalidArgument("county_code %.20q is not six digits", county)
	}
	if !zones.Reads(c, county) {
		return structerr.NewNotFound("county %s not found", county)
	}
	if write && !zones.Writes(c, county) {
		return structerr.NewPermissionDenied("only the county office of %s may record monitoring", county)
	}
	return nil
}

func actorID(c scope.Caller) uuid.UUID {
	id, _ := uuid.Parse(c.PersonID)
	return id
}

func parseID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, structerr.NewInvalidArgument("%s %.40q is not a UUID", field, s)
	}
	return id, nil
}

// visiblePoint loads a point and hides it outside the caller's counties.
func (s *Service) visiblePoint(ctx context.Context, c scope.Caller, idText string, write bool) (Point, error) {
	id, err := parseID("point_id", idText)
	if err != nil {
		return Point{}, err
	}
	p, err := s.m.PointByID(ctx, id)
	if err != nil {
		return Point{}, err
	}
	if !zones.Reads(c, p.CountyCode) {
		return Point{}, structerr.NewNotFound("monitoring point %s not found", id)
	}
	if write && !zones.Writes(c, p.CountyCode) {
		return Point{}, structerr.NewPermissionDenied("only the county office of %s may record monitoring", p.CountyCode)
	}
	return p, nil
}

func pointProto(p Point) *ecogridv1.MonitoringPoint {
	out := &ecogridv1.MonitoringPoint{PointId: p.ID.String(), CountyCode: p.CountyCode, Code: p.Code, Name: p.Name, Kind: p.Kind,
		WaterBody: ecogridv1.WaterBodyType(p.WaterBody), TargetClass: int32(p.TargetClass), Latitude: p.Lat, Longitude: p.Lon,
		VillageCode: p.VillageCode, SampleEveryHours: int32(p.Every / time.Hour)}
	if !p.ScheduleStart.IsZero() {
		out.ScheduleStart = timestamppb.New(p.ScheduleStart)
	}
	return out
}

func sampleProto(s Sample) *ecogridv1.Sample {
	out := &ecogridv1.Sample{SampleId: s.ID.String(), PointId: s.PointID.String(), SampledAt: timestamppb.New(s.SampledAt),
		Sampler: s.Sampler, Lab: s.Lab, Class: int32(s.Class), Exceeding: s.Exceeding, RecordedAt: timestamppb.New(s.RecordedAt)}
	for _, m := range s.Measurements {
		out.Measurements = append(out.Measurements, &ecogridv1.Measurement{Parameter: m.Parameter, Value: m.Value, Unit: m.Unit, Class: int32(m.Class)})
	}
	if s.CorrectsID != uuid.Nil {
		out.CorrectsSampleId = s.CorrectsID.String()
	}
	if s.ViolationEventID != uuid.Nil {
		out.ViolationEventId = s.ViolationEventID.String()
	}
	return out
}

// CreatePoint implements MonitoringService.
func (s *Service) CreatePoint(ctx context.Context, req *ecogridv1.CreatePointRequest) (*ecogridv1.CreatePointResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	pp := req.GetPoint()
	if pp == nil {
		return nil, structerr.NewInvalidArgument("point is required")
	}
	if err := inCounty(c, pp.GetCountyCode(), true); err != nil {
		return nil, err
	}
	id, err := parseID("point_id", pp.GetPointId())
	if err != nil {
		return nil, err
	}
	if pp.GetSampleEveryHours() < 0 {
		return nil, structerr.NewInvalidArgument("sample_every_hours must be 0 to 8784")
	}
	p := Point{ID: id, CountyCode: pp.GetCountyCode(), Code: pp.GetCode(), Name: pp.GetName(), Kind: pp.GetKind(),
		WaterBody: WaterBody(pp.GetWaterBody()), TargetClass: Class(pp.GetTargetClass()), Lat: pp.GetLatitude(), Lon: pp.GetLongitude(),
		Every: time.Duration(pp.GetSampleEveryHours()) * time.Hour}
	if t := pp.GetScheduleStart(); t != nil {
		if err := t.CheckValid(); err != nil {
			return nil, structerr.NewInvalidArgument("schedule_start: %v", err)
		}
		p.ScheduleStart = t.AsTime()
	}
	got, err := s.m.CreatePoint(ctx, p, actorID(c))
	if err != nil {
		return nil, err
	}
	if got.CountyCode != p.CountyCode { // an id of another county's point
		return nil, structerr.NewAlreadyExists("point id %s is already used", id)
	}
	return &ecogridv1.CreatePointResponse{Point: pointProto(got)}, nil
}

// ListPoints implements MonitoringService.
func (s *Service) ListPoints(ctx context.Context, req *ecogridv1.ListPointsRequest) (*ecogridv1.ListPointsResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := inCounty(c, req.GetCountyCode(), false); err != nil {
		return nil, err
	}
	ps, err := s.m.Points(ctx, req.GetCountyCode())
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListPointsResponse{}
	for _, p := range ps {
		resp.Points = append(resp.Points, pointProto(p))
	}
	return resp, nil
}

// RecordSample implements MonitoringService.
func (s *Service) RecordSample(ctx context.Context, req *ecogridv1.RecordSampleRequest) (*ecogridv1.RecordSampleResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	sp := req.GetSample()
	if sp == nil {
		return nil, structerr.NewInvalidArgument("sample is required")
	}
	p, err := s.visiblePoint(ctx, c, sp.GetPointId(), true)
	if err != nil {
		return nil, err
	}
	id, err := parseID("sample_id", sp.GetSampleId())
	if err != nil {
		return nil, err
	}
	smp := Sample{ID: id, PointID: p.ID, Sampler: sp.GetSampler(), Lab: sp.GetLab()}
	if t := sp.GetSampledAt(); t != nil {
		if err := t.CheckValid(); err != nil {
			return nil, structerr.NewInvalidArgument("sampled_at: %v", err)
		}
		smp.SampledAt = t.AsTime()
	}
	if v := sp.GetCorrectsSampleId(); v != "" {
		if smp.CorrectsID, err = parseID("corrects_sample_id", v); err != nil {
			return nil, err
		}
	}
	for _, m := range sp.GetMeasurements() {
		smp.Measurements = append(smp.Measurements, Measurement{Parameter: m.GetParameter(), Value: m.GetValue(), Unit: m.GetUnit()})
	}
	got, _, err := s.m.RecordSample(ctx, smp, actorID(c))
	if err != nil {
		return nil, err
	}
	return &ecogridv1.RecordSampleResponse{Sample: sampleProto(got)}, nil
}

// ListSamples implements MonitoringService.
func (s *Service) ListSamples(ctx context.Context, req *ecogridv1.ListSamplesRequest) (*ecogridv1.ListSamplesResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.visiblePoint(ctx, c, req.GetPointId(), false)
	if err != nil {
		return nil, err
	}
	limit := int(req.GetPageSize())
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	ss, err := s.m.Samples(ctx, p.ID, limit)
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListSamplesResponse{}
	for _, smp := range ss {
		resp.Samples = append(resp.Samples, sampleProto(smp))
	}
	return resp, nil
}

// ImportSamplesCSV implements MonitoringService.
func (s *Service) ImportSamplesCSV(stream ecogridv1.MonitoringService_ImportSamplesCSVServer) error {
	ctx := stream.Context()
	c, err := callerFrom(ctx)
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return structerr.NewInvalidArgument("the stream is empty: send the header, then the file")
		}
		return err
	}
	h := first.GetHeader()
	if h == nil {
		return structerr.NewInvalidArgument("the first message must be the header")
	}
	if err := inCounty(c, h.GetCountyCode(), true); err != nil {
		return err
	}
	var buf bytes.Buffer
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if msg.GetHeader() != nil {
			return structerr.NewInvalidArgument("only the first message may be a header")
		}
		if buf.Len()+len(msg.GetChunk()) > s.MaxImportBytes {
			return structerr.NewInvalidArgument("the file is larger than the import limit of %d MiB; split it", s.MaxImportBytes>>20)
		}
		buf.Write(msg.GetChunk())
	}
	rec, unch, exc, err := s.m.ImportCSV(ctx, h.GetCountyCode(), &buf, actorID(c), h.GetDryRun())
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "samples imported", slog.String("county", h.GetCountyCode()), slog.String("file", h.GetFileName()),
		slog.Int("recorded", rec), slog.Int("unchanged", unch), slog.Int("exceeding", exc), slog.Bool("dry_run", h.GetDryRun()))
	return stream.SendAndClose(&ecogridv1.ImportSamplesCSVResponse{Recorded: int32(rec), Unchanged: int32(unch), Exceeding: int32(exc), DryRun: h.GetDryRun()})
}
