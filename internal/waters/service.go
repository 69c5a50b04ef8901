package waters

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/grid"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Service is the WatersService gRPC server: thin handlers over Store
// (reaches, chiefs), Index (locating) and the patrol tracks of field.
type Service struct {
	ecogridv1.UnimplementedWatersServiceServer
	store  *Store
	index  *Index
	tracks TrackSource
	log    *slog.Logger
}

var _ ecogridv1.WatersServiceServer = (*Service)(nil)

// NewService returns the WatersService. tracks reads patrol tracks (field
// implements it); the index is reloaded after each import so this replica
// answers with the new reaches at once (others follow within their
// refresh interval).
func NewService(store *Store, index *Index, tracks TrackSource, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{store: store, index: index, tracks: tracks, log: logger}
}

func callerFrom(ctx context.Context) (scope.Caller, error) {
	c, ok := scope.FromContext(ctx)
	if !ok {
		return scope.Caller{}, structerr.NewUnauthenticated("sign in first")
	}
	return c, nil
}

func timeOrZero(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

// visibleReach returns the reach in force at t, NotFound outside the
// caller's view.
func (s *Service) visibleReach(ctx context.Context, c scope.Caller, code string, t time.Time) (Reach, error) {
	if !codePattern.MatchString(code) {
		return Reach{}, structerr.NewInvalidArgument("reach_code %.70q: 1 to 64 letters, digits, '-' or '_'", code)
	}
	r, err := s.store.ReachAt(ctx, code, t)
	if err != nil {
		return Reach{}, err
	}
	if !Visible(c, r.NodeCode) {
		return Reach{}, structerr.NewNotFound("reach %.70q not found", code)
	}
	return r, nil
}

// ImportReaches implements WatersService.
func (s *Service) ImportReaches(ctx context.Context, req *ecogridv1.ImportReachesRequest) (*ecogridv1.ImportReachesResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	opts := ImportOptions{DryRun: req.GetDryRun(), Effective: timeOrZero(req.GetEffectiveTime()),
		MayWrite: func(code string) bool { _, ok := c.GrantFor(code, assigners...); return ok }}
	if id := nullUUID(c.PersonID); id != nil {
		opts.ActorID = *id
	}
	res, err := s.store.ImportGeoJSON(ctx, req.GetGeojson(), ParseLimits{}, opts)
	if err != nil {
		return nil, err
	}
	if !res.DryRun && s.index != nil {
		if err := s.index.Load(ctx); err != nil {
			s.log.Warn("reach index reload after import failed", "error", err)
		}
	}
	return &ecogridv1.ImportReachesResponse{Created: int32(res.Created), Updated: int32(res.Updated), Unchanged: int32(res.Unchanged),
		DryRun: res.DryRun, Warnings: problemsProto(res.Warnings)}, nil
}

func problemsProto(ps grid.Problems) []*ecogridv1.ImportProblem {
	out := make([]*ecogridv1.ImportProblem, 0, len(ps))
	for _, p := range ps {
		out = append(out, &ecogridv1.ImportProblem{Feature: int32(p.Feature), Code: p.Code, Name: p.Name, Kind: string(p.Kind),
			Message: p.Message, Warning: p.Warning, AreaM2: p.AreaM2})
	}
	return out
}

// ExportReaches implements WatersService: the reaches of a county the
// caller can see.
func (s *Service) ExportReaches(ctx context.Context, req *ecogridv1.ExportReachesRequest) (*ecogridv1.ExportReachesResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	county := req.GetCountyCode()
	if county == "" {
		for _, g := range c.Grants {
			if g.NodeCode != "" {
				county = grid.CountyCode(g.NodeCode)
				break
			}
		}
	}
	if grid.CheckCode(county, grid.LevelCounty) != nil {
		return nil, structerr.NewInvalidArgument("county_code %.40q is not a six-digit county code", county)
	}
	if !Visible(c, county) {
		return nil, structerr.NewNotFound("county %s not found", county)
	}
	data, n, err := s.store.ExportGeoJSON(ctx, county, timeOrZero(req.GetAtTime()), func(r Reach) bool { return Visible(c, r.NodeCode) })
	if err != nil {
		return nil, err
	}
	return &ecogridv1.ExportReachesResponse{Geojson: data, Reaches: int32(n)}, nil
}

func tasksFromProto(ts []*ecogridv1.ChiefTask) []ChiefTask {
	out := make([]ChiefTask, 0, len(ts))
	for _, t := range ts {
		n := int(t.GetCount())
		if n == 0 {
			n = 1
		}
		out = append(out, ChiefTask{Kind: t.GetKind(), Period: grid.TaskPeriod(t.GetPeriod()), Count: n,
			CleanerName: strings.TrimSpace(t.GetCleanerName()), CleanerPhone: t.GetCleanerPhone()})
	}
	return out
}

func chiefProto(c Chief) *ecogridv1.Chief {
	out := &ecogridv1.Chief{Id: c.ID.String(), PersonId: c.PersonID.String(), Name: c.Name, Phone: c.Phone, Post: c.Post,
		ReachCode: c.ReachCode, NodeCode: c.NodeCode, Level: ecogridv1.GridLevel(c.Level()), ValidFrom: timestamppb.New(c.ValidFrom),
		EndReason: c.EndReason, Title: c.Title()}
	switch c.Role {
	case RoleReachChief:
		out.Role = ecogridv1.ChiefRole_CHIEF_ROLE_REACH_CHIEF
	case RoleChiefRiverChief:
		out.Role = ecogridv1.ChiefRole_CHIEF_ROLE_CHIEF_RIVER_CHIEF
	}
	if c.ValidTo != nil {
		out.ValidTo = timestamppb.New(*c.ValidTo)
	}
	for _, t := range c.Tasks {
		out.Tasks = append(out.Tasks, &ecogridv1.ChiefTask{Kind: t.Kind, Period: string(t.Period), Count: int32(t.Count),
			CleanerName: t.CleanerName, CleanerPhone: t.CleanerPhone})
	}
	return out
}

// AssignChief implements WatersService.
func (s *Service) AssignChief(ctx context.Context, req *ecogridv1.AssignChiefRequest) (*ecogridv1.AssignChiefResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	n := NewChief{ID: req.GetChiefId(), PersonID: req.GetPersonId(), Name: req.GetName(), Phone: req.GetPhone(), Post: req.GetPost(),
		ReachCode: req.GetReachCode(), CountyCode: req.GetCountyCode(), Tasks: tasksFromProto(req.GetTasks()), ValidFrom: timeOrZero(req.GetValidFrom())}
	switch req.GetRole() {
	case ecogridv1.ChiefRole_CHIEF_ROLE_REACH_CHIEF:
		n.Role = RoleReachChief
	case ecogridv1.ChiefRole_CHIEF_ROLE_CHIEF_RIVER_CHIEF:
		n.Role = RoleChiefRiverChief
	}
	ch, _, err := s.store.AssignChief(ctx, c, n)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.AssignChiefResponse{Chief: chiefProto(ch)}, nil
}

// EndChief implements WatersService.
func (s *Service) EndChief(ctx context.Context, req *ecogridv1.EndChiefRequest) (*ecogridv1.EndChiefResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := s.store.EndChief(ctx, c, req.GetChiefId(), timeOrZero(req.GetValidTo()), req.GetReason())
	if err != nil {
		return nil, err
	}
	return &ecogridv1.EndChiefResponse{Chief: chiefProto(ch)}, nil
}

// ListReachChiefs implements WatersService.
func (s *Service) ListReachChiefs(ctx context.Context, req *ecogridv1.ListReachChiefsRequest) (*ecogridv1.ListReachChiefsResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	at := timeOrZero(req.GetAtTime())
	if at.IsZero() {
		at = time.Now()
	}
	if _, err := s.visibleReach(ctx, c, req.GetReachCode(), at); err != nil {
		return nil, err
	}
	chiefs, err := s.store.ChiefsAt(ctx, req.GetReachCode(), at)
	if err != nil {
		return nil, err
	}
	out := &ecogridv1.ListReachChiefsResponse{}
	for _, ch := range chiefs {
		out.Chiefs = append(out.Chiefs, chiefProto(ch))
	}
	return out, nil
}

// GetReachSign implements WatersService.
func (s *Service) GetReachSign(ctx context.Context, req *ecogridv1.GetReachSignRequest) (*ecogridv1.GetReachSignResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.visibleReach(ctx, c, req.GetReachCode(), time.Now()); err != nil {
		return nil, err
	}
	sign, err := s.store.SignOf(ctx, req.GetReachCode())
	if err != nil {
		return nil, err
	}
	r := sign.Reach
	out := &ecogridv1.ReachSign{ReachCode: r.Code, ReachName: r.Name, BodyName: r.BodyName, BodyKind: string(r.BodyKind),
		NodeCode: r.NodeCode, NodeName: sign.NodeName, LengthM: r.LengthM}
	for _, ch := range sign.Chiefs {
		sc := &ecogridv1.SignChief{Title: ch.Title(), Name: ch.Name, Post: ch.Post, Phone: ch.Phone}
		for _, t := range ch.Tasks {
			sc.Duties = append(sc.Duties, t.Duty())
		}
		out.Chiefs = append(out.Chiefs, sc)
	}
	return &ecogridv1.GetReachSignResponse{Sign: out}, nil
}
