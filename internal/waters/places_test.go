package waters_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/cases"
	"ecogrid/internal/coord"
	"ecogrid/internal/field"
	"ecogrid/internal/field/blob"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/gridadapt"
	"ecogrid/internal/scope"
	"ecogrid/internal/waters"
	"ecogrid/internal/zones"
)

// Issue 17: a report filed within 50 m of a reach is attached to it, by
// the version in force, and keeps that version after the reach is
// redrawn; the case of a violation on the reach reaches its chief (who
// holds no grid post) as well as the cell's supervisor.
func TestReportsKeepTheirReachAndCasesReachItsChief(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	fs := e.importRiver(t) // HTH-01 is the village reach, 114.41–114.47°E along 38.153°N
	chiefID := uuid.NewString()
	if _, _, err := e.store.AssignChief(ctx, officer("130123"), waters.NewChief{ID: uuid.NewString(), PersonID: chiefID, Name: "张三",
		Role: waters.RoleReachChief, ReachCode: "HTH-01", ValidFrom: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		Tasks: []waters.ChiefTask{{Kind: waters.TaskPatrol, Period: grid.PeriodWeek, Count: 1}, {Kind: waters.TaskCleaning, Period: grid.PeriodDay, Count: 1, CleanerName: "李四"}}}); err != nil {
		t.Fatal(err)
	}
	ix := waters.NewIndex(e.store, nil)
	if err := ix.Load(ctx); err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := field.New(field.Deps{Pool: e.pool, Locator: gridadapt.Locator{Index: e.index}, Blobs: blobs, Reaches: ix, Chiefs: e.store}, field.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	inspector := scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleInspector, NodeCode: fs[0].Node}}}
	file := func(lat, lon float64, violation bool) field.Report {
		t.Helper()
		r, _, err := f.SubmitReport(ctx, inspector, field.Draft{ID: uuid.NewString(), ObservedAt: time.Now().Add(-time.Minute), Category: "water",
			Severity: field.SeverityNormal, Description: "河道漂浮垃圾", Violation: violation,
			Position: field.Position{Lat: lat, Lon: lon, System: coord.WGS84, AccuracyM: 5}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	placesOf := func(id string) field.Places {
		t.Helper()
		p, err := field.ReportPlaces(ctx, e.pool, id)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// 22 m north of the reach near its upstream end, and 220 m north.
	near := file(38.1532, 114.42, true)
	far := file(38.1550, 114.42, false)
	if got := placesOf(near.ID).Reaches; !slices.Equal(got, []field.ReachRef{{Code: "HTH-01", Version: 1}}) {
		t.Fatalf("report 22 m from the reach is attached to %v", got)
	}
	if got := placesOf(far.ID).Reaches; len(got) != 0 {
		t.Fatalf("report 220 m from the reach is attached to %v", got)
	}
	if got, err := f.GetReport(ctx, inspector, near.ID); err != nil || !slices.Equal(got.Places.ReachCodes(), []string{"HTH-01"}) {
		t.Fatalf("GetReport: reaches %v, %v", got.Places.ReachCodes(), err)
	}

	// The reach is redrawn from today: it now starts at 114.44°E.
	fs[0].Coords = line(38.153, 114.44, 114.47)
	if res, err := e.store.ImportGeoJSON(ctx, collection(fs...), waters.ParseLimits{}, waters.ImportOptions{Effective: time.Now().Add(-time.Second)}); err != nil || res.Updated != 1 {
		t.Fatalf("redrawing the reach: %+v, %v", res, err)
	}
	if err := ix.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got := placesOf(near.ID).Reaches; !slices.Equal(got, []field.ReachRef{{Code: "HTH-01", Version: 1}}) {
		t.Fatalf("after the redraw the old report is attached to %v, want HTH-01 version 1", got)
	}
	if got := placesOf(file(38.1532, 114.42, false).ID).Reaches; len(got) != 0 {
		t.Fatalf("a report where the reach no longer runs is attached to %v", got)
	}
	if got := placesOf(file(38.1532, 114.45, false).ID).Reaches; !slices.Equal(got, []field.ReachRef{{Code: "HTH-01", Version: 2}}) {
		t.Fatalf("a report beside the redrawn reach is attached to %v, want HTH-01 version 2", got)
	}

	// The violation's case: the cell's supervisor and the reach's chief see it.
	var payload []byte
	if err := e.pool.QueryRow(ctx, `SELECT payload FROM outbox.events WHERE event_id = $1`, near.EventID).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	var ev eventsv1.ViolationReported
	if err := proto.Unmarshal(payload, &ev); err != nil {
		t.Fatal(err)
	}
	tracker := cases.NewTracker(e.pool, nil)
	opened, err := tracker.OpenFromViolation(ctx, &ev, cases.Source{Subject: "test", Kind: "test"})
	if err != nil || !opened.Created {
		t.Fatalf("opening the case: %+v, %v", opened, err)
	}
	if again, err := tracker.OpenFromViolation(ctx, &ev, cases.Source{Subject: "test", Kind: "test"}); err != nil || again.Created || again.CaseID != opened.CaseID {
		t.Fatalf("the violation again: %+v, %v; want the same case, not a new one", again, err)
	}
	var named int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM ledger.records r JOIN ledger.record_people p USING (county_code, seq)
		WHERE r.action = 'case.opened' AND r.subject_id = $1 AND p.person_id = $2 AND NOT p.as_actor`, opened.CaseID, chiefID).Scan(&named); err != nil || named != 1 {
		t.Fatalf("the case's opening ledger record names the reach chief %d times (%v), want 1", named, err)
	}
	chief := scope.Caller{PersonID: chiefID}
	supervisor := scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleTownshipSupervisor, NodeCode: fs[0].Node[:9]}}}
	stranger := scope.Caller{PersonID: uuid.NewString()}
	for _, who := range []struct {
		name   string
		caller scope.Caller
		sees   bool
	}{{"the reach's chief", chief, true}, {"the township supervisor", supervisor, true}, {"someone else", stranger, false}} {
		list, _, err := tracker.List(ctx, who.caller, cases.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		_, getErr := tracker.Get(ctx, who.caller, opened.CaseID)
		if (len(list) == 1) != who.sees || (getErr == nil) != who.sees {
			t.Fatalf("%s lists %d cases and gets %v; sees = %v", who.name, len(list), getErr, who.sees)
		}
		if who.sees && !slices.Equal(list[0].ReachCodes, []string{"HTH-01"}) {
			t.Fatalf("case reaches %v", list[0].ReachCodes)
		}
	}
	// The chief only sees: the case's steps stay with the grid's roles.
	if _, err := tracker.Transition(ctx, chief, opened.CaseID, uuid.NewString(), cases.ActionAccept, cases.Input{}); err == nil {
		t.Fatal("the reach chief accepted the case")
	}
}

// Issue 18: a zone's patrol quota is counted from the county's patrol
// tracks that entered it in the month (field's tracks, zones' index and
// the county's rule: 30 a month in a level-1 drinking-water zone).
func TestZonePatrolQuotasCountTracksInside(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	zone := `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"SY-1","kind":"drinking_water_1","name":"水源一级保护区"},
		"geometry":{"type":"Polygon","coordinates":[[[114.50,38.10],[114.52,38.10],[114.52,38.12],[114.50,38.12],[114.50,38.10]]]}}]}`
	if _, err := zones.NewStore(e.pool).ImportGeoJSON(ctx, "130123", strings.NewReader(zone), zones.ImportOptions{EffectiveFrom: time.Now().Add(-48 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	zix := zones.NewIndex(e.pool, nil)
	if err := zix.Load(ctx); err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := field.New(field.Deps{Pool: e.pool, Locator: gridadapt.Locator{Index: e.index}, Blobs: blobs}, field.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := e.index.Locate(38.11, 114.51)
	inspector := scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleInspector, NodeCode: loc.Cell.Code}}}
	start := time.Now().Add(-3 * time.Hour)
	walk(t, f, inspector, start, [][2]float64{{38.098, 114.51}, {38.105, 114.51}, {38.11, 114.51}})                   // enters the zone
	walk(t, f, inspector, start.Add(time.Hour), [][2]float64{{38.095, 114.49}, {38.098, 114.495}, {38.099, 114.498}}) // stays outside
	svc := zones.NewService(zones.NewStore(e.pool), zix, nil)
	svc.Tracks = field.Tracks{Q: e.pool}
	as := func(c scope.Caller) context.Context { return scope.NewContext(ctx, c) }
	resp, err := svc.GetZonePatrolQuotas(as(officer("130123")), &ecogridv1.GetZonePatrolQuotasRequest{CountyCode: "130123"})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetQuotas()) != 1 {
		t.Fatalf("quotas %v", resp.GetQuotas())
	}
	q := resp.GetQuotas()[0]
	if q.GetZoneCode() != "130123/SY-1" || q.GetRequired() != 30 || q.GetDone() != 1 || !q.GetShort() {
		t.Fatalf("quota of SY-1 = %v; want 1 of 30 patrols", q)
	}
	if _, err := svc.GetZonePatrolQuotas(as(officer("130124")), &ecogridv1.GetZonePatrolQuotasRequest{CountyCode: "130123"}); status.Code(err) != codes.NotFound {
		t.Fatalf("another county's office = %v; want NotFound", err)
	}
	if _, err := svc.GetZonePatrolQuotas(as(officer("130123")), &ecogridv1.GetZonePatrolQuotasRequest{CountyCode: "130123", Month: "2026-13"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("month 2026-13 = %v; want InvalidArgument", err)
	}
}
