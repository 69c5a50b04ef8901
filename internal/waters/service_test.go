package waters_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/coord"
	"ecogrid/internal/field"
	"ecogrid/internal/field/blob"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/gridadapt"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
	"ecogrid/internal/waters"
)

// patrol walks a real field patrol along points ([lat, lon]) one fix
// every 10 s from start, as the caller, and returns its id.
func walk(t *testing.T, f *field.Field, c scope.Caller, start time.Time, points [][2]float64) string {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	if _, err := f.StartPatrol(ctx, c, id, start); err != nil {
		t.Fatal(err)
	}
	var tps []field.TrackPoint
	for i, p := range points {
		tps = append(tps, field.TrackPoint{RecordedAt: start.Add(time.Duration(i) * 10 * time.Second), Position: field.Position{Lat: p[0], Lon: p[1], System: coord.WGS84, AccuracyM: 5}})
	}
	for len(tps) > 0 {
		n := min(len(tps), 500)
		if _, err := f.AppendTrackPoints(ctx, c, id, tps[:n]); err != nil {
			t.Fatal(err)
		}
		tps = tps[n:]
	}
	if _, err := f.EndPatrol(ctx, c, id, start.Add(time.Duration(len(points))*10*time.Second)); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestPatrolCoverageAndCompliance walks real field patrols along, beside
// and across the village reach and asks WatersService whether they count.
func TestPatrolCoverageAndCompliance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	fs := e.importRiver(t)
	reach := fs[0] // village reach, 114.41–114.47°E along 38.153°N
	blobs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := field.New(field.Deps{Pool: e.pool, Locator: gridadapt.Locator{Index: e.index}, Blobs: blobs}, field.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	svc := waters.NewService(e.store, waters.NewIndex(e.store, nil), field.Tracks{Q: e.pool}, nil)

	chief := scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleInspector, NodeCode: reach.Node}}}
	county := officer("130123")
	if _, _, err := e.store.AssignChief(ctx, county, waters.NewChief{ID: uuid.NewString(), PersonID: chief.PersonID, Name: "张三", Role: waters.RoleReachChief,
		ReachCode: reach.Code, ValidFrom: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
		Tasks: []waters.ChiefTask{{Kind: waters.TaskPatrol, Period: grid.PeriodWeek, Count: 1}, {Kind: waters.TaskCleaning, Period: grid.PeriodDay, Count: 1, CleanerName: "李四"}}}); err != nil {
		t.Fatal(err)
	}
	along := offsetTrack(reach.Coords, 15)
	beside := offsetTrack(reach.Coords, 80)
	week := func(n int) time.Time { return time.Date(2026, 3, 2+7*n, 9, 0, 0, 0, time.UTC) }
	hug := walk(t, f, chief, week(0), along)
	walk(t, f, chief, week(1), beside)
	walk(t, f, chief, week(2), along)

	cctx := scope.NewContext(ctx, chief)
	cov, err := svc.GetPatrolCoverage(cctx, &ecogridv1.GetPatrolCoverageRequest{PatrolId: hug, ReachCode: reach.Code})
	if err != nil || !cov.GetCounts() || cov.GetShare() < 0.95 {
		t.Fatalf("coverage of the patrol along the reach: %v, %v", cov, err)
	}
	// Another inspector does not see the patrol.
	other := scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleInspector, NodeCode: reach.Node}}}
	if _, err := svc.GetPatrolCoverage(scope.NewContext(ctx, other), &ecogridv1.GetPatrolCoverageRequest{PatrolId: hug, ReachCode: reach.Code}); structerr.Code(err) != codes.NotFound {
		t.Fatalf("another inspector's coverage request: %v", err)
	}
	// Four weeks from 2 March: one patrol a week required, two counted, one
	// 80 m away not counted.
	resp, err := svc.GetReachCompliance(scope.NewContext(ctx, county), &ecogridv1.GetReachComplianceRequest{ReachCode: reach.Code,
		From: timestamppb.New(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)), To: timestamppb.New(time.Date(2026, 3, 30, 0, 0, 0, 0, time.UTC))})
	if err != nil || len(resp.GetChiefs()) != 1 {
		t.Fatalf("compliance: %v, %v", resp, err)
	}
	c := resp.GetChiefs()[0]
	if c.GetRequired() != 4 || c.GetCounted() != 2 || c.GetNotCounted() != 1 || c.GetCompliant() {
		t.Fatalf("compliance: required %d counted %d not counted %d compliant %v", c.GetRequired(), c.GetCounted(), c.GetNotCounted(), c.GetCompliant())
	}
	// The sign is public to the village.
	sign, err := svc.GetReachSign(cctx, &ecogridv1.GetReachSignRequest{ReachCode: reach.Code})
	if err != nil || len(sign.GetSign().GetChiefs()) != 1 || sign.GetSign().GetChiefs()[0].GetTitle() != "村级河长" {
		t.Fatalf("sign: %v, %v", sign, err)
	}
	// Another county's people do not see the reach at all.
	away := scope.NewContext(ctx, officer("130124"))
	if _, err := svc.GetReachSign(away, &ecogridv1.GetReachSignRequest{ReachCode: reach.Code}); structerr.Code(err) != codes.NotFound {
		t.Fatalf("sign from another county: %v", err)
	}
	if _, err := svc.ListReachChiefs(away, &ecogridv1.ListReachChiefsRequest{ReachCode: reach.Code}); structerr.Code(err) != codes.NotFound {
		t.Fatalf("chiefs from another county: %v", err)
	}
	if _, err := svc.ImportReaches(away, &ecogridv1.ImportReachesRequest{Geojson: collection(fs...)}); structerr.Code(err) != codes.InvalidArgument {
		t.Fatalf("import by another county: %v", err)
	}
	exp, err := svc.ExportReaches(away, &ecogridv1.ExportReachesRequest{CountyCode: "130123"})
	if structerr.Code(err) != codes.NotFound {
		t.Fatalf("export of another county: %v, %v", exp, err)
	}
}

// A violation reported beside a village reach names that day's chiefs of
// the reach (issue 17) in its ledger record, beside the cell's people.
func TestViolationOnAReachNamesItsChiefs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	fs := e.importRiver(t)
	reach := fs[0]
	chiefID := uuid.NewString()
	county := officer("130123")
	if _, _, err := e.store.AssignChief(ctx, county, waters.NewChief{ID: uuid.NewString(), PersonID: chiefID, Name: "张三", Role: waters.RoleReachChief,
		ReachCode: reach.Code, ValidFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
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
	inspector := scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleInspector, NodeCode: reach.Node}}}
	report := func(lat, lon float64) string {
		t.Helper()
		r, _, err := f.SubmitReport(ctx, inspector, field.Draft{ID: uuid.NewString(), ObservedAt: time.Now().Add(-time.Minute), Category: "water",
			Severity: field.SeveritySerious, Description: "河道倾倒垃圾", Violation: true,
			Position: field.Position{Lat: lat, Lon: lon, System: coord.WGS84, AccuracyM: 5}})
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	named := func(reportID string) int {
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM ledger.records r JOIN ledger.record_people p USING (county_code, seq)
			WHERE r.subject_id = $1 AND p.person_id = $2 AND NOT p.as_actor`, reportID, chiefID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	mid := reach.Coords[len(reach.Coords)/2] // [lon, lat]
	if n := named(report(mid[1]+0.0002, mid[0])); n != 1 {
		t.Fatalf("violation 22 m from the reach: its chief named in %d ledger records, want 1", n)
	}
	if n := named(report(mid[1]+0.0020, mid[0])); n != 0 {
		t.Fatalf("violation 220 m from the reach: its chief named in %d records, want 0", n)
	}
}
