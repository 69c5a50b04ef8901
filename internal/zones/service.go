package zones

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/coord"
	"ecogrid/internal/grid"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Service is the ZoneService gRPC server: thin handlers over Store and
// Index.
type Service struct {
	ecogridv1.UnimplementedZoneServiceServer
	store *Store
	index *Index
	log   *slog.Logger
	// MaxImportBytes bounds one streamed import (default 64 MiB).
	MaxImportBytes int64
	// Tracks reads patrol tracks for GetZonePatrolQuotas (gridd sets
	// field.Tracks); nil answers Unavailable.
	Tracks PatrolTracks
}

var _ ecogridv1.ZoneServiceServer = (*Service)(nil)

// NewService returns the ZoneService; index must be kept current by Run.
func NewService(store *Store, index *Index, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{store: store, index: index, log: logger, MaxImportBytes: 64 << 20}
}

func callerFrom(ctx context.Context) (scope.Caller, error) {
	c, ok := scope.FromContext(ctx)
	if !ok {
		return scope.Caller{}, structerr.NewUnauthenticated("sign in first")
	}
	return c, nil
}

// Reads reports whether c may read the zones of county: with a grant in
// the county (an inspector must know the zones of the county they patrol)
// or above it, or as an administrator.
func Reads(c scope.Caller, county string) bool {
	if c.Covers(county) {
		return true
	}
	for _, g := range c.Grants {
		if strings.HasPrefix(g.NodeCode, county) {
			return true
		}
	}
	return false
}

// Writes reports whether c may change the zones of county: the county
// office within its county, an administrator anywhere (as for the grid).
func Writes(c scope.Caller, county string) bool {
	return c.Covers(county, scope.RoleCountyOfficer)
}

// county checks a county code and that the caller may read (or write) it;
// outside their scope it is NotFound.
func county(c scope.Caller, code string, write bool) error {
	if !ValidCounty(code) {
		return structerr.NewInvalidArgument("county_code %.20q is not six digits", code)
	}
	if !Reads(c, code) {
		return structerr.NewNotFound("county %s not found", code)
	}
	if write && !Writes(c, code) {
		return structerr.NewPermissionDenied("only the county office of %s may change its zones", code)
	}
	return nil
}

func actorID(c scope.Caller) uuid.UUID {
	id, _ := uuid.Parse(c.PersonID)
	return id
}

// ImportZones implements ZoneService.
func (s *Service) ImportZones(stream ecogridv1.ZoneService_ImportZonesServer) error {
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
	if err := county(c, h.GetCountyCode(), true); err != nil {
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
		if int64(buf.Len()+len(msg.GetChunk())) > s.MaxImportBytes {
			return structerr.NewInvalidArgument("the file is larger than the import limit of %d MiB", s.MaxImportBytes>>20)
		}
		buf.Write(msg.GetChunk())
	}
	opts := ImportOptions{DryRun: h.GetDryRun(), ReplaceAll: h.GetReplaceAll(), Actor: actorID(c)}
	if t := h.GetEffectiveTime(); t != nil {
		if err := t.CheckValid(); err != nil {
			return structerr.NewInvalidArgument("effective_time: %v", err)
		}
		opts.EffectiveFrom = t.AsTime()
	}
	res, err := s.store.ImportGeoJSON(ctx, h.GetCountyCode(), &buf, opts)
	if err != nil {
		s.log.InfoContext(ctx, "zone import refused", slog.String("county", h.GetCountyCode()), slog.String("file", h.GetFileName()), slog.String("error", clip(err.Error(), 300)))
		return err
	}
	s.log.InfoContext(ctx, "zone import done", slog.String("county", h.GetCountyCode()), slog.Int("created", res.Created),
		slog.Int("updated", res.Updated), slog.Int("unchanged", res.Unchanged), slog.Int("ended", res.Ended), slog.Bool("dry_run", res.DryRun))
	if !res.DryRun && res.Created+res.Updated+res.Ended > 0 {
		if err := s.index.Load(ctx); err != nil { // this replica answers with the new zones at once
			s.log.WarnContext(ctx, "zone index reload failed", slog.Any("error", err))
		}
	}
	return stream.SendAndClose(&ecogridv1.ImportZonesResponse{Created: int32(res.Created), Updated: int32(res.Updated),
		Unchanged: int32(res.Unchanged), Ended: int32(res.Ended), DryRun: res.DryRun})
}

// exportChunk is the size of one ExportZones message.
const exportChunk = 256 << 10

type chunkWriter struct {
	send func([]byte) error
	buf  []byte
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for len(w.buf) >= exportChunk {
		if err := w.send(w.buf[:exportChunk]); err != nil {
			return 0, err
		}
		w.buf = append(w.buf[:0], w.buf[exportChunk:]...)
	}
	return len(p), nil
}

// ExportZones implements ZoneService.
func (s *Service) ExportZones(req *ecogridv1.ExportZonesRequest, stream ecogridv1.ZoneService_ExportZonesServer) error {
	c, err := callerFrom(stream.Context())
	if err != nil {
		return err
	}
	if err := county(c, req.GetCountyCode(), false); err != nil {
		return err
	}
	send := func(b []byte) error {
		return stream.Send(&ecogridv1.ExportZonesResponse{Chunk: bytes.Clone(b)})
	}
	w := &chunkWriter{send: send}
	if err := s.store.ExportGeoJSON(stream.Context(), req.GetCountyCode(), w); err != nil {
		return err
	}
	if len(w.buf) > 0 {
		return send(w.buf)
	}
	return nil
}

func zoneProto(z Zone, geometry bool) *ecogridv1.Zone {
	p := &ecogridv1.Zone{CountyCode: z.CountyCode, Code: z.Code, Version: int32(z.Version), Kind: string(z.Kind),
		Name: z.Name, LegalBasis: z.LegalBasis, ValidFrom: timestamppb.New(z.ValidFrom)}
	if geometry && z.Geometry != nil {
		p.GeometryGeojson = grid.GeometryJSON(z.Geometry)
	}
	return p
}

// ListZones implements ZoneService.
func (s *Service) ListZones(ctx context.Context, req *ecogridv1.ListZonesRequest) (*ecogridv1.ListZonesResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := county(c, req.GetCountyCode(), false); err != nil {
		return nil, err
	}
	if k := req.GetKind(); k != "" && !ValidKindName(k) {
		return nil, structerr.NewInvalidArgument("kind %.40q is not a kind name", k)
	}
	zs, err := s.store.CurrentZones(ctx, req.GetCountyCode(), Kind(req.GetKind()))
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListZonesResponse{}
	for _, z := range zs {
		resp.Zones = append(resp.Zones, zoneProto(z, req.GetIncludeGeometry()))
	}
	return resp, nil
}

// LocateZones implements ZoneService: zones of counties outside the
// caller's scope are left out.
func (s *Service) LocateZones(ctx context.Context, req *ecogridv1.LocateZonesRequest) (*ecogridv1.LocateZonesResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	pos := req.GetPosition()
	if pos == nil {
		return nil, structerr.NewInvalidArgument("position is required")
	}
	lat, lon, err := coord.ToWGS84(pos.GetLatitude(), pos.GetLongitude(), coord.System(pos.GetCoordinateSystem()))
	if err != nil {
		return nil, structerr.NewInvalidArgument("position: %v", err)
	}
	zs, err := s.index.ZonesAtNow(lat, lon)
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.LocateZonesResponse{Wgs84Latitude: lat, Wgs84Longitude: lon}
	for _, z := range zs {
		if Reads(c, z.CountyCode) {
			resp.Zones = append(resp.Zones, zoneProto(z, false))
		}
	}
	return resp, nil
}

// DefineZoneKind implements ZoneService.
func (s *Service) DefineZoneKind(ctx context.Context, req *ecogridv1.DefineZoneKindRequest) (*ecogridv1.DefineZoneKindResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := county(c, req.GetCountyCode(), true); err != nil {
		return nil, err
	}
	switch name := strings.TrimSpace(req.GetName()); {
	case !ValidKindName(req.GetKind()):
		return nil, structerr.NewInvalidArgument("kind %.40q must be 2–40 lower-case letters, digits or '_', starting with a letter", req.GetKind())
	case name == "" || len(name) > 200:
		return nil, structerr.NewInvalidArgument("name is required (at most 200 bytes)")
	}
	if err := s.store.DefineKind(ctx, req.GetCountyCode(), Kind(req.GetKind()), strings.TrimSpace(req.GetName()), actorID(c)); err != nil {
		return nil, err
	}
	return &ecogridv1.DefineZoneKindResponse{}, nil
}

func ruleProto(r Rule) *ecogridv1.ZoneRule {
	return &ecogridv1.ZoneRule{CountyCode: r.CountyCode, Kind: string(r.Kind), MinSeverity: r.MinSeverity,
		DeadlineHours: int32(r.Deadline / time.Hour), EscalateNow: r.EscalateNow, PatrolsPerMonth: int32(r.PatrolsPerMonth),
		Note: r.Note, IsDefault: r.Default}
}

// ListZoneRules implements ZoneService.
func (s *Service) ListZoneRules(ctx context.Context, req *ecogridv1.ListZoneRulesRequest) (*ecogridv1.ListZoneRulesResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := county(c, req.GetCountyCode(), false); err != nil {
		return nil, err
	}
	rules, err := RulesFor(ctx, s.store.pool, req.GetCountyCode())
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListZoneRulesResponse{}
	for _, r := range rules {
		resp.Rules = append(resp.Rules, ruleProto(r))
	}
	return resp, nil
}

// SetZoneRule implements ZoneService.
func (s *Service) SetZoneRule(ctx context.Context, req *ecogridv1.SetZoneRuleRequest) (*ecogridv1.SetZoneRuleResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	p := req.GetRule()
	if p == nil {
		return nil, structerr.NewInvalidArgument("rule is required")
	}
	if err := county(c, p.GetCountyCode(), true); err != nil {
		return nil, err
	}
	r := Rule{CountyCode: p.GetCountyCode(), Kind: Kind(p.GetKind()), MinSeverity: p.GetMinSeverity(),
		Deadline: time.Duration(p.GetDeadlineHours()) * time.Hour, EscalateNow: p.GetEscalateNow(),
		PatrolsPerMonth: int(p.GetPatrolsPerMonth()), Note: p.GetNote()}
	if p.GetDeadlineHours() < 0 {
		return nil, structerr.NewInvalidArgument("deadline_hours must be 0 to 8760")
	}
	if err := s.store.SetRule(ctx, r, actorID(c)); err != nil {
		return nil, err
	}
	return &ecogridv1.SetZoneRuleResponse{Rule: ruleProto(r)}, nil
}
