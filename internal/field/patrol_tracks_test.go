package field

import (
	"context"
	"encoding/json"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
)

// zigzag returns n fixes every 10 s heading north from lat0/lon0, every
// other fix 0.0003° (about 29 m) east: a track Douglas-Peucker cannot
// shorten at 10 m.
func zigzag(start time.Time, n int, lat0, lon0 float64) []TrackPoint {
	pts := make([]TrackPoint, n)
	for i := range pts {
		pts[i] = TrackPoint{RecordedAt: start.Add(time.Duration(i) * 10 * time.Second),
			Position: wgs(lat0+float64(i)*0.00005, lon0+float64(i%2)*0.0003)}
	}
	return pts
}

type trackFixture struct {
	e                         *env
	cl                        ecogridv1.FieldServiceClient
	long, single, east, alive string // patrol ids
	longPts                   []TrackPoint
	from, to                  time.Time
}

// newTrackFixture: inspector A walks a 400-fix zigzag in village WS and
// files a patrol with a single fix, and has a patrol under way (3 fixes);
// inspector B walks in the east township's village ES.
func newTrackFixture(t *testing.T) *trackFixture {
	t.Helper()
	e := newEnv(t, Config{})
	now := e.clock.Now()
	f := &trackFixture{e: e, cl: startServer(t, e.f), from: now.Add(-24 * time.Hour), to: now.Add(time.Hour)}
	f.longPts = zigzag(now.Add(-5*time.Hour), 400, 29.01, 106.05)
	f.long = e.patrol(t, inspectorA, f.longPts).ID
	f.single = e.patrol(t, inspectorA, zigzag(now.Add(-3*time.Hour), 1, 29.02, 106.02)).ID
	f.east = e.patrol(t, inspectorB, zigzag(now.Add(-2*time.Hour), 30, 29.01, 106.15)).ID
	ctx := context.Background()
	f.alive = uuid.NewString()
	if _, err := e.f.StartPatrol(ctx, inspectorA, f.alive, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.f.AppendTrackPoints(ctx, inspectorA, f.alive, zigzag(now.Add(-time.Hour), 3, 29.03, 106.03)); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *trackFixture) list(t *testing.T, who, node string, mod func(*ecogridv1.ListPatrolTracksRequest)) (*ecogridv1.ListPatrolTracksResponse, error) {
	t.Helper()
	req := &ecogridv1.ListPatrolTracksRequest{NodeCode: node, From: timestamppb.New(f.from), To: timestamppb.New(f.to)}
	if mod != nil {
		mod(req)
	}
	return f.cl.ListPatrolTracks(as(who), req)
}

func trackIDs(r *ecogridv1.ListPatrolTracksResponse) []string {
	var out []string
	for _, tr := range r.GetTracks() {
		out = append(out, tr.GetPatrolId())
	}
	slices.Sort(out)
	return out
}

func sorted(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// TestListPatrolTracksScope: the county office sees the county's patrols,
// the west township's supervisor the west's, an inspector their own under
// any node of their cells; a node outside the caller's cells is NotFound.
func TestListPatrolTracksScope(t *testing.T) {
	f := newTrackFixture(t)
	allA := sorted(f.long, f.single, f.alive)
	for _, tc := range []struct {
		name, who, node, person string
		want                    []string
		code                    codes.Code
	}{
		{"county office, county", officerID, testCounty, "", sorted(f.long, f.single, f.alive, f.east), codes.OK},
		{"county office, east township", officerID, townshipEast, "", []string{f.east}, codes.OK},
		{"county office, one person", officerID, testCounty, inspectorBID, []string{f.east}, codes.OK},
		{"other county's office", otherOfficer, testCounty, "", nil, codes.NotFound},
		{"supervisor, own township", supervisorID, townshipWest, "", allA, codes.OK},
		{"supervisor, other township", supervisorID, townshipEast, "", nil, codes.NotFound},
		{"inspector, own village", inspectorAID, villageWS, "", allA, codes.OK},
		{"inspector, own county: still own patrols", inspectorAID, testCounty, "", allA, codes.OK},
		{"inspector asks for another's patrols", inspectorAID, villageWS, inspectorBID, nil, codes.OK},
		{"inspector, neighbour's village", inspectorAID, villageES, "", nil, codes.NotFound},
		{"other inspector, county", inspectorBID, testCounty, "", []string{f.east}, codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := f.list(t, tc.who, tc.node, func(r *ecogridv1.ListPatrolTracksRequest) { r.PersonId = tc.person })
			grpcCode(t, err, tc.code)
			if got := trackIDs(r); !slices.Equal(got, tc.want) {
				t.Fatalf("patrols %v, want %v", got, tc.want)
			}
		})
	}
}

// TestListPatrolTracksWindowAndRules: the window is bounded, and a bad
// request names its field.
func TestListPatrolTracksWindowAndRules(t *testing.T) {
	f := newTrackFixture(t)
	for _, tc := range []struct {
		name, field string
		mod         func(*ecogridv1.ListPatrolTracksRequest)
	}{
		{"32 days", "to", func(r *ecogridv1.ListPatrolTracksRequest) {
			r.To = timestamppb.New(f.from.Add(32 * 24 * time.Hour))
		}},
		{"to before from", "to", func(r *ecogridv1.ListPatrolTracksRequest) { r.To = timestamppb.New(f.from.Add(-time.Second)) }},
		{"no from", "from", func(r *ecogridv1.ListPatrolTracksRequest) { r.From = nil }},
		{"node not a grid code", "node_code", func(r *ecogridv1.ListPatrolTracksRequest) { r.NodeCode = "5001" }},
		{"one point per track", "max_points", func(r *ecogridv1.ListPatrolTracksRequest) { r.MaxPoints = 1 }},
		{"negative tolerance", "tolerance_m", func(r *ecogridv1.ListPatrolTracksRequest) { r.ToleranceM = -1 }},
		{"bad person", "person_id", func(r *ecogridv1.ListPatrolTracksRequest) { r.PersonId = "x" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.list(t, officerID, testCounty, tc.mod)
			grpcCode(t, err, codes.InvalidArgument)
			br := badRequestOf(err)
			if br == nil || len(br.GetFieldViolations()) == 0 || br.GetFieldViolations()[0].GetField() != tc.field {
				t.Fatalf("%v: violations %v, want field %s", err, br, tc.field)
			}
		})
	}
	// 31 days exactly is allowed; the patrols before the window are not in it.
	r, err := f.list(t, officerID, testCounty, func(r *ecogridv1.ListPatrolTracksRequest) {
		r.From, r.To = timestamppb.New(f.to.Add(-31*24*time.Hour)), timestamppb.New(f.to)
	})
	if err != nil || len(r.GetTracks()) != 4 {
		t.Fatalf("31 days: %d tracks, %v", len(r.GetTracks()), err)
	}
	r, err = f.list(t, officerID, testCounty, func(r *ecogridv1.ListPatrolTracksRequest) {
		r.From = timestamppb.New(f.e.clock.Now().Add(-90 * time.Minute))
	})
	if err != nil || !slices.Equal(trackIDs(r), []string{f.alive}) {
		t.Fatalf("the last 90 minutes: %v, %v; want the patrol under way only", trackIDs(r), err)
	}
}

type lineString struct {
	Type        string       `json:"type"`
	Coordinates [][2]float64 `json:"coordinates"`
}

func trackOf(t *testing.T, r *ecogridv1.ListPatrolTracksResponse, id string) (*ecogridv1.PatrolTrack, lineString) {
	t.Helper()
	for _, tr := range r.GetTracks() {
		if tr.GetPatrolId() == id {
			var ls lineString
			if tr.GetGeometryGeojson() != "" {
				if err := json.Unmarshal([]byte(tr.GetGeometryGeojson()), &ls); err != nil {
					t.Fatalf("geometry %q: %v", tr.GetGeometryGeojson(), err)
				}
			}
			return tr, ls
		}
	}
	t.Fatalf("patrol %s not listed", id)
	return nil, lineString{}
}

func near(a [2]float64, p Position) bool {
	return math.Abs(a[0]-p.Lon) < 2e-6 && math.Abs(a[1]-p.Lat) < 2e-6
}

// TestListPatrolTracksSimplifies: the line keeps the first and last fix,
// has at most max_points points, and loses the zigzag only when the
// tolerance is wider than it; a patrol with one fix has no line.
func TestListPatrolTracksSimplifies(t *testing.T) {
	f := newTrackFixture(t)
	first, last := f.longPts[0].Position, f.longPts[len(f.longPts)-1].Position
	for _, tc := range []struct {
		name       string
		tolerance  float64
		maxPoints  int32
		minN, maxN int
	}{
		{"10 m keeps the 29 m zigzag", 0, 0, 390, 400},
		{"bounded to 50 points", 0, 50, 2, 50},
		{"5 km leaves the ends", 5000, 0, 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := f.list(t, officerID, testCounty, func(r *ecogridv1.ListPatrolTracksRequest) {
				r.ToleranceM, r.MaxPoints = tc.tolerance, tc.maxPoints
			})
			if err != nil {
				t.Fatal(err)
			}
			tr, ls := trackOf(t, r, f.long)
			n := len(ls.Coordinates)
			if ls.Type != "LineString" || n < tc.minN || n > tc.maxN {
				t.Fatalf("%s with %d points, want %d–%d", ls.Type, n, tc.minN, tc.maxN)
			}
			if !near(ls.Coordinates[0], first) || !near(ls.Coordinates[n-1], last) {
				t.Fatalf("ends %v … %v, want %v … %v", ls.Coordinates[0], ls.Coordinates[n-1], first, last)
			}
			if tr.GetPersonName() != "Li Inspector" || tr.GetPointCount() != 400 || tr.GetDistanceM() < 400*29 ||
				tr.GetState() != ecogridv1.PatrolState_PATROL_STATE_ENDED || !slices.Equal(tr.GetVillageCodes(), []string{villageWS}) {
				t.Fatalf("track %+v", tr)
			}
		})
	}
	r, err := f.list(t, officerID, testCounty, nil)
	if err != nil {
		t.Fatal(err)
	}
	one, _ := trackOf(t, r, f.single)
	if one.GetGeometryGeojson() != "" || one.GetPointCount() != 1 || !slices.Contains(one.GetFlags(), ecogridv1.PatrolFlag_PATROL_FLAG_NO_TRACK) {
		t.Fatalf("patrol with one fix: %+v", one)
	}
	alive, ls := trackOf(t, r, f.alive)
	if alive.GetState() != ecogridv1.PatrolState_PATROL_STATE_ACTIVE || alive.GetEndedAt() != nil || len(ls.Coordinates) != 3 {
		t.Fatalf("patrol under way: %+v", alive)
	}
}

// TestListPatrolTracksPages: keyset pages of one, newest first, each
// patrol once; a token this list did not give is refused.
func TestListPatrolTracksPages(t *testing.T) {
	f := newTrackFixture(t)
	var seen []string
	var starts []time.Time
	token := ""
	for range 10 {
		r, err := f.list(t, officerID, testCounty, func(r *ecogridv1.ListPatrolTracksRequest) {
			r.Page = &ecogridv1.PageRequest{PageSize: 1, PageToken: token}
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range r.GetTracks() {
			seen = append(seen, tr.GetPatrolId())
			starts = append(starts, tr.GetStartedAt().AsTime())
		}
		if token = r.GetNextPageToken(); token == "" {
			break
		}
	}
	if want := []string{f.alive, f.east, f.single, f.long}; !slices.Equal(seen, want) {
		t.Fatalf("pages gave %v, want newest first %v", seen, want)
	}
	if !slices.IsSortedFunc(starts, func(a, b time.Time) int { return b.Compare(a) }) {
		t.Fatalf("not newest first: %v", starts)
	}
	_, err := f.list(t, officerID, testCounty, func(r *ecogridv1.ListPatrolTracksRequest) {
		r.Page = &ecogridv1.PageRequest{PageToken: "bm90LWEtdG9rZW4"}
	})
	grpcCode(t, err, codes.InvalidArgument)
}

func TestBoundPointsKeepsEnds(t *testing.T) {
	line := make([][2]float64, 1000)
	for i := range line {
		line[i] = [2]float64{float64(i) * 1e-4, float64(i%2) * 1e-3}
	}
	line[len(line)-1] = line[0] // a loop back to the start
	for _, limit := range []int{2, 3, 10, 999} {
		got := boundPoints(line, limit, 1e-6)
		if len(got) > limit || len(got) < 2 || got[0] != line[0] || got[len(got)-1] != line[len(line)-1] {
			t.Fatalf("limit %d: %d points, ends %v %v", limit, len(got), got[0], got[len(got)-1])
		}
	}
}
