package monitoring

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
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/demo"
	"ecogrid/internal/zones"
)

const county = demo.DemoCountyCode

type env struct {
	pool *pgxpool.Pool
	m    *Monitor
}

// newEnv loads the demo county's grid and, around 38.11 N 114.51 E, a
// level-1 drinking-water source zone.
func newEnv(t *testing.T) env {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	if _, err := grid.NewStore(pool, grid.Config{}).ImportGeoJSON(ctx, bytes.NewReader(demo.County()), grid.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	gix := grid.NewIndex(pool, nil)
	if err := gix.Load(ctx); err != nil {
		t.Fatal(err)
	}
	zone := `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"SY-1","kind":"drinking_water_1","name":"水源一级保护区"},
		"geometry":{"type":"Polygon","coordinates":[[[114.50,38.10],[114.52,38.10],[114.52,38.12],[114.50,38.12],[114.50,38.10]]]}}]}`
	if _, err := zones.NewStore(pool).ImportGeoJSON(ctx, county, strings.NewReader(zone), zones.ImportOptions{EffectiveFrom: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	zix := zones.NewIndex(pool, nil)
	if err := zix.Load(ctx); err != nil {
		t.Fatal(err)
	}
	return env{pool: pool, m: New(pool, gix, zix, nil)}
}

func (e env) point(t *testing.T, code string, lat, lon float64, every time.Duration, start time.Time) Point {
	t.Helper()
	p, err := e.m.CreatePoint(context.Background(), Point{ID: uuid.New(), CountyCode: county, Code: code, Name: "断面 " + code,
		Kind: ecogridv1.MonitoringPointKind_MONITORING_POINT_KIND_SECTION, WaterBody: River, TargetClass: 3,
		Lat: lat, Lon: lon, Every: every, ScheduleStart: start}, uuid.Nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// outboxEvents returns the ViolationReported events enqueued for eventID.
func (e env) outboxEvents(t *testing.T, eventID uuid.UUID) []*eventsv1.ViolationReported {
	t.Helper()
	rows, err := e.pool.Query(context.Background(), `SELECT payload FROM outbox.events WHERE event_id = $1`, eventID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []*eventsv1.ViolationReported
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		ev := &eventsv1.ViolationReported{}
		if err := proto.Unmarshal(b, ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

func (e env) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestExceedingSampleRaisesOneViolation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := e.point(t, "DM-1", 38.11, 114.51, 0, time.Time{}) // inside the level-1 zone
	if p.VillageCode == "" || p.TownshipCode == "" || !strings.HasPrefix(p.VillageCode, county) {
		t.Fatalf("point not placed in its cell: %+v", p)
	}
	s := Sample{ID: uuid.New(), PointID: p.ID, SampledAt: time.Now().Add(-time.Hour), Sampler: "张三", Lab: "县监测站",
		Measurements: []Measurement{{Parameter: "pH", Value: 7.4}, {Parameter: "NH3-N", Value: 1.6, Unit: "mg/L"}, {Parameter: "DO", Value: 6.2, Unit: "mg/L"}}}
	got, created, err := e.m.RecordSample(ctx, s, uuid.Nil)
	if err != nil || !created {
		t.Fatalf("RecordSample: %v (created %v)", err, created)
	}
	if got.Class != 5 || strings.Join(got.Exceeding, ",") != "NH3-N" || got.ViolationEventID != SampleEventID(s.ID) {
		t.Fatalf("sample = %+v; want class V, NH3-N exceeding", got)
	}
	for range 3 { // retries record nothing more
		again, created, err := e.m.RecordSample(ctx, s, uuid.Nil)
		if err != nil || created || again.ViolationEventID != got.ViolationEventID {
			t.Fatalf("repeat: %+v %v %v", again, created, err)
		}
	}
	evs := e.outboxEvents(t, got.ViolationEventID)
	if len(evs) != 1 {
		t.Fatalf("%d events enqueued; want exactly 1", len(evs))
	}
	ev := evs[0]
	if ev.GetSource() != Source || ev.GetCountyCode() != county || ev.GetVillageCode() != p.VillageCode || !ev.GetEscalateNow() ||
		ev.GetSeverity() != "SEVERITY_CRITICAL" || strings.Join(ev.GetZoneCodes(), ",") != county+"/SY-1" || ev.GetDeadline() == nil {
		t.Fatalf("event = %v; want a monitoring violation escalated by zone SY-1", ev)
	}
	if n := e.count(t, `SELECT count(*) FROM outbox.events WHERE subject = $1`, "ecogrid.v1.violations."+county); n != 1 {
		t.Fatalf("%d violation events in the outbox; want 1", n)
	}
	v, err := LookupViolation(ctx, e.pool, got.ViolationEventID.String())
	if err != nil {
		t.Fatal(err)
	}
	if v.CountyCode != county || v.VillageCode != p.VillageCode || v.Category != Category || v.Severity != ecogridv1.Severity_SEVERITY_CRITICAL ||
		v.SampleID != s.ID || v.Lat != p.Lat || !v.OccurredAt.Equal(s.SampledAt.Truncate(time.Microsecond)) || !v.EscalateNow {
		t.Fatalf("LookupViolation = %+v", v)
	}
	if _, err := LookupViolation(ctx, e.pool, uuid.NewString()); status.Code(err) != codes.NotFound {
		t.Fatalf("LookupViolation(unknown) = %v; want NotFound", err)
	}
	// The same id for another sample is refused; samples cannot be rewritten.
	other := s
	other.Measurements = []Measurement{{Parameter: "pH", Value: 7}}
	if _, _, err := e.m.RecordSample(ctx, other, uuid.Nil); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("reusing a sample id = %v; want AlreadyExists", err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE monitoring.samples SET lab = 'x'`); err == nil {
		t.Fatal("a sample was updated")
	}
	// A correction citing it is a new sample; within the target it raises nothing.
	fix := Sample{ID: uuid.New(), PointID: p.ID, SampledAt: s.SampledAt, Lab: "县监测站", CorrectsID: s.ID,
		Measurements: []Measurement{{Parameter: "NH3-N", Value: 0.9}}}
	fixed, created, err := e.m.RecordSample(ctx, fix, uuid.Nil)
	if err != nil || !created || fixed.Class != 3 || fixed.ViolationEventID != uuid.Nil {
		t.Fatalf("correction = %+v %v %v", fixed, created, err)
	}
}

func TestSampleOutsideZonesIsNotEscalated(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := e.point(t, "DM-2", 38.11, 114.4990, 0, time.Time{}) // just west of the level-1 zone
	got, _, err := e.m.RecordSample(ctx, Sample{ID: uuid.New(), PointID: p.ID, SampledAt: time.Now(), Lab: "lab",
		Measurements: []Measurement{{Parameter: "COD", Value: 30.5}}}, uuid.Nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := LookupViolation(ctx, e.pool, got.ViolationEventID.String())
	if err != nil {
		t.Fatal(err)
	}
	if v.EscalateNow || len(v.ZoneCodes) != 0 || v.Severity != ecogridv1.Severity_SEVERITY_SERIOUS { // COD 30.5 is worse than V
		t.Fatalf("violation outside the zone = %+v", v)
	}
}

func TestMissedSamplesRaiseOnceEach(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	now := time.Now().UTC().Truncate(time.Second)
	start := now.Add(-73 * time.Hour) // windows [s, s+24h), [s+24h, s+48h), [s+48h, s+72h) have closed
	p := e.point(t, "DM-3", 38.15, 114.60, 24*time.Hour, start)
	if _, _, err := e.m.RecordSample(ctx, Sample{ID: uuid.New(), PointID: p.ID, SampledAt: start.Add(30 * time.Hour), Lab: "lab",
		Measurements: []Measurement{{Parameter: "pH", Value: 7}}}, uuid.Nil); err != nil {
		t.Fatal(err)
	}
	// Two sweepers at once (two gridd replicas), then again and again.
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := e.m.Sweep(ctx)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if total != 2 {
		t.Fatalf("first sweeps raised %d; want 2 (windows 1 and 3)", total)
	}
	if n, err := e.m.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweeping again raised %d (%v)", n, err)
	}
	// A sweeper that crashed after committing but before remembering, or a
	// restored swept_until: the misses table keeps it exactly once.
	if _, err := e.pool.Exec(ctx, `UPDATE monitoring.points SET swept_until = schedule_start WHERE id = $1`, p.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := e.m.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("re-sweeping from the start raised %d (%v)", n, err)
	}
	for _, w := range []time.Time{start, start.Add(48 * time.Hour)} {
		id := MissEventID(p.ID, w)
		if evs := e.outboxEvents(t, id); len(evs) != 1 || evs[0].GetSource() != Source {
			t.Fatalf("window %s: %d events", w, len(evs))
		}
		v, err := LookupViolation(ctx, e.pool, id.String())
		if err != nil || !v.WindowStart.Equal(w) || v.SampleID != uuid.Nil || !v.OccurredAt.Equal(w.Add(24*time.Hour)) {
			t.Fatalf("LookupViolation(miss %s) = %+v, %v", w, v, err)
		}
	}
	if n := e.count(t, `SELECT count(*) FROM outbox.events`); n != 2 {
		t.Fatalf("%d events in the outbox; want 2", n)
	}
	// The next window closes: one more.
	e.m.now = func() time.Time { return now.Add(24 * time.Hour) }
	if n, err := e.m.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("after the fourth window closed: raised %d (%v)", n, err)
	}
}

func TestCSVImportAllOrNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.point(t, "DM-4", 38.15, 114.60, 0, time.Time{})
	good := "point_code,sampled_at,sampler,lab,pH,DO [mg/L],NH3-N,Hg(ug/L),TP\n" +
		"DM-4,2026-11-01 09:30,李四,县监测站,7.5,6.5,0.4,0.05,0.1\n" +
		"DM-4,2026-11-15T09:30:00+08:00,李四,县监测站,7.1,4.0,0.8,,0.25\n"
	rec, unch, exc, err := e.m.ImportCSV(ctx, county, strings.NewReader(good), uuid.Nil, false)
	if err != nil || rec != 2 || unch != 0 || exc != 1 {
		t.Fatalf("import = %d recorded, %d unchanged, %d exceeding, %v; want 2, 0, 1", rec, unch, exc, err)
	}
	rec, unch, _, err = e.m.ImportCSV(ctx, county, strings.NewReader(good), uuid.Nil, false)
	if err != nil || rec != 0 || unch != 2 {
		t.Fatalf("re-import = %d recorded, %d unchanged, %v; want 0, 2", rec, unch, err)
	}
	bad := "point_code,sampled_at,lab,pH,NH3-N\n" +
		"DM-4,2026-11-20 09:00,lab,7,0.1\n" + // fine, but not written
		"DM-9,2026-11-20 09:00,lab,7,0.1\n" + // unknown point
		"DM-4,yesterday,lab,7,0.1\n" + // bad time
		"DM-4,2026-11-21 09:00,lab,seven,0.1\n" + // bad number
		"DM-4,2026-11-22 09:00,lab,7\n" // short row
	_, _, _, err = e.m.ImportCSV(ctx, county, strings.NewReader(bad), uuid.Nil, false)
	rej, ok := err.(*CSVRejectedError)
	if !ok {
		t.Fatalf("bad import = %v; want a CSVRejectedError", err)
	}
	var lines []int
	for _, p := range rej.Problems {
		lines = append(lines, p.Line)
	}
	if fmt.Sprint(lines) != "[3 4 5 6]" {
		t.Fatalf("problems %v", rej.Problems)
	}
	for _, want := range []string{"line 3", "line 4", "line 5", "line 6"} {
		if !strings.Contains(rej.Error(), want) {
			t.Errorf("refusal %q does not name %s", rej.Error(), want)
		}
	}
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || len(st.Message()) > 400 {
		t.Fatalf("status %v", st)
	}
	if n := e.count(t, `SELECT count(*) FROM monitoring.samples`); n != 2 {
		t.Fatalf("%d samples stored; want the first import's 2", n)
	}
}
