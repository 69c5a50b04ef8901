package grid

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/coord"
	"ecogrid/internal/grid/demo"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Test callers, chosen per call with the "as" metadata key (the real auth
// interceptor puts the Caller in the context the same way).
var testCallers = map[string]scope.Caller{
	"admin":     {PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleAdmin}}},
	"county":    {PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleCountyOfficer, NodeCode: "130123"}}},
	"other":     {PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleCountyOfficer, NodeCode: "130124"}}},
	"inspector": {PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleInspector, NodeCode: "130123001001"}}},
}

func withCaller(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("as"); len(v) == 1 {
		return scope.NewContext(ctx, testCallers[v[0]])
	}
	return ctx
}

type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s callerStream) Context() context.Context { return s.ctx }

func startService(t *testing.T) (ecogridv1.GridServiceClient, *Store) {
	t.Helper()
	store := newTestStore(t)
	ix := NewIndex(store.pool, nil)
	ix.PollInterval = 50e6
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = ix.Run(ctx) }()
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(withCaller(ctx), req)
			return resp, structerr.ToStatus(err)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return structerr.ToStatus(h(srv, callerStream{ss, withCaller(ss.Context())}))
		}),
	)
	ecogridv1.RegisterGridServiceServer(srv, NewService(store, ix, ServiceConfig{MaxImportBytes: 8 << 20}, nil))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); srv.Stop(); cancel(); <-done })
	<-ix.Ready()
	return ecogridv1.NewGridServiceClient(conn), store
}

func as(who string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "as", who)
}

func streamImport(t *testing.T, c ecogridv1.GridServiceClient, who string, data []byte, h *ecogridv1.ImportGeoJSONHeader) (*ecogridv1.ImportGeoJSONResponse, error) {
	t.Helper()
	st, err := c.ImportGeoJSON(as(who))
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		h = &ecogridv1.ImportGeoJSONHeader{}
	}
	h.TotalBytes = int64(len(data))
	if err := st.Send(&ecogridv1.ImportGeoJSONRequest{Part: &ecogridv1.ImportGeoJSONRequest_Header{Header: h}}); err != nil {
		return st.CloseAndRecv()
	}
	for off := 0; off < len(data); off += 64 << 10 {
		end := min(off+64<<10, len(data))
		if err := st.Send(&ecogridv1.ImportGeoJSONRequest{Part: &ecogridv1.ImportGeoJSONRequest_Chunk{Chunk: data[off:end]}}); err != nil {
			break // the server answered early; CloseAndRecv has its status
		}
	}
	return st.CloseAndRecv()
}

func TestServiceImportLocateExport(t *testing.T) {
	t.Parallel()
	c, store := startService(t)
	ctx := context.Background()

	// Only the county office may import, and only its own county.
	if _, err := streamImport(t, c, "inspector", demo.County(), nil); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("inspector import: %v", err)
	}
	_, err := streamImport(t, c, "other", demo.County(), nil)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "outside the area you may edit") {
		t.Fatalf("other county import: %v", err)
	}
	res, err := streamImport(t, c, "county", demo.County(), nil)
	if err != nil || res.GetCreated() != 161 || res.GetBytesReceived() != int64(len(demo.County())) {
		t.Fatalf("import: %v %v", res, err)
	}

	// A truncated upload is refused whole.
	full := demo.County()
	_, err = streamImport(t, c, "county", full[:len(full)/3], nil)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "file ends unexpectedly") {
		t.Fatalf("truncated: %v", err)
	}
	// Over the size limit.
	big := append(bytes.Repeat([]byte(" "), 9<<20), full...)
	if _, err := streamImport(t, c, "county", big, nil); status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "larger than the import limit") {
		t.Fatalf("too large: %v", err)
	}

	// The header must come first.
	st, err := c.ImportGeoJSON(as("county"))
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(&ecogridv1.ImportGeoJSONRequest{Part: &ecogridv1.ImportGeoJSONRequest_Chunk{Chunk: full}})
	if _, err := st.CloseAndRecv(); status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "header") {
		t.Fatalf("no header: %v", err)
	}

	// Locate a phone's GCJ-02 position in a village.
	v, err := store.NodeByCode(ctx, "130123003005")
	if err != nil {
		t.Fatal(err)
	}
	ring := v.Geometry.Polygon(0).LinearRing(0).FlatCoords()
	k := len(ring) / 4 * 2 // a vertex about half way round
	wlon, wlat := (ring[0]+ring[k])/2, (ring[1]+ring[k+1])/2
	glat, glon := coord.WGS84ToGCJ02(wlat, wlon)
	pos := &ecogridv1.Position{Latitude: glat, Longitude: glon, CoordinateSystem: ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_GCJ02}
	loc, err := c.LocatePoint(as("county"), &ecogridv1.LocatePointRequest{Position: pos})
	if err != nil || !loc.GetFound() || loc.GetCell().GetCode() != "130123003005" || len(loc.GetPath()) != 3 || coord.DistanceMeters(loc.GetWgs84Latitude(), loc.GetWgs84Longitude(), wlat, wlon) > 0.01 {
		t.Fatalf("locate: %v %v", loc, err)
	}
	// As of an hour ago (before the import) the point was in no cell; as of
	// now, from the boundary history, it is in the same village.
	past, err := c.LocatePoint(as("county"), &ecogridv1.LocatePointRequest{Position: pos, AtTime: timestamppb.New(time.Now().Add(-time.Hour))})
	if err != nil || past.GetFound() {
		t.Fatalf("locate an hour ago: %v %v", past, err)
	}
	hist, err := c.LocatePoint(as("county"), &ecogridv1.LocatePointRequest{Position: pos, AtTime: timestamppb.Now()})
	if err != nil || hist.GetCell().GetCode() != "130123003005" || len(hist.GetPath()) != 3 {
		t.Fatalf("locate from history: %v %v", hist, err)
	}
	// Outside the inspector's village the answer is "not found".
	if loc, err := c.LocatePoint(as("inspector"), &ecogridv1.LocatePointRequest{Position: pos}); err != nil || loc.GetFound() {
		t.Fatalf("inspector locate outside scope: %v %v", loc, err)
	}
	if _, err := c.LocatePoint(as("county"), &ecogridv1.LocatePointRequest{Position: &ecogridv1.Position{Latitude: 38, Longitude: 114}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unspecified coordinate system: %v", err)
	}

	// Reads outside scope are NotFound.
	if _, err := c.GetNode(as("inspector"), &ecogridv1.GetNodeRequest{NodeId: v.ID.String()}); status.Code(err) != codes.NotFound {
		t.Fatalf("inspector reads another village: %v", err)
	}
	if _, err := c.GetNode(as("other"), &ecogridv1.GetNodeRequest{Code: "130123"}); status.Code(err) != codes.NotFound {
		t.Fatalf("other county: %v", err)
	}
	anc, err := c.GetAncestry(as("county"), &ecogridv1.GetAncestryRequest{NodeId: v.ID.String()})
	if err != nil || len(anc.GetAncestors()) != 3 || anc.GetAncestors()[1].GetName() != "柳林镇" {
		t.Fatalf("ancestry: %v %v", anc, err)
	}

	// Subtree in pages.
	var codesSeen []string
	var token string
	for {
		page, err := c.ListSubtree(as("county"), &ecogridv1.ListSubtreeRequest{Page: &ecogridv1.PageRequest{PageSize: 40, PageToken: token}})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range page.GetNodes() {
			codesSeen = append(codesSeen, n.GetCode())
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(codesSeen) != 161 || codesSeen[0] != "130123" {
		t.Fatalf("subtree pages gave %d nodes", len(codesSeen))
	}

	// Export streams a file that imports back unchanged.
	ex, err := c.ExportGeoJSON(as("county"), &ecogridv1.ExportGeoJSONRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var exported bytes.Buffer
	for {
		m, err := ex.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		exported.Write(m.GetChunk())
	}
	again, err := streamImport(t, c, "county", exported.Bytes(), nil)
	if err != nil || again.GetUnchanged() != 161 {
		t.Fatalf("re-import of export: %v %v", again, err)
	}
	_ = ctx
}

func TestServiceCreateAndUpdateNode(t *testing.T) {
	t.Parallel()
	c, store := startService(t)
	ctx := context.Background()
	nodes := demo.CountyNodes()
	// The county and one township through the import, the villages of
	// township 001 by CreateNode.
	var head []demo.Node
	for _, n := range nodes {
		if n.Code == "130123" || n.Code == "130123001" {
			head = append(head, n)
		}
	}
	if _, err := streamImport(t, c, "admin", demo.FeatureCollection(head), nil); err != nil {
		t.Fatal(err)
	}
	vg := nodes[find(nodes, "130123001001")]
	fc := demo.FeatureCollection([]demo.Node{vg})
	geomText := string(fc[bytes.Index(fc, []byte(`{"type":"Polygon"`)) : bytes.LastIndex(fc, []byte("}}"))+1])
	id := uuid.NewString()
	req := &ecogridv1.CreateNodeRequest{NodeId: id, Code: vg.Code, Name: vg.Name, Level: ecogridv1.GridLevel_GRID_LEVEL_VILLAGE, GeometryGeojson: geomText,
		Tasks: []*ecogridv1.GridTask{{Kind: "patrol", Count: 3, Period: ecogridv1.TaskPeriod_TASK_PERIOD_WEEK, MinMinutes: 30}}}
	if _, err := c.CreateNode(as("other"), req); status.Code(err) != codes.NotFound {
		t.Fatalf("create in another county: %v", err)
	}
	created, err := c.CreateNode(as("county"), req)
	if err != nil || created.GetNode().GetId() != id || created.GetNode().GetParentCode() != "130123001" || len(created.GetWarnings()) != 1 {
		t.Fatalf("create: %v %v", created, err)
	}
	if created.GetWarnings()[0].GetKind() != string(ProblemGap) {
		t.Fatalf("warning %v", created.GetWarnings())
	}
	replay, err := c.CreateNode(as("county"), req)
	if err != nil || replay.GetNode().GetVersion() != 1 {
		t.Fatalf("replay: %v %v", replay, err)
	}
	req2 := proto.Clone(req).(*ecogridv1.CreateNodeRequest)
	req2.Name = "别名村"
	if _, err := c.CreateNode(as("county"), req2); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("id reused: %v", err)
	}
	req3 := proto.Clone(req).(*ecogridv1.CreateNodeRequest)
	req3.NodeId = uuid.NewString()
	if _, err := c.CreateNode(as("county"), req3); status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "already belongs to another node") {
		t.Fatalf("code reused: %v", err)
	}
	// Bow-tie through CreateNode names the problem.
	bow := proto.Clone(req).(*ecogridv1.CreateNodeRequest)
	bow.NodeId, bow.Code = uuid.NewString(), "130123001002"
	bow.GeometryGeojson = `{"type":"Polygon","coordinates":[[[114.41,38.06],[114.42,38.07],[114.42,38.06],[114.41,38.07],[114.41,38.06]]]}`
	if _, err := c.CreateNode(as("county"), bow); status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "self-intersection") {
		t.Fatalf("bow-tie: %v", err)
	}
	// Rename: a new version; tasks change alone does not make one.
	upd, err := c.UpdateNode(as("county"), &ecogridv1.UpdateNodeRequest{NodeId: id, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}, Name: "新张庄村"})
	if err != nil || upd.GetNode().GetName() != "新张庄村" || upd.GetNode().GetVersion() != 2 {
		t.Fatalf("rename: %v %v", upd, err)
	}
	upd, err = c.UpdateNode(as("county"), &ecogridv1.UpdateNodeRequest{NodeId: id, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"tasks"}}})
	if err != nil || upd.GetNode().GetVersion() != 2 || len(upd.GetNode().GetTasks()) != 0 {
		t.Fatalf("clear tasks: %v %v", upd, err)
	}
	if _, err := c.UpdateNode(as("inspector"), &ecogridv1.UpdateNodeRequest{NodeId: id, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"name"}}, Name: "x"}); status.Code(err) != codes.NotFound {
		t.Fatalf("inspector update: %v", err)
	}
	// Every change is in the county's accountability ledger, with who made
	// it and under which grant, in the same transaction.
	rows, err := store.pool.Query(ctx, `SELECT action, coalesce(actor_id::text, ''), actor_role, actor_node_code, convert_from(payload, 'UTF8')
		FROM ledger.records WHERE subject_type = 'grid_node' AND subject_id = $1 ORDER BY seq`, id)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for rows.Next() {
		var action, actorID, role, node, payload string
		if err := rows.Scan(&action, &actorID, &role, &node, &payload); err != nil {
			t.Fatal(err)
		}
		if actorID != testCallers["county"].PersonID || role != "county_officer" || node != "130123" || !strings.Contains(payload, `"geometry_wkb_sha256":"`) {
			t.Fatalf("ledger record %s: actor %s %s %s payload %s", action, actorID, role, node, payload)
		}
		actions = append(actions, action)
	}
	if strings.Join(actions, ",") != "grid_node.created,grid_node.boundary_changed,grid_node.tasks_changed" {
		t.Fatalf("ledger actions %v", actions)
	}
	vs, err := c.ListNodeVersions(as("inspector"), &ecogridv1.ListNodeVersionsRequest{NodeId: id})
	if err != nil || len(vs.GetVersions()) != 2 || vs.GetVersions()[0].GetName() != vg.Name || vs.GetVersions()[0].GetValidTo() == nil {
		t.Fatalf("versions: %v %v", vs, err)
	}
	kids, err := c.ListChildren(as("county"), &ecogridv1.ListChildrenRequest{NodeId: created.GetNode().GetParentId()})
	if err != nil || len(kids.GetNodes()) != 1 {
		t.Fatalf("children: %v %v", kids, err)
	}
	_, _ = store, ctx
}
