package field

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/coord"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/field/blob"
	"ecogrid/internal/ledger"
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

// rectLocator stands in for the grid's index with the rectangles above.
type rectLocator struct{}

func (rectLocator) Locate(_ context.Context, lat, lon float64) (Location, bool, error) {
	if lat < 29.0 || lat >= 29.1 || lon < 106.0 || lon >= 106.2 {
		if lat >= 30.0 && lat < 30.1 && lon >= 106.0 && lon < 106.1 {
			return Location{CountyCode: otherCounty, TownshipCode: otherVillage[:9], VillageCode: otherVillage}, true, nil
		}
		return Location{}, false, nil
	}
	t := townshipWest
	if lon >= 106.1 {
		t = townshipEast
	}
	v := t + "001"
	if lat >= 29.05 {
		v = t + "002"
	}
	return Location{CountyCode: testCounty, TownshipCode: t, VillageCode: v}, true, nil
}

// testDirectory stands in for the people context.
type testDirectory struct {
	fail error
}

func (d testDirectory) ResponsibleAt(_ context.Context, _ database.Querier, node string, _ time.Time) ([]ledger.Responsible, error) {
	if d.fail != nil {
		return nil, d.fail
	}
	out := []ledger.Responsible{{PersonID: chiefPersonID, Name: "Wang Chief", Role: "grid_chief", NodeCode: node[:9]}}
	if node == villageWS {
		out = append(out, ledger.Responsible{PersonID: inspectorAID, Name: "Li Inspector", Role: "inspector", NodeCode: node})
	}
	return out, nil
}

func (d testDirectory) InspectorsUnder(_ context.Context, _ database.Querier, node string, _ time.Time) ([]Assignee, error) {
	all := []Assignee{{PersonID: inspectorAID, NodeCode: villageWS}, {PersonID: inspectorBID, NodeCode: villageES}}
	var out []Assignee
	for _, a := range all {
		if strings.HasPrefix(a.NodeCode, node) {
			out = append(out, a)
		}
	}
	return out, nil
}

// testTasks: every village asks two patrols a week of 20 min and 1 km.
type testTasks struct{}

func (testTasks) PatrolRules(_ context.Context, _ database.Querier, cells []string) (map[string]PatrolRule, error) {
	out := map[string]PatrolRule{}
	for _, c := range cells {
		out[c] = PatrolRule{PerWeek: 2, MinDuration: 20 * time.Minute, MinDistanceM: 1000}
	}
	return out, nil
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
	dir   *testDirectory
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	pool := dbtest.NewPool(t)
	blobs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{t: time.Now().UTC().Truncate(time.Microsecond)}
	dir := &testDirectory{}
	f, err := New(Deps{
		Pool: pool, Locator: rectLocator{}, Directory: dirProxy{dir}, Tasks: testTasks{},
		Blobs: blobs, Now: clock.Now,
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{f: f, pool: pool, clock: clock, blobs: blobs, dir: dir}
}

// dirProxy lets a test change the directory's behaviour after New.
type dirProxy struct{ d *testDirectory }

func (p dirProxy) ResponsibleAt(ctx context.Context, q database.Querier, n string, at time.Time) ([]ledger.Responsible, error) {
	return p.d.ResponsibleAt(ctx, q, n, at)
}

func (p dirProxy) InspectorsUnder(ctx context.Context, q database.Querier, n string, at time.Time) ([]Assignee, error) {
	return p.d.InspectorsUnder(ctx, q, n, at)
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

var errDirectoryDown = errors.New("people directory unavailable")

func codeOf(err error) codes.Code { return structerr.Code(err) }
