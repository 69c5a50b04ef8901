package field

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/coord"
	"ecogrid/internal/grid"
	"ecogrid/internal/people"
	"ecogrid/internal/scope"
)

// walk returns n fixes every step seconds from start, heading north from
// lat0/lon0 by dlat degrees per fix.
func walk(start time.Time, n int, step time.Duration, lat0, lon0, dlat float64) []TrackPoint {
	pts := make([]TrackPoint, n)
	for i := range pts {
		pts[i] = TrackPoint{RecordedAt: start.Add(time.Duration(i) * step), Position: wgs(lat0+float64(i)*dlat, lon0)}
	}
	return pts
}

func pathLength(pts []TrackPoint) float64 {
	d := 0.0
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1].Position, pts[i].Position
		d += coord.DistanceMeters(a.Lat, a.Lon, b.Lat, b.Lon)
	}
	return d
}

func (e *env) patrol(t *testing.T, c scope.Caller, pts []TrackPoint) Patrol {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	if _, err := e.f.StartPatrol(ctx, c, id, pts[0].RecordedAt); err != nil {
		t.Fatal(err)
	}
	if _, err := e.f.AppendTrackPoints(ctx, c, id, pts); err != nil {
		t.Fatal(err)
	}
	p, err := e.f.EndPatrol(ctx, c, id, pts[len(pts)-1].RecordedAt)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPatrolMergesBatchesExactlyOnce(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	start := e.clock.Now().Add(-2 * time.Hour)
	pts := walk(start, 81, 30*time.Second, 29.005, 106.05, 0.000375)
	id := uuid.NewString()
	p, err := e.f.StartPatrol(ctx, inspectorA, id, start)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := e.f.StartPatrol(ctx, inspectorA, id, start); err != nil || again.ID != p.ID {
		t.Fatalf("replayed start: %v", err)
	}
	_, err = e.f.StartPatrol(ctx, inspectorA, id, start.Add(time.Minute))
	wantCode(t, err, codes.AlreadyExists)

	// Late, out of order and twice.
	for _, b := range [][2]int{{40, 80}, {0, 40}, {20, 60}, {40, 80}} {
		res, err := e.f.AppendTrackPoints(ctx, inspectorA, id, pts[b[0]:b[1]])
		if err != nil {
			t.Fatal(err)
		}
		if res.Added+res.Duplicates != b[1]-b[0] {
			t.Fatalf("batch %v: %+v", b, res)
		}
	}
	res, err := e.f.AppendTrackPoints(ctx, inspectorA, id, pts[79:80])
	if err != nil || res.Added != 0 || res.Duplicates != 1 || res.PointCount != 80 {
		t.Fatalf("replayed point: %+v %v", res, err)
	}
	// Inspector B cannot touch A's patrol.
	_, err = e.f.AppendTrackPoints(ctx, inspectorB, id, pts[:1])
	wantCode(t, err, codes.NotFound)

	ended, err := e.f.EndPatrol(ctx, inspectorA, id, pts[79].RecordedAt)
	if err != nil {
		t.Fatal(err)
	}
	want := pathLength(pts[:80])
	if ended.PointCount != 80 || math.Abs(ended.DistanceM-want)/want > 0.005 {
		t.Fatalf("points %d distance %.1f m, want 80 and %.1f m", ended.PointCount, ended.DistanceM, want)
	}
	if ended.Duration != 79*30*time.Second || !slices.Equal(ended.CellCodes, []string{villageWS}) || len(ended.Flags) != 0 {
		t.Fatalf("duration %v cells %v flags %v", ended.Duration, ended.CellCodes, ended.Flags)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM field.track_points WHERE patrol_id = $1`, id); n != 80 {
		t.Fatalf("%d points stored", n)
	}
	if n := count(t, e.pool, `SELECT ST_NPoints(track) FROM field.patrols WHERE id = $1`, id); n != 80 {
		t.Fatalf("track line has %d vertices", n)
	}

	// Ending twice returns the same patrol.
	again, err := e.f.EndPatrol(ctx, inspectorA, id, pts[79].RecordedAt.Add(time.Hour))
	if err != nil || !again.EndedAt.Equal(*ended.EndedAt) {
		t.Fatalf("second end: %v %v", again.EndedAt, err)
	}
	// A batch that arrives after the end is merged and the summary follows.
	res, err = e.f.AppendTrackPoints(ctx, inspectorA, id, pts[80:])
	if err != nil || res.Added != 1 {
		t.Fatalf("late point: %+v %v", res, err)
	}
	late, err := e.f.GetPatrol(ctx, inspectorA, id)
	if err != nil {
		t.Fatal(err)
	}
	if late.PointCount != 81 || late.DistanceM <= ended.DistanceM {
		t.Fatalf("after late batch: %d points, %.1f m", late.PointCount, late.DistanceM)
	}
	// Supervisor of the township may read it, inspector B may not.
	if _, err := e.f.GetPatrol(ctx, supervisor, id); err != nil {
		t.Fatal(err)
	}
	_, err = e.f.GetPatrol(ctx, inspectorB, id)
	wantCode(t, err, codes.NotFound)
}

func TestTrackPointsBadInputKeepsTheRest(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	start := e.clock.Now().Add(-time.Hour)
	id := uuid.NewString()
	if _, err := e.f.StartPatrol(ctx, inspectorA, id, start); err != nil {
		t.Fatal(err)
	}
	pts := walk(start, 6, time.Minute, 29.01, 106.05, 0.001)
	pts[1].Position.Lat = math.NaN()
	pts[2].Position.Lon = 500
	pts[3].RecordedAt = e.clock.Now().Add(time.Hour)
	pts[4].RecordedAt = time.Time{}
	res, err := e.f.AppendTrackPoints(ctx, inspectorA, id, pts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 2 || res.Rejected != 4 || res.FirstRejection == "" {
		t.Fatalf("%+v", res)
	}
	_, err = e.f.AppendTrackPoints(ctx, inspectorA, id, nil)
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.f.AppendTrackPoints(ctx, inspectorA, id, make([]TrackPoint, 5001))
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.f.AppendTrackPoints(ctx, inspectorA, uuid.NewString(), pts[:1])
	wantCode(t, err, codes.NotFound)
	_, err = e.f.StartPatrol(ctx, inspectorA, uuid.NewString(), e.clock.Now().Add(time.Hour))
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.f.EndPatrol(ctx, inspectorA, id, start.Add(-time.Hour))
	wantCode(t, err, codes.InvalidArgument)
}

func TestPatrolPlausibilityFlags(t *testing.T) {
	e := newEnv(t, Config{})
	start := e.clock.Now().Add(-3 * time.Hour)

	// 1 km in 10 s: a car on the expressway, not a patrol; and far too short.
	fast := e.patrol(t, inspectorA, walk(start, 3, 10*time.Second, 29.01, 106.05, 0.009))
	if !slices.Contains(fast.Flags, FlagImpossibleSpeed) || !slices.Contains(fast.Flags, FlagTooShortDuration) || fast.MaxSpeedKmh < 300 {
		t.Fatalf("fast patrol: %v at %.0f km/h", fast.Flags, fast.MaxSpeedKmh)
	}
	// 30 min but only 90 m: standing at the village gate.
	idle := e.patrol(t, inspectorA, walk(start, 31, time.Minute, 29.01, 106.05, 0.00003))
	if !slices.Equal(idle.Flags, []PatrolFlag{FlagTooShortDistance}) {
		t.Fatalf("idle patrol flags %v", idle.Flags)
	}
	// GPS jitter within the accuracy radius is not speed.
	jitter := walk(start, 41, time.Minute, 29.01, 106.05, 0.0003)
	for i := range jitter {
		jitter[i].Position.AccuracyM = 30
		if i%2 == 1 {
			jitter[i].Position.Lon += 0.0004 // ~40 m sideways every other fix
		}
	}
	j := e.patrol(t, inspectorA, jitter)
	if slices.Contains(j.Flags, FlagImpossibleSpeed) {
		t.Fatalf("jitter flagged as speed: %.0f km/h", j.MaxSpeedKmh)
	}
	// A's walk in B's village.
	away := e.patrol(t, inspectorA, walk(start, 41, time.Minute, 29.01, 106.15, 0.0003))
	if !slices.Contains(away.Flags, FlagOutsideAssignedArea) || away.PointsOutsideArea != 41 || !slices.Equal(away.CellCodes, []string{villageES}) {
		t.Fatalf("away patrol: %v outside=%d cells=%v", away.Flags, away.PointsOutsideArea, away.CellCodes)
	}
	// Crossing into the next village north is visible in the cells.
	cross := e.patrol(t, inspectorA, walk(start, 41, time.Minute, 29.045, 106.05, 0.0003))
	if !slices.Equal(cross.CellCodes, []string{villageWS, villageWN}) {
		t.Fatalf("crossing cells %v", cross.CellCodes)
	}
	// Two fixes 900 m apart, in WS and EN: the straight leg between them
	// crosses a corner of ES, where no fix lies.
	sparse := e.patrol(t, inspectorA, []TrackPoint{
		{RecordedAt: start, Position: wgs(29.048, 106.098)},
		{RecordedAt: start.Add(30 * time.Minute), Position: wgs(29.052, 106.106)},
	})
	if !slices.Equal(sparse.CellCodes, []string{villageWS, villageES, "500101002002"}) {
		t.Fatalf("cells along a sparse leg: %v", sparse.CellCodes)
	}
	// A patrol with no points.
	ctx := context.Background()
	id := uuid.NewString()
	if _, err := e.f.StartPatrol(ctx, inspectorA, id, start); err != nil {
		t.Fatal(err)
	}
	empty, err := e.f.EndPatrol(ctx, inspectorA, id, start.Add(time.Hour))
	if err != nil || !slices.Equal(empty.Flags, []PatrolFlag{FlagNoTrack}) {
		t.Fatalf("empty patrol: %v %v", empty.Flags, err)
	}
}

func TestPatrolCompliance(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	// Mid-week (Wednesday noon, China time) so all patrols fall in one
	// week; a Wednesday ahead, so that the people seeded now were assigned
	// in the week before too, and one whose previous week is in the same
	// month.
	today := time.Now().In(chinaTime)
	wed := time.Date(today.Year(), today.Month(), today.Day(), 12, 0, 0, 0, chinaTime)
	wed = wed.AddDate(0, 0, 7+(int(time.Wednesday)-int(wed.Weekday())+7)%7)
	for wed.Day() < 8 {
		wed = wed.AddDate(0, 0, 7)
	}
	e.clock.t = wed.Add(48 * time.Hour).UTC()
	good := func(at time.Time) []TrackPoint { return walk(at, 41, time.Minute, 29.01, 106.05, 0.0003) }
	e.patrol(t, inspectorA, good(wed))
	e.patrol(t, inspectorA, good(wed.Add(3*time.Hour)))
	e.patrol(t, inspectorA, walk(wed.Add(5*time.Hour), 3, 10*time.Second, 29.01, 106.05, 0.009)) // implausible
	e.patrol(t, inspectorA, good(wed.Add(-7*24*time.Hour)))                                      // the week before

	rows, err := e.f.PatrolCompliance(ctx, officer, testCounty, PeriodWeek, wed.Add(-7*24*time.Hour), wed.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	type k struct {
		who, cell string
		week      int
	}
	got := map[k]ComplianceRow{}
	for _, r := range rows {
		got[k{r.InspectorID, r.CellCode, r.PeriodStart.YearDay()}] = r
	}
	monday := time.Date(wed.Year(), wed.Month(), wed.Day()-2, 0, 0, 0, 0, chinaTime)
	thisWeek := got[k{inspectorAID, villageWS, monday.YearDay()}]
	if thisWeek.Done != 2 || thisWeek.Implausible != 1 || thisWeek.Required != 2 || !thisWeek.Compliant() || !thisWeek.PeriodStart.Equal(monday) {
		t.Fatalf("A this week: %+v", thisWeek)
	}
	lastWeek := got[k{inspectorAID, villageWS, monday.AddDate(0, 0, -7).YearDay()}]
	if lastWeek.Done != 1 || lastWeek.Compliant() {
		t.Fatalf("A last week: %+v", lastWeek)
	}
	b := got[k{inspectorBID, villageES, monday.YearDay()}]
	if b.Required != 2 || b.Done != 0 || b.Compliant() {
		t.Fatalf("B, who did nothing, must be listed: %+v (rows %d)", b, len(rows))
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 2 inspectors × 2 weeks", len(rows))
	}
	// A township supervisor sees only their township; others' nodes are NotFound.
	rows, err = e.f.PatrolCompliance(ctx, supervisor, "", PeriodMonth, wed.Add(-time.Hour), wed.Add(time.Hour))
	if err != nil || len(rows) != 1 || rows[0].InspectorID != inspectorAID || rows[0].Done != 3 || rows[0].Implausible != 1 {
		t.Fatalf("supervisor month: %+v %v", rows, err)
	}
	_, err = e.f.PatrolCompliance(ctx, supervisor, townshipEast, PeriodWeek, wed, wed.Add(time.Hour))
	wantCode(t, err, codes.NotFound)
	// An inspector reads their own rows (issue 13), never another's.
	rows, err = e.f.PatrolCompliance(ctx, inspectorA, "", PeriodWeek, wed.Add(-7*24*time.Hour), wed.Add(time.Hour))
	if err != nil || len(rows) != 2 || rows[0].InspectorID != inspectorAID || rows[1].InspectorID != inspectorAID {
		t.Fatalf("inspector's own compliance: %+v %v", rows, err)
	}
	_, err = e.f.PatrolCompliance(ctx, inspectorA, villageES, PeriodWeek, wed, wed.Add(time.Hour))
	wantCode(t, err, codes.NotFound)
	_, err = e.f.PatrolCompliance(ctx, officer, testCounty, PeriodWeek, wed, wed.AddDate(5, 0, 0))
	wantCode(t, err, codes.InvalidArgument)
}

// An assignment's own patrol task is that inspector's quota in the cell,
// before the cell's (issue 14: assignment tasks were free text that
// compliance never read); an inspector without one keeps the cell's.
func TestPatrolComplianceReadsTheAssignmentsQuota(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	ps := people.NewStore(e.pool, nil)
	c := uuid.NewString()
	if _, _, err := ps.CreatePerson(ctx, people.SystemActor, people.Person{ID: c, CountyCode: testCounty, Name: "Sun Inspector"}); err != nil {
		t.Fatal(err)
	}
	n, err := grid.NewStore(e.pool, grid.Config{}).NodeByCode(ctx, villageES)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ps.StartAssignment(ctx, people.SystemActor, people.NewAssignment{ID: uuid.NewString(), PersonID: c,
		NodeID: n.ID.String(), NodeCode: villageES, Role: scope.RoleInspector, ValidFrom: time.Now().Add(-23 * time.Hour),
		TaskRules: []grid.Task{{Kind: PatrolKind, Count: 4, Period: grid.PeriodWeek}}}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rows, err := e.f.PatrolCompliance(ctx, officer, villageES, PeriodWeek, now.Add(-time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	required := map[string]int{}
	for _, r := range rows {
		required[r.InspectorID] = r.Required
	}
	if required[c] != 4 || required[inspectorBID] != 2 {
		t.Fatalf("required patrols: %v; want 4 for the inspector with a quota of their own, 2 (the cell's) for B", required)
	}
}
