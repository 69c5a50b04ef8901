package grid

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/coord"
	"ecogrid/internal/pagetoken"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// ServiceConfig configures the gRPC service.
type ServiceConfig struct {
	// MaxImportBytes bounds one streamed GeoJSON import (default 512 MiB).
	MaxImportBytes int64
	// Places, when set, adds to a current LocatePoint answer the other
	// spatial layers at the WGS-84 point: the protected zones containing
	// it and the reaches near it. gridd composes it from the zones' and
	// waters' in-memory indexes, so the answer is one lookup in memory.
	Places func(lat, lon float64) ([]*ecogridv1.LocatedZone, []*ecogridv1.LocatedReach)
}

// Service is the GridService gRPC server: thin handlers over Store (writes,
// history, past lookups) and Index (current lookups).
type Service struct {
	ecogridv1.UnimplementedGridServiceServer
	store *Store
	index *Index
	log   *slog.Logger
	cfg   ServiceConfig
}

var _ ecogridv1.GridServiceServer = (*Service)(nil)

// NewService returns the GridService. The index must be kept current by
// running index.Run; until its first load LocatePoint answers Unavailable.
func NewService(store *Store, index *Index, cfg ServiceConfig, logger *slog.Logger) *Service {
	if cfg.MaxImportBytes <= 0 {
		cfg.MaxImportBytes = 512 << 20
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{store: store, index: index, log: logger, cfg: cfg}
}

// writers may change the grid within their county; an administrator anywhere.
var writers = []scope.Role{scope.RoleCountyOfficer}

func callerFrom(ctx context.Context) (scope.Caller, error) {
	c, ok := scope.FromContext(ctx)
	if !ok {
		return scope.Caller{}, structerr.NewUnauthenticated("sign in first")
	}
	return c, nil
}

func parseID(field, s string) (uuid.UUID, error) {
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, structerr.NewInvalidArgument("%s %.40q is not a UUID", field, s)
	}
	return id, nil
}

// visibleNode loads a node and hides it (NotFound) outside the caller's scope.
func (s *Service) visibleNode(ctx context.Context, c scope.Caller, idText string, roles ...scope.Role) (*Node, error) {
	id, err := parseID("node_id", idText)
	if err != nil {
		return nil, err
	}
	n, err := s.store.NodeByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if !c.Covers(n.Code, roles...) {
		return nil, structerr.NewNotFound("grid node %s not found", id)
	}
	return n, nil
}

// GetNode implements GridService.
func (s *Service) GetNode(ctx context.Context, req *ecogridv1.GetNodeRequest) (*ecogridv1.GetNodeResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	var n *Node
	switch {
	case req.GetNodeId() != "":
		n, err = s.visibleNode(ctx, c, req.GetNodeId())
	case req.GetCode() != "":
		n, err = s.store.NodeByCode(ctx, req.GetCode())
		if err == nil && !c.Covers(n.Code) {
			err = structerr.NewNotFound("grid node %s not found", req.GetCode())
		}
	default:
		err = structerr.NewInvalidArgument("give node_id or code")
	}
	if err != nil {
		return nil, err
	}
	return &ecogridv1.GetNodeResponse{Node: nodeProto(n, req.GetIncludeGeometry())}, nil
}

// ListChildren implements GridService.
func (s *Service) ListChildren(ctx context.Context, req *ecogridv1.ListChildrenRequest) (*ecogridv1.ListChildrenResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.visibleNode(ctx, c, req.GetNodeId())
	if err != nil {
		return nil, err
	}
	kids, err := s.store.Children(ctx, n.ID, req.GetIncludeGeometry())
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListChildrenResponse{}
	for _, k := range kids {
		resp.Nodes = append(resp.Nodes, nodeProto(k, req.GetIncludeGeometry()))
	}
	return resp, nil
}

// GetAncestry implements GridService. The ancestors of a node the caller
// may see are shown even above the caller's own root: an inspector sees
// which township and county their village belongs to.
func (s *Service) GetAncestry(ctx context.Context, req *ecogridv1.GetAncestryRequest) (*ecogridv1.GetAncestryResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.visibleNode(ctx, c, req.GetNodeId())
	if err != nil {
		return nil, err
	}
	refs, err := s.store.Ancestry(ctx, n.ID)
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.GetAncestryResponse{}
	for _, r := range refs {
		resp.Ancestors = append(resp.Ancestors, refProto(r))
	}
	return resp, nil
}

// rootFor resolves the root of a subtree request: the given node (in
// scope) or the caller's single root.
func (s *Service) rootFor(ctx context.Context, c scope.Caller, nodeID string) (string, error) {
	if nodeID != "" {
		n, err := s.visibleNode(ctx, c, nodeID)
		if err != nil {
			return "", err
		}
		return n.Code, nil
	}
	roots := c.Roots()
	slices.Sort(roots)
	roots = slices.Compact(roots)
	switch len(roots) {
	case 0:
		return "", structerr.NewNotFound("you have no grid area")
	case 1:
		return roots[0], nil
	}
	return "", structerr.NewInvalidArgument("you hold several grid areas; give node_id")
}

// ListSubtree implements GridService.
func (s *Service) ListSubtree(ctx context.Context, req *ecogridv1.ListSubtreeRequest) (*ecogridv1.ListSubtreeResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	root, err := s.rootFor(ctx, c, req.GetNodeId())
	if err != nil {
		return nil, err
	}
	size := int(req.GetPage().GetPageSize())
	switch {
	case size <= 0:
		size = 50
	case size > 500:
		size = 500
	}
	after := ""
	if tok := req.GetPage().GetPageToken(); tok != "" {
		parts, err := pagetoken.Decode(tok, 1)
		if err != nil || !strings.HasPrefix(parts[0], root) {
			return nil, pagetoken.ErrBad
		}
		after = parts[0]
	}
	resp := &ecogridv1.ListSubtreeResponse{}
	err = s.store.Subtree(ctx, SubtreeQuery{RootCode: root, MaxLevel: Level(req.GetMaxLevel()), WithGeometry: req.GetIncludeGeometry(), After: after, Limit: size + 1},
		func(n *Node) error {
			resp.Nodes = append(resp.Nodes, nodeProto(n, req.GetIncludeGeometry()))
			return nil
		})
	if err != nil {
		return nil, err
	}
	if len(resp.Nodes) > size {
		resp.Nodes = resp.Nodes[:size]
		resp.NextPageToken = pagetoken.Encode(resp.Nodes[size-1].GetCode())
	}
	return resp, nil
}

// ListNodeVersions implements GridService.
func (s *Service) ListNodeVersions(ctx context.Context, req *ecogridv1.ListNodeVersionsRequest) (*ecogridv1.ListNodeVersionsResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.visibleNode(ctx, c, req.GetNodeId())
	if err != nil {
		return nil, err
	}
	vs, err := s.store.Versions(ctx, n.ID, req.GetIncludeGeometry())
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListNodeVersionsResponse{}
	for _, v := range vs {
		resp.Versions = append(resp.Versions, nodeProto(v, req.GetIncludeGeometry()))
	}
	return resp, nil
}

// LocatePoint implements GridService. The answer is shown only when the
// cell lies in the caller's scope; elsewhere found is false.
func (s *Service) LocatePoint(ctx context.Context, req *ecogridv1.LocatePointRequest) (*ecogridv1.LocatePointResponse, error) {
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
	var loc Location
	var found bool
	if at := req.GetAtTime(); at != nil {
		if err := at.CheckValid(); err != nil {
			return nil, structerr.NewInvalidArgument("at_time: %v", err)
		}
		loc, found, err = s.index.LocateAt(ctx, lat, lon, at.AsTime())
		if err != nil {
			return nil, err
		}
	} else {
		select {
		case <-s.index.Ready():
		default:
			return nil, structerr.NewUnavailable("the grid index is still loading, retry")
		}
		loc, found = s.index.Locate(lat, lon)
	}
	resp := &ecogridv1.LocatePointResponse{Wgs84Latitude: lat, Wgs84Longitude: lon}
	if !found || !c.Covers(loc.Cell.Code) {
		return resp, nil
	}
	resp.Found = true
	resp.Cell = refProto(loc.Cell)
	for _, r := range loc.Path {
		resp.Path = append(resp.Path, refProto(r))
	}
	if s.cfg.Places != nil && req.GetAtTime() == nil {
		resp.Zones, resp.Reaches = s.cfg.Places(lat, lon)
	}
	return resp, nil
}

// CreateNode implements GridService.
func (s *Service) CreateNode(ctx context.Context, req *ecogridv1.CreateNodeRequest) (*ecogridv1.CreateNodeResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	id, err := parseID("node_id", req.GetNodeId())
	if err != nil {
		return nil, err
	}
	f := Feature{ID: id, Code: strings.TrimSpace(req.GetCode()), Name: strings.TrimSpace(req.GetName()), Level: Level(req.GetLevel()), Tasks: tasksFromProto(req.GetTasks()), HasTasks: true}
	if err := checkFeatureFields(&f, req.GetGeometryGeojson(), s.store.cfg.Limits); err != nil {
		return nil, err
	}
	if !c.Covers(f.Code, writers...) {
		return nil, structerr.NewNotFound("grid node %s is outside your area", f.Code)
	}
	// A replayed create returns the node; a reused id with other content is refused.
	if existing, err := s.store.NodeByID(ctx, id); err == nil {
		if existing.Code != f.Code || existing.Name != f.Name || !slices.Equal(existing.Geometry.FlatCoords(), f.Geometry.FlatCoords()) {
			return nil, structerr.NewAlreadyExists("node id %s is already used by node %s with other content", id, existing.Code)
		}
		return &ecogridv1.CreateNodeResponse{Node: nodeProto(existing, true)}, nil
	}
	opts := ImportOptions{Mode: ImportCreateOnly, EffectiveFrom: timeOrZero(req.GetEffectiveTime()),
		MayWrite: func(code string) bool { return c.Covers(code, writers...) }}
	setActor(&opts, c, f.Code)
	res, err := s.store.Import(ctx, []Feature{f}, nil, opts)
	if err != nil {
		return nil, err
	}
	n, err := s.store.NodeByID(ctx, id)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "grid node created", slog.String("code", n.Code), slog.String("node_id", n.ID.String()))
	return &ecogridv1.CreateNodeResponse{Node: nodeProto(n, true), Warnings: problemsProto(res.Warnings)}, nil
}

// UpdateNode implements GridService.
func (s *Service) UpdateNode(ctx context.Context, req *ecogridv1.UpdateNodeRequest) (*ecogridv1.UpdateNodeResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.visibleNode(ctx, c, req.GetNodeId(), writers...)
	if err != nil {
		return nil, err
	}
	if n.RetiredAt != nil {
		return nil, structerr.NewFailedPrecondition("grid node %s is retired", n.Code)
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		return nil, structerr.NewInvalidArgument("update_mask must name the fields to change: name, geometry_geojson, tasks")
	}
	f := Feature{ID: n.ID, Code: n.Code, Name: n.Name, Level: n.Level, Geometry: n.Geometry}
	geometryText := GeometryJSON(n.Geometry)
	for _, p := range paths {
		switch p {
		case "name":
			f.Name = strings.TrimSpace(req.GetName())
		case "geometry_geojson":
			geometryText = req.GetGeometryGeojson()
		case "tasks":
			f.Tasks, f.HasTasks = tasksFromProto(req.GetTasks()), true
		default:
			return nil, structerr.NewInvalidArgument("update_mask path %.40q cannot be changed (name, geometry_geojson, tasks)", p)
		}
	}
	if err := checkFeatureFields(&f, geometryText, s.store.cfg.Limits); err != nil {
		return nil, err
	}
	opts := ImportOptions{Mode: ImportUpdateOnly, EffectiveFrom: timeOrZero(req.GetEffectiveTime()),
		MayWrite: func(code string) bool { return c.Covers(code, writers...) }}
	setActor(&opts, c, f.Code)
	res, err := s.store.Import(ctx, []Feature{f}, nil, opts)
	if err != nil {
		return nil, err
	}
	updated, err := s.store.NodeByID(ctx, n.ID)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.UpdateNodeResponse{Node: nodeProto(updated, true), Warnings: problemsProto(res.Warnings)}, nil
}

// checkFeatureFields validates a single node given through the API and
// fills its parent code and geometry.
func checkFeatureFields(f *Feature, geometryText string, limits ParseLimits) error {
	var msgs []string
	if f.Name == "" {
		msgs = append(msgs, "name is required")
	}
	if err := CheckCode(f.Code, f.Level); err != nil {
		msgs = append(msgs, err.Error())
	} else {
		f.ParentCode = ParentCode(f.Code)
	}
	for _, t := range f.Tasks {
		if err := t.Check(); err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	mp, err := ParseGeometry(geometryText, limits)
	if err != nil {
		msgs = append(msgs, "geometry_geojson: "+err.Error())
	}
	f.Geometry = mp
	if len(msgs) > 0 {
		return structerr.NewInvalidArgument("grid node %.40q: %s", f.Code, strings.Join(msgs, "; "))
	}
	return nil
}

func timeOrZero(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func actorID(c scope.Caller) uuid.UUID {
	id, _ := uuid.Parse(c.PersonID)
	return id
}

// setActor names the caller, and the grant they write under, for the
// versions and ledger records of an import touching code's county.
func setActor(opts *ImportOptions, c scope.Caller, code string) {
	opts.Actor = actorID(c)
	if g, ok := c.GrantFor(code, writers...); ok {
		opts.ActorRole, opts.ActorNodeCode = string(g.Role), g.NodeCode
	}
}

// errImportTooLarge ends a stream that exceeds MaxImportBytes.
var errImportTooLarge = errors.New("import too large")
