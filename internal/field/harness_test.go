package field

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/coord"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/field/blob"
	"ecogrid/internal/grid"
	"ecogrid/internal/people"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// The test county 500101 is a 0.2° × 0.1° rectangle at 106.0–106.2 E,
// 29.0–29.1 N, cut into two townships (west 001, east 002), each cut into
// two villages (south 001, north 002).
const (
	testCounty    = "500101"
	townshipWest  = "500101001"
	townshipEast  = "500101002"
	villageWS     = "500101001001"
	villageWN     = "500101001002"
	villageES     = "500101002001"
	otherCounty   = "500102"
	otherVillage  = "500102001001"
	inspectorAID  = "0a000000-0000-4000-8000-00000000000a"
	inspectorBID  = "0b000000-0000-4000-8000-00000000000b"
	supervisorID  = "05000000-0000-4000-8000-000000000005"
	officerID     = "0c000000-0000-4000-8000-00000000000c"
	otherOfficer  = "0d000000-0000-4000-8000-00000000000d"
	chiefPersonID = "0e000000-0000-4000-8000-00000000000e"
)

// testGrid is the GeoJSON of the test counties: 500101 as described
// above, every village asking two patrols a week of 20 min and 1 km, and
// 500102 (one township, one village) at 106.0–106.1 E, 30.0–30.1 N.
func testGrid() []byte {
	type feature struct {
		code, name    string
		w, s, e, n    float64
		patrolsNeeded bool
	}
	fs := []feature{
		{testCounty, "Test County", 106.0, 29.0, 106.2, 29.1, false},
		{townshipWest, "West Township", 106.0, 29.0, 106.1, 29.1, false},
		{townshipEast, "East Township", 106.1, 29.0, 106.2, 29.1, false},
		{villageWS, "West-South Village", 106.0, 29.0, 106.1, 29.05, true},
		{villageWN, "West-North Village", 106.0, 29.05, 106.1, 29.1, true},
		{villageES, "East-South Village", 106.1, 29.0, 106.2, 29.05, true},
		{townshipEast + "002", "East-North Village", 106.1, 29.05, 106.2, 29.1, true},
		{otherCounty, "Other County", 106.0, 30.0, 106.1, 30.1, false},
		{otherVillage[:9], "Other Township", 106.0, 30.0, 106.1, 30.1, false},
		{otherVillage, "Other Village", 106.0, 30.0, 106.1, 30.1, true},
	}
	var b strings.Builder
	b.WriteString(`{"type":"FeatureCollection","features":[`)
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(',')
		}
		tasks := ""
		if f.patrolsNeeded {
			tasks = `,"tasks":[{"kind":"patrol","count":2,"period":"week","min_minutes":20,"min_distance_m":1000}]`
		}
		fmt.Fprintf(&b, `{"type":"Feature","properties":{"code":%q,"name":%q%s},"geometry":{"type":"Polygon","coordinates":[[[%v,%v],[%v,%v],[%v,%v],[%v,%v],[%v,%v]]]}}`,
			f.code, f.name, tasks, f.w, f.s, f.e, f.s, f.e, f.n, f.w, f.n, f.w, f.s)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// indexLocator serves Locator from the grid's index, as gridd's
// gridadapt.Locator does (which field's own tests cannot import).
type indexLocator struct{ ix *grid.Index }

func (l indexLocator) Locate(_ context.Context, lat, lon float64) (Location, bool, error) {
	loc, ok, err := l.ix.LocateNow(lat, lon)
	return locationOf(loc), ok, err
}

func (l indexLocator) LocateAt(ctx context.Context, lat, lon float64, at time.Time) (Location, bool, error) {
	loc, ok, err := l.ix.LocateAt(ctx, lat, lon, at)
	return locationOf(loc), ok, err
}

func locationOf(loc grid.Location) Location {
	return Location{CountyCode: loc.CodeAt(grid.LevelCounty), TownshipCode: loc.CodeAt(grid.LevelTownship), VillageCode: loc.CodeAt(grid.LevelVillage)}
}

// seedGrid imports the test grid and returns its loaded index.
func seedGrid(t testing.TB, pool *pgxpool.Pool) *grid.Index {
	t.Helper()
	ctx := context.Background()
	if _, err := grid.NewStore(pool, grid.Config{}).ImportGeoJSON(ctx, bytes.NewReader(testGrid()), grid.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	ix := grid.NewIndex(pool, nil)
	if err := ix.Load(ctx); err != nil {
		t.Fatal(err)
	}
	return ix
}

// seedPeople records, through people's Go API, the people responsible in
// the test county: the west township's grid chief, inspector A in
// villageWS and inspector B in villageES, from 23 hours ago (people
// refuses to backdate further): tests of past periods look ahead instead.
func seedPeople(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	gs := grid.NewStore(pool, grid.Config{})
	ps := people.NewStore(pool, nil)
	for _, a := range []struct {
		person, name, node string
		role               scope.Role
	}{
		{chiefPersonID, "Wang Chief", townshipWest, scope.RoleGridChief},
		{inspectorAID, "Li Inspector", villageWS, scope.RoleInspector},
		{inspectorBID, "Zhao Inspector", villageES, scope.RoleInspector},
	} {
		if _, _, err := ps.CreatePerson(ctx, people.SystemActor, people.Person{ID: a.person, CountyCode: testCounty, Name: a.name}); err != nil {
			t.Fatal(err)
		}
		n, err := gs.NodeByCode(ctx, a.node)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ps.StartAssignment(ctx, people.SystemActor, people.NewAssignment{
			ID: uuid.NewString(), PersonID: a.person, NodeID: n.ID.String(), NodeCode: a.node, Role: a.role,
			ValidFrom: time.Now().Add(-23 * time.Hour), // as far back as people allows
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func caller(person string, role scope.Role, node string) scope.Caller {
	return scope.Caller{PersonID: person, Grants: []scope.Grant{{Role: role, NodeID: uuid.NewString(), NodeCode: node}}}
}

var (
	inspectorA = caller(inspectorAID, scope.RoleInspector, villageWS)
	inspectorB = caller(inspectorBID, scope.RoleInspector, villageES)
	supervisor = caller(supervisorID, scope.RoleTownshipSupervisor, townshipWest)
	officer    = caller(officerID, scope.RoleCountyOfficer, testCounty)
	officer2   = caller(otherOfficer, scope.RoleCountyOfficer, otherCounty)
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	f     *Field
	pool  *pgxpool.Pool
	clock *testClock
	blobs *blob.FS
	loc   Locator
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	pool := dbtest.NewPool(t)
	loc := indexLocator{seedGrid(t, pool)}
	seedPeople(t, pool)
	blobs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Now().UTC().Truncate(time.Microsecond)}
	f, err := New(Deps{Pool: pool, Locator: loc, Blobs: blobs, Now: clock.Now}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{f: f, pool: pool, clock: clock, blobs: blobs, loc: loc}
}

func wgs(lat, lon float64) Position {
	return Position{Lat: lat, Lon: lon, System: coord.WGS84, AccuracyM: 5}
}

func (e *env) draft(lat, lon float64) Draft {
	return Draft{
		ID:          uuid.NewString(),
		ObservedAt:  e.clock.Now().Add(-time.Minute),
		Category:    "water",
		Severity:    SeverityNormal,
		Description: "oily film on the stream below the pig farm",
		Position:    wgs(lat, lon),
	}
}

func wantCode(t testing.TB, err error, code codes.Code) {
	t.Helper()
	if got := structerr.Code(err); got != code {
		t.Fatalf("got %v (%v), want %v", got, err, code)
	}
}

func count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func codeOf(err error) codes.Code { return structerr.Code(err) }
