package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/devstack"
)

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
}

// stack is a running dev stack (gridd with its gateway and console, cased,
// embedded NATS, the demo county) on a fresh test database, with the
// people of the stories: a supervisor and two inspectors (one handles, one
// checks on site) of one township, an inspector of another, and a county
// officer.
type stack struct {
	devstack.Addresses
	gridd, cased *grpc.ClientConn
	county       *ecogridv1.GridNode
	villages     []*ecogridv1.GridNode // every village of the demo county
	townA, townB string                // township codes
	villageA     *ecogridv1.GridNode   // a village of townA
	people       map[string]*user      // by username
}

// user is a signed-up person of the stories.
type user struct {
	username, password, personID, name string
	token                              string
}

const adminPassword = "gateway-admin-2026"

func startStack(t testing.TB) *stack {
	t.Helper()
	cfg := devstack.Config{DataDir: t.TempDir(), DatabaseURL: dbtest.NewURL(t), NATSPort: mustPort(t),
		GriddAddr: freeAddr(t), GriddMetric: freeAddr(t), CasedAddr: freeAddr(t), CasedMetric: freeAddr(t),
		ConsoleAddr: freeAddr(t), AdminPassword: adminPassword}
	ready := make(chan devstack.Addresses, 1)
	cfg.Ready = func(a devstack.Addresses) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- devstack.Run(ctx, cfg, io.Discard, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("stack did not stop within a minute")
		}
	})
	s := &stack{people: map[string]*user{}}
	select {
	case s.Addresses = <-ready:
	case err := <-done:
		t.Fatalf("stack stopped during start: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("stack not ready after 3 minutes")
	}
	s.gridd, s.cased = dial(t, s.GriddGRPC), dial(t, s.CasedGRPC)
	s.seed(t)
	return s
}

func mustPort(t testing.TB) int {
	_, p, _ := net.SplitHostPort(freeAddr(t))
	n, _ := strconv.Atoi(p)
	return n
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// as is a context carrying u's access token.
func as(u *user) context.Context {
	ctx := context.Background()
	if u == nil {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+u.token)
}

func (s *stack) login(t testing.TB, u *user) {
	t.Helper()
	r, err := ecogridv1.NewAuthServiceClient(s.gridd).Login(as(nil), &ecogridv1.LoginRequest{Username: u.username, Password: u.password})
	if err != nil {
		t.Fatalf("login %s: %v", u.username, err)
	}
	u.token, u.personID = r.GetTokens().GetAccessToken(), r.GetPersonId()
}

func (s *stack) seed(t testing.TB) {
	t.Helper()
	admin := &user{username: devstack.DevAdminUser, password: adminPassword}
	s.login(t, admin)
	s.people["admin"] = admin
	grid := ecogridv1.NewGridServiceClient(s.gridd)
	root, err := grid.GetNode(as(admin), &ecogridv1.GetNodeRequest{Code: s.CountyCode})
	if err != nil {
		t.Fatal(err)
	}
	s.county = root.GetNode()
	var towns []string
	token := ""
	for {
		page, err := grid.ListSubtree(as(admin), &ecogridv1.ListSubtreeRequest{NodeId: s.county.GetId(), IncludeGeometry: true,
			Page: &ecogridv1.PageRequest{PageSize: 500, PageToken: token}})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range page.GetNodes() {
			switch n.GetLevel() {
			case ecogridv1.GridLevel_GRID_LEVEL_TOWNSHIP:
				towns = append(towns, n.GetCode())
			case ecogridv1.GridLevel_GRID_LEVEL_VILLAGE:
				s.villages = append(s.villages, n)
			}
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if len(towns) < 2 || len(s.villages) == 0 {
		t.Fatalf("demo county has %d townships and %d villages", len(towns), len(s.villages))
	}
	s.townA, s.townB = towns[0], towns[1]
	var villageB *ecogridv1.GridNode
	for _, v := range s.villages {
		if v.GetParentCode() == s.townA && s.villageA == nil {
			s.villageA = v
		}
		if v.GetParentCode() == s.townB && villageB == nil {
			villageB = v
		}
	}
	nodeID := func(code string) string {
		r, err := grid.GetNode(as(admin), &ecogridv1.GetNodeRequest{Code: code})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetNode().GetId()
	}
	s.addPerson(t, admin, "supervisor", "王主任", nodeID(s.townA), ecogridv1.Role_ROLE_TOWNSHIP_SUPERVISOR)
	s.addPerson(t, admin, "inspector", "李网格", s.villageA.GetId(), ecogridv1.Role_ROLE_INSPECTOR)
	s.addPerson(t, admin, "checker", "张核查", s.villageA.GetId(), ecogridv1.Role_ROLE_INSPECTOR)
	s.addPerson(t, admin, "outsider", "赵外乡", villageB.GetId(), ecogridv1.Role_ROLE_INSPECTOR)
	s.addPerson(t, admin, "officer", "陈科长", s.county.GetId(), ecogridv1.Role_ROLE_COUNTY_OFFICER)
}

func (s *stack) addPerson(t testing.TB, admin *user, username, name, nodeID string, role ecogridv1.Role) {
	t.Helper()
	people := ecogridv1.NewPeopleServiceClient(s.gridd)
	u := &user{username: username, password: "pw-" + username + "-2026!", personID: uuid.NewString(), name: name}
	if _, err := people.CreatePerson(as(admin), &ecogridv1.CreatePersonRequest{PersonId: u.personID, CountyCode: s.CountyCode, Name: name, EmployeeCode: "E-" + username}); err != nil {
		t.Fatalf("person %s: %v", username, err)
	}
	if _, err := people.CreateAccount(as(admin), &ecogridv1.CreateAccountRequest{AccountId: uuid.NewString(), PersonId: u.personID, Username: username, Password: u.password}); err != nil {
		t.Fatalf("account %s: %v", username, err)
	}
	if _, err := people.StartAssignment(as(admin), &ecogridv1.StartAssignmentRequest{AssignmentId: uuid.NewString(), PersonId: u.personID, NodeId: nodeID, Role: role, Tasks: []string{"patrol", "report", "case dispatch"}}); err != nil {
		t.Fatalf("assignment %s: %v", username, err)
	}
	s.login(t, u)
	s.people[username] = u
}

// inside is a point inside the village: the mean of its outer ring's
// vertices (demo villages are convex blocks), checked with LocatePoint.
func (s *stack) inside(t testing.TB, v *ecogridv1.GridNode) (lat, lon float64) {
	t.Helper()
	var g struct {
		Type        string          `json:"type"`
		Coordinates json.RawMessage `json:"coordinates"`
	}
	if err := json.Unmarshal([]byte(v.GetGeometryGeojson()), &g); err != nil {
		t.Fatal(err)
	}
	var ring [][]float64
	var mp [][][][]float64
	if err := json.Unmarshal(g.Coordinates, &mp); err == nil && len(mp) > 0 {
		ring = mp[0][0]
	} else {
		var p [][][]float64
		if err := json.Unmarshal(g.Coordinates, &p); err != nil {
			t.Fatalf("village geometry %s: %v", g.Type, err)
		}
		ring = p[0]
	}
	for _, c := range ring[:len(ring)-1] {
		lon += c[0]
		lat += c[1]
	}
	n := float64(len(ring) - 1)
	lat, lon = lat/n, lon/n
	r, err := ecogridv1.NewGridServiceClient(s.gridd).LocatePoint(as(s.people["admin"]), &ecogridv1.LocatePointRequest{Position: &ecogridv1.Position{Latitude: lat, Longitude: lon, CoordinateSystem: ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_WGS84}})
	if err != nil || r.GetCell().GetCode() != v.GetCode() {
		t.Fatalf("point %f,%f is in %s (%v), not village %s", lat, lon, r.GetCell().GetCode(), err, v.GetCode())
	}
	return lat, lon
}

// fileViolation files a violation report through the field API as the
// inspector of villageA and waits for cased to open its case.
func (s *stack) fileViolation(t testing.TB, description string) *ecogridv1.Case {
	t.Helper()
	in := s.people["inspector"]
	lat, lon := s.inside(t, s.villageA)
	id := uuid.NewString()
	_, err := ecogridv1.NewFieldServiceClient(s.gridd).SubmitReport(as(in), &ecogridv1.SubmitReportRequest{Report: &ecogridv1.ReportDraft{
		ReportId: id, ObservedAt: timestamppb.Now(), Category: "water", Severity: ecogridv1.Severity_SEVERITY_SERIOUS,
		Description: description, Violation: true,
		Position: &ecogridv1.Position{Latitude: lat, Longitude: lon, CoordinateSystem: ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_WGS84, AccuracyM: 5},
	}})
	if err != nil {
		t.Fatalf("submit report: %v", err)
	}
	cases := ecogridv1.NewCaseServiceClient(s.cased)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		r, err := cases.ListCases(as(s.people["supervisor"]), &ecogridv1.ListCasesRequest{Page: &ecogridv1.PageRequest{PageSize: 500}})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range r.GetCases() {
			if c.GetReportId() == id {
				return c
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no case for report %s after a minute", id)
	return nil
}

func (u *user) String() string { return fmt.Sprintf("%s(%s)", u.username, u.personID) }

// walkPatrol records, through the field API as the inspector of villageA's
// phone would, a patrol of n fixes a minute apart ending now, walking north
// from inside the village in steps of about 5 m, and returns its id.
func (s *stack) walkPatrol(t testing.TB, u *user, n int) string {
	t.Helper()
	field := ecogridv1.NewFieldServiceClient(s.gridd)
	lat, lon := s.inside(t, s.villageA)
	id := uuid.NewString()
	start := time.Now().Add(-time.Duration(n) * time.Minute)
	if _, err := field.StartPatrol(as(u), &ecogridv1.StartPatrolRequest{PatrolId: id, StartedAt: timestamppb.New(start)}); err != nil {
		t.Fatalf("start patrol: %v", err)
	}
	pts := make([]*ecogridv1.TrackPoint, n)
	for i := range pts {
		pts[i] = &ecogridv1.TrackPoint{RecordedAt: timestamppb.New(start.Add(time.Duration(i) * time.Minute)), Position: &ecogridv1.Position{
			Latitude: lat + float64(i)*0.00005, Longitude: lon + float64(i%2)*0.0001, CoordinateSystem: ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_WGS84, AccuracyM: 5}}
	}
	if r, err := field.AppendTrackPoints(as(u), &ecogridv1.AppendTrackPointsRequest{PatrolId: id, Points: pts}); err != nil || int(r.GetAdded()) != n {
		t.Fatalf("track points: %v %v", r, err)
	}
	if _, err := field.EndPatrol(as(u), &ecogridv1.EndPatrolRequest{PatrolId: id, EndedAt: timestamppb.New(start.Add(time.Duration(n-1) * time.Minute))}); err != nil {
		t.Fatalf("end patrol: %v", err)
	}
	return id
}

// addWatersAndZone loads, as the county office, one river reach through
// villageA (WatersService) and one drinking-water protection zone around
// its middle (ZoneService), so the map's reach and zone layers have
// something to draw.
func (s *stack) addWatersAndZone(t testing.TB) {
	t.Helper()
	off := s.people["officer"]
	lat, lon := s.inside(t, s.villageA)
	reach := fmt.Sprintf(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"SH-01","name":"沙河一段","body_code":"SH","body_name":"沙河","body_kind":"river","node_code":%q,"seq":1},"geometry":{"type":"LineString","coordinates":[[%f,%f],[%f,%f],[%f,%f]]}}]}`,
		s.CountyCode, lon-0.004, lat-0.001, lon, lat, lon+0.004, lat+0.001)
	if r, err := ecogridv1.NewWatersServiceClient(s.gridd).ImportReaches(as(off), &ecogridv1.ImportReachesRequest{Geojson: []byte(reach)}); err != nil || r.GetCreated() != 1 {
		t.Fatalf("import reach: %v %v", r, err)
	}
	d := 0.002
	zone := fmt.Sprintf(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"SY-01","kind":"drinking_water_1","name":"沙河水源一级保护区"},"geometry":{"type":"Polygon","coordinates":[[[%f,%f],[%f,%f],[%f,%f],[%f,%f],[%f,%f]]]}}]}`,
		lon-d, lat-d, lon+d, lat-d, lon+d, lat+d, lon-d, lat+d, lon-d, lat-d)
	st, err := ecogridv1.NewZoneServiceClient(s.gridd).ImportZones(as(off))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*ecogridv1.ImportZonesRequest{
		{Part: &ecogridv1.ImportZonesRequest_Header{Header: &ecogridv1.ImportZonesHeader{CountyCode: s.CountyCode, FileName: "zones.geojson"}}},
		{Part: &ecogridv1.ImportZonesRequest_Chunk{Chunk: []byte(zone)}},
	} {
		if err := st.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := st.CloseAndRecv(); err != nil || r.GetCreated() != 1 {
		t.Fatalf("import zone: %v %v", r, err)
	}
}

// seedTracks records n patrols of fixes each, as the three inspectors'
// phones would through the field API (four at a time), spread over the
// last six days and over every village of the county (most of them
// outside the inspector's own cells, which the patrol's flags say).
func (s *stack) seedTracks(t testing.TB, n, fixes int) {
	t.Helper()
	type spot struct{ lat, lon float64 }
	spots := make([]spot, len(s.villages))
	for i, v := range s.villages {
		spots[i].lat, spots[i].lon = s.inside(t, v)
	}
	walkers := []*user{s.people["inspector"], s.people["checker"], s.people["outsider"]}
	field := ecogridv1.NewFieldServiceClient(s.gridd)
	walk := func(i int) error {
		u, at := walkers[i%len(walkers)], spots[i%len(spots)]
		start := time.Now().Add(-6*24*time.Hour + time.Duration(i)*(6*24-2)*time.Hour/time.Duration(n)) // each ends before now
		id := uuid.NewString()
		if _, err := field.StartPatrol(as(u), &ecogridv1.StartPatrolRequest{PatrolId: id, StartedAt: timestamppb.New(start)}); err != nil {
			return fmt.Errorf("start patrol %d: %w", i, err)
		}
		pts := make([]*ecogridv1.TrackPoint, fixes)
		for k := range pts {
			a := float64(k) / float64(fixes) * 2 * math.Pi
			pts[k] = &ecogridv1.TrackPoint{RecordedAt: timestamppb.New(start.Add(time.Duration(k) * 30 * time.Second)), Position: &ecogridv1.Position{
				Latitude: at.lat + 0.003*math.Sin(a) + 0.0002*float64(k%3), Longitude: at.lon + 0.004*math.Sin(2*a),
				CoordinateSystem: ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_WGS84, AccuracyM: 5}}
		}
		if _, err := field.AppendTrackPoints(as(u), &ecogridv1.AppendTrackPointsRequest{PatrolId: id, Points: pts}); err != nil {
			return fmt.Errorf("track of patrol %d: %w", i, err)
		}
		if _, err := field.EndPatrol(as(u), &ecogridv1.EndPatrolRequest{PatrolId: id, EndedAt: timestamppb.New(start.Add(time.Duration(fixes-1) * 30 * time.Second))}); err != nil {
			return fmt.Errorf("end patrol %d: %w", i, err)
		}
		return nil
	}
	next := make(chan int)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			var first error
			for i := range next {
				if err := walk(i); err != nil && first == nil {
					first = err
				}
			}
			errs <- first
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
