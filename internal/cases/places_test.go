package cases

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"ecogrid/internal/coord"
	"ecogrid/internal/field"
	"ecogrid/internal/field/blob"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/demo"
	"ecogrid/internal/grid/gridadapt"
	"ecogrid/internal/monitoring"
	"ecogrid/internal/scope"
	"ecogrid/internal/zones"
)

// level1Zone is a level-1 drinking-water source zone of the demo county,
// 114.50–114.52 E, 38.10–38.12 N, under the built-in rule (critical,
// escalated to the county at once, 24 h deadline).
const level1Zone = `{"type":"FeatureCollection","features":[{"type":"Feature",
	"properties":{"code":"SY-1","kind":"drinking_water_1","name":"县城水源地一级保护区","legal_basis":"水污染防治法 第六十五条"},
	"geometry":{"type":"Polygon","coordinates":[[[114.50,38.10],[114.52,38.10],[114.52,38.12],[114.50,38.12],[114.50,38.10]]]}}]}`

// places loads the demo county's grid and the level-1 zone into the
// stack's database and returns their in-memory indexes.
func (s *stack) places(t *testing.T) (*grid.Index, *zones.Index) {
	t.Helper()
	ctx := context.Background()
	if _, err := grid.NewStore(s.pool, grid.Config{}).ImportGeoJSON(ctx, bytes.NewReader(demo.County()), grid.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	gix := grid.NewIndex(s.pool, nil)
	if err := gix.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := zones.NewStore(s.pool).ImportGeoJSON(ctx, testCounty, strings.NewReader(level1Zone),
		zones.ImportOptions{EffectiveFrom: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	zix := zones.NewIndex(s.pool, nil)
	if err := zix.Load(ctx); err != nil {
		t.Fatal(err)
	}
	return gix, zix
}

// Issue 18, done when: a report in a level-1 water source zone is
// escalated at once; one just outside is not. Both are filed through
// field as gridd files them and become cases through the outbox, NATS and
// the consumer; the zone's rule shows in the case, its timeline and the
// ledger records of the report and the case.
func TestViolationInLevel1WaterZoneIsEscalatedAtOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	gix, zix := s.places(t)
	blobs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := field.New(field.Deps{Pool: s.pool, Locator: gridadapt.Locator{Index: gix}, Blobs: blobs, Zones: zix}, field.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	s.startRelay("gridd-1")
	s.startConsumer(ConsumerConfig{})
	file := func(lat, lon float64) field.Report {
		t.Helper()
		loc, ok := gix.Locate(lat, lon)
		if !ok {
			t.Fatalf("%v, %v is outside the demo county", lat, lon)
		}
		inspector := scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleInspector, NodeCode: loc.Cell.Code}}}
		r, _, err := f.SubmitReport(ctx, inspector, field.Draft{ID: uuid.NewString(), ObservedAt: time.Now().Add(-time.Minute),
			Category: "water", Severity: field.SeverityNormal, Description: "水源地旁倾倒垃圾", Violation: true,
			Position: field.Position{Lat: lat, Lon: lon, System: coord.WGS84, AccuracyM: 5}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	inside := file(38.11, 114.5101)
	outside := file(38.11, 114.4990) // ~90 m west of the zone's edge
	if got := strings.Join(inside.Places.ZoneCodes, ","); got != testCounty+"/SY-1" || !inside.Places.EscalateNow ||
		inside.Severity != field.SeverityCritical || inside.Places.ReportedSeverity != field.SeverityNormal || inside.Places.Deadline == nil {
		t.Fatalf("report inside the zone: %+v", inside.Places)
	}
	if len(outside.Places.ZoneCodes) != 0 || outside.Places.EscalateNow || outside.Severity != field.SeverityNormal {
		t.Fatalf("report outside the zone: severity %v, %+v", outside.Severity, outside.Places)
	}
	s.waitCases(2, 20*time.Second)
	s.assertExactlyOnce(2)

	officer := scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleCountyOfficer, NodeCode: testCounty}}}
	caseOf := func(r field.Report) *Case {
		t.Helper()
		c, err := s.tracker.Get(ctx, officer, uuid.NewSHA1(eventNamespace, []byte("case:"+r.ID)).String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	in, out := caseOf(inside), caseOf(outside)
	if in.EscalatedAt == nil || !strings.HasPrefix(in.EscalationReason, "zone rule:") || !strings.Contains(in.EscalationReason, "SY-1") ||
		strings.Join(in.ZoneCodes, ",") != testCounty+"/SY-1" || in.ZoneDeadline == nil || in.Severity != "SEVERITY_CRITICAL" {
		t.Fatalf("case inside the zone: escalated %v (%q), zones %v, zone deadline %v, severity %s",
			in.EscalatedAt, in.EscalationReason, in.ZoneCodes, in.ZoneDeadline, in.Severity)
	}
	if out.EscalatedAt != nil || len(out.ZoneCodes) != 0 || out.ZoneDeadline != nil || out.Severity != "SEVERITY_NORMAL" {
		t.Fatalf("case outside the zone: escalated %v (%q), zones %v", out.EscalatedAt, out.EscalationReason, out.ZoneCodes)
	}
	pb := CaseToProto(in, time.Now())
	if strings.Join(pb.GetZoneCodes(), ",") != testCounty+"/SY-1" || pb.GetZoneDeadline() == nil || !pb.GetEscalated() {
		t.Fatalf("case proto: zones %v, zone deadline %v, escalated %v", pb.GetZoneCodes(), pb.GetZoneDeadline(), pb.GetEscalated())
	}
	// The timeline says a zone rule escalated it, and so does its ledger record.
	steps, err := s.tracker.Timeline(ctx, officer, in.ID)
	if err != nil || len(steps) != 2 || steps[1].Action != ActionEscalate || !strings.HasPrefix(steps[1].Note, "zone rule:") ||
		steps[0].Details["zone_codes"] == nil {
		t.Fatalf("timeline of the zone case: %+v, %v", steps, err)
	}
	if n := s.count(`SELECT count(*) FROM ledger.records WHERE action = 'case.escalated' AND subject_id = $1
			AND convert_from(payload, 'UTF8')::jsonb->>'note' LIKE 'zone rule:%SY-1%'`, in.ID); n != 1 {
		t.Fatalf("%d case.escalated ledger records naming the zone rule, want 1", n)
	}
	if n := s.count(`SELECT count(*) FROM ledger.records WHERE action = 'case.escalated' AND subject_id = $1`, out.ID); n != 0 {
		t.Fatalf("the case outside the zone has %d escalation records", n)
	}
	if n := s.count(`SELECT count(*) FROM ledger.records WHERE subject_id = $1 AND convert_from(payload, 'UTF8')::jsonb->>'zone_rule' LIKE '%SY-1%'
			AND convert_from(payload, 'UTF8')::jsonb->>'reported_severity' = 'SEVERITY_NORMAL'`, inside.ID); n != 1 {
		t.Fatalf("%d report ledger records with the zone rule, want 1", n)
	}
	// Dispatching takes the zone's 24 h deadline, not the severity's.
	if !in.ZoneDeadline.Before(time.Now().Add(25 * time.Hour)) {
		t.Fatalf("zone deadline %v is not within a day", in.ZoneDeadline)
	}
}

// Issue 18, done when: an exceeding sample opens exactly one case, also
// when NATS and cased restart mid-way; a missed sample opens one when its
// window closes. The nats-server is a real in-process one restarted on
// the same store directory; cased's consumer is stopped and started again.
func TestMonitoringOpensOneCaseThroughRestarts(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	gix, zix := s.places(t)
	m := monitoring.New(s.pool, gix, zix, nil)
	now := time.Now().UTC().Truncate(time.Second)
	inZone, err := m.CreatePoint(ctx, monitoring.Point{ID: uuid.New(), CountyCode: testCounty, Code: "DM-1", Name: "水源地取水口",
		Kind: 3, WaterBody: monitoring.River, TargetClass: 2, Lat: 38.11, Lon: 114.51}, uuid.Nil)
	if err != nil {
		t.Fatal(err)
	}
	// Sampled daily from 36 h ago: one window closed 12 h ago with no sample.
	daily, err := m.CreatePoint(ctx, monitoring.Point{ID: uuid.New(), CountyCode: testCounty, Code: "DM-2", Name: "下游断面",
		Kind: 1, WaterBody: monitoring.River, TargetClass: 3, Lat: 38.16, Lon: 114.62, Every: 24 * time.Hour, ScheduleStart: now.Add(-36 * time.Hour)}, uuid.Nil)
	if err != nil {
		t.Fatal(err)
	}
	pointChief := uuid.NewString()
	addPerson(t, s.pool, pointChief, "赵网格长", scope.RoleGridChief, inZone.VillageCode)
	s.startRelay("gridd-1")
	stopCased := s.startConsumer(ConsumerConfig{})

	// NATS goes down; the lab's sample and the sweeper's miss are committed
	// meanwhile, and cased stops before NATS comes back.
	s.nats.Shutdown()
	sample := monitoring.Sample{ID: uuid.New(), PointID: inZone.ID, SampledAt: now.Add(-2 * time.Hour), Sampler: "张三", Lab: "县监测站",
		Measurements: []monitoring.Measurement{{Parameter: "NH3-N", Value: 1.6, Unit: "mg/L"}, {Parameter: "pH", Value: 7.2}}}
	got, created, err := m.RecordSample(ctx, sample, uuid.Nil)
	if err != nil || !created || got.ViolationEventID == uuid.Nil {
		t.Fatalf("RecordSample: %+v, %v, %v", got, created, err)
	}
	if n, err := m.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep raised %d (%v), want the one closed window", n, err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := s.count(`SELECT count(*) FROM outbox.events WHERE event_type = 'ViolationReported' AND sent_at IS NULL`); n != 2 {
		t.Fatalf("%d violations waiting in the outbox while NATS is down, want 2", n)
	}
	stopCased()
	s.nats.Restart(t)
	// The lab sends the same file again: nothing new is recorded.
	if _, created, err := m.RecordSample(ctx, sample, uuid.Nil); err != nil || created {
		t.Fatalf("recording the sample again: created %v, %v", created, err)
	}
	s.startConsumer(ConsumerConfig{})
	s.waitCases(2, 60*time.Second)

	// cased restarts once more and the reconciler asks for both again.
	s.waitConsumerIdle("cased-violations", 30*time.Second)
	if _, err := s.tracker.Reconcile(ctx, ReconcileConfig{Grace: time.Millisecond, Lookback: time.Hour}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	s.assertExactlyOnce(2)

	officer := scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleCountyOfficer, NodeCode: testCounty}}}
	list, _, err := s.tracker.List(ctx, officer, Filter{})
	if err != nil || len(list) != 2 {
		t.Fatalf("%d cases (%v)", len(list), err)
	}
	for _, c := range list {
		switch c.ViolationEventID {
		case got.ViolationEventID.String():
			// The point's cell's people answer for it in the opening record.
			if n := s.count(`SELECT count(*) FROM ledger.records r JOIN ledger.record_people p USING (county_code, seq)
					WHERE r.action = 'case.opened' AND r.subject_id = $1 AND p.person_id = $2 AND NOT p.as_actor`, c.ID, pointChief); n != 1 {
				t.Fatalf("the exceedance case's opening record names the cell's grid chief %d times, want 1", n)
			}
			if c.EscalatedAt == nil || !strings.HasPrefix(c.EscalationReason, "zone rule:") || strings.Join(c.ZoneCodes, ",") != testCounty+"/SY-1" ||
				c.ZoneDeadline == nil || !c.ZoneDeadline.Equal(sample.SampledAt.Add(24*time.Hour)) ||
				c.NodeCode != inZone.VillageCode || c.Category != monitoring.Category {
				t.Fatalf("exceedance case: %+v", c)
			}
		case monitoring.MissEventID(daily.ID, daily.ScheduleStart).String():
			if c.EscalatedAt != nil || len(c.ZoneCodes) != 0 || c.NodeCode != daily.VillageCode {
				t.Fatalf("missed-sample case: %+v", c)
			}
		default:
			t.Fatalf("unexpected case %+v", c)
		}
	}
}
