package field

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/coord"
	"ecogrid/internal/scope"
)

func TestSubmitReportLocatesAndReplays(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	d := e.draft(29.01, 106.05)
	r, replayed, err := e.f.SubmitReport(ctx, inspectorA, d)
	if err != nil {
		t.Fatal(err)
	}
	if replayed || r.Location.VillageCode != villageWS || r.Location.TownshipCode != townshipWest || r.Location.CountyCode != testCounty {
		t.Fatalf("got replayed=%v location %+v", replayed, r.Location)
	}
	if r.OutsideArea {
		t.Fatal("report in the inspector's own village flagged outside the area")
	}
	if !r.ReceivedAt.After(d.ObservedAt) {
		t.Fatalf("received_at %v not after observed_at %v", r.ReceivedAt, d.ObservedAt)
	}

	// A replay days later returns the original, even though observed_at
	// now lies further in the past and the clock moved.
	e.clock.Add(72 * time.Hour)
	again, replayed, err := e.f.SubmitReport(ctx, inspectorA, d)
	if err != nil {
		t.Fatal(err)
	}
	if !replayed || !again.ReceivedAt.Equal(r.ReceivedAt) || again.ID != r.ID {
		t.Fatalf("replay: replayed=%v received %v want %v", replayed, again.ReceivedAt, r.ReceivedAt)
	}
	// Upper-case id is the same report.
	up := d
	up.ID = strings.ToUpper(d.ID)
	if _, replayed, err := e.f.SubmitReport(ctx, inspectorA, up); err != nil || !replayed {
		t.Fatalf("upper-case id: replayed=%v err=%v", replayed, err)
	}

	changed := d
	changed.Description = "something else"
	_, _, err = e.f.SubmitReport(ctx, inspectorA, changed)
	wantCode(t, err, codes.AlreadyExists)

	_, _, err = e.f.SubmitReport(ctx, inspectorB, d)
	wantCode(t, err, codes.AlreadyExists)

	if n := count(t, e.pool, `SELECT count(*) FROM field.reports`); n != 1 {
		t.Fatalf("%d reports stored, want 1", n)
	}
	got, err := e.f.GetReport(ctx, inspectorA, d.ID)
	if err != nil || got.Description != d.Description || got.Lat != 29.01 {
		t.Fatalf("GetReport: %+v %v", got, err)
	}
	// Inspector B's scope does not hold it: NotFound, not PermissionDenied.
	_, err = e.f.GetReport(ctx, inspectorB, d.ID)
	wantCode(t, err, codes.NotFound)
	if _, err := e.f.GetReport(ctx, supervisor, d.ID); err != nil {
		t.Fatalf("supervisor of the township: %v", err)
	}
	_, err = e.f.GetReport(ctx, officer2, d.ID)
	wantCode(t, err, codes.NotFound)
}

func TestSubmitReportConvertsCoordinatesAndKeepsOriginal(t *testing.T) {
	e := newEnv(t, Config{})
	lat, lon := coord.WGS84ToGCJ02(29.07, 106.15)
	d := e.draft(lat, lon)
	d.Position.System = coord.GCJ02
	r, _, err := e.f.SubmitReport(context.Background(), inspectorB, d)
	if err != nil {
		t.Fatal(err)
	}
	if coord.DistanceMeters(r.Lat, r.Lon, 29.07, 106.15) > 0.01 {
		t.Fatalf("converted to %v,%v, want 29.07,106.15", r.Lat, r.Lon)
	}
	got, err := e.f.GetReport(context.Background(), inspectorB, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Position.Lat != lat || got.Position.Lon != lon || got.Position.System != coord.GCJ02 {
		t.Fatalf("original position lost: %+v", got.Position)
	}
	if got.Location.VillageCode != "500101002002" || !got.OutsideArea {
		t.Fatalf("location %+v outside=%v, want 500101002002 outside B's village", got.Location, got.OutsideArea)
	}
}

func TestSubmitReportOutsideAreaAndOutsideGrid(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	r, _, err := e.f.SubmitReport(ctx, inspectorA, e.draft(29.01, 106.15))
	if err != nil {
		t.Fatal(err)
	}
	if !r.OutsideArea || r.Location.VillageCode != villageES {
		t.Fatalf("want flagged in %s, got %+v outside=%v", villageES, r.Location, r.OutsideArea)
	}
	// Off the grid entirely: kept in the reporter's county, flagged.
	off, _, err := e.f.SubmitReport(ctx, inspectorA, e.draft(31.5, 108.0))
	if err != nil {
		t.Fatal(err)
	}
	if !off.OutsideArea || off.Location.CountyCode != testCounty || off.Location.VillageCode != "" {
		t.Fatalf("off-grid report: %+v outside=%v", off.Location, off.OutsideArea)
	}
	if _, err := e.f.GetReport(ctx, inspectorA, off.ID); err != nil {
		t.Fatalf("reporter must see their own off-grid report: %v", err)
	}
}

func TestSubmitReportBadInput(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	cases := map[string]func(d *Draft){
		"NaN latitude":        func(d *Draft) { d.Position.Lat = math.NaN() },
		"infinite longitude":  func(d *Draft) { d.Position.Lon = math.Inf(1) },
		"latitude 91":         func(d *Draft) { d.Position.Lat = 91 },
		"longitude -181":      func(d *Draft) { d.Position.Lon = -181 },
		"no fix (0,0)":        func(d *Draft) { d.Position.Lat, d.Position.Lon = 0, 0 },
		"no system":           func(d *Draft) { d.Position.System = 0 },
		"negative accuracy":   func(d *Draft) { d.Position.AccuracyM = -1 },
		"NaN accuracy":        func(d *Draft) { d.Position.AccuracyM = math.NaN() },
		"far future":          func(d *Draft) { d.ObservedAt = e.clock.Now().Add(time.Hour) },
		"no observed_at":      func(d *Draft) { d.ObservedAt = time.Time{} },
		"two years ago":       func(d *Draft) { d.ObservedAt = e.clock.Now().AddDate(-2, 0, 0) },
		"unknown category":    func(d *Draft) { d.Category = "alien_landing" },
		"malformed category":  func(d *Draft) { d.Category = "Water; DROP TABLE" },
		"1 MB text":           func(d *Draft) { d.Description = strings.Repeat("污", 1<<20/3) },
		"4001 chars":          func(d *Draft) { d.Description = strings.Repeat("a", 4001) },
		"invalid UTF-8":       func(d *Draft) { d.Description = "\xff\xfe" },
		"NUL in text":         func(d *Draft) { d.Description = "a\x00b" },
		"bidi override":       func(d *Draft) { d.Description = "倾倒\u202e垃圾" },
		"escape sequence":     func(d *Draft) { d.Description = "a\x1b[31mb" },
		"no severity":         func(d *Draft) { d.Severity = 0 },
		"severity 9":          func(d *Draft) { d.Severity = 9 },
		"not a uuid":          func(d *Draft) { d.ID = "report-1" },
		"nil uuid":            func(d *Draft) { d.ID = uuid.Nil.String() },
		"bad patrol id":       func(d *Draft) { d.PatrolID = "x" },
		"bad photo reference": func(d *Draft) { d.PhotoSHA256 = []string{"abc"} },
		"21 photos": func(d *Draft) {
			for i := range 21 {
				d.PhotoSHA256 = append(d.PhotoSHA256, strings.Repeat(string("0123456789abcdef"[i%16]), 63)+string("0123456789abcdef"[i/16]))
			}
		},
	}
	good := e.draft(29.01, 106.05)
	if _, _, err := e.f.SubmitReport(ctx, inspectorA, good); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			d := e.draft(29.01, 106.05)
			mutate(&d)
			_, _, err := e.f.SubmitReport(ctx, inspectorA, d)
			wantCode(t, err, codes.InvalidArgument)
			if len(err.Error()) > 300 {
				t.Fatalf("error message of %d bytes echoes the input", len(err.Error()))
			}
		})
	}
	// Nothing accepted earlier is lost, nothing bad was stored.
	if n := count(t, e.pool, `SELECT count(*) FROM field.reports`); n != 1 {
		t.Fatalf("%d reports stored, want only the good one", n)
	}
	if _, err := e.f.GetReport(ctx, inspectorA, good.ID); err != nil {
		t.Fatal(err)
	}
}

func TestViolationWritesReportOutboxAndLedgerTogether(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	d := e.draft(29.01, 106.05)
	d.Violation = true
	d.Category = "illegal_discharge"
	d.Severity = SeveritySerious
	r, _, err := e.f.SubmitReport(ctx, inspectorA, d)
	if err != nil {
		t.Fatal(err)
	}
	var subject, eventType, county string
	var payload []byte
	var eventID uuid.UUID
	err = e.pool.QueryRow(ctx, `SELECT event_id, county_code, subject, event_type, payload FROM outbox.events`).
		Scan(&eventID, &county, &subject, &eventType, &payload)
	if err != nil {
		t.Fatal(err)
	}
	if subject != "ecogrid.v1.violations.500101" || eventType != "ViolationReported" || county != testCounty || eventID.String() != r.EventID {
		t.Fatalf("outbox row %s %s %s %s (report event %s)", eventID, county, subject, eventType, r.EventID)
	}
	var ev eventsv1.ViolationReported
	if err := proto.Unmarshal(payload, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.ReportId != d.ID || ev.VillageCode != villageWS || ev.Severity != "SEVERITY_SERIOUS" || len(ev.Responsible) != 2 ||
		!slices.ContainsFunc(ev.Responsible, func(p *eventsv1.ResponsiblePerson) bool {
			return p.PersonId == chiefPersonID && p.NodeCode == townshipWest
		}) ||
		ev.EventId != r.EventID {
		t.Fatalf("event %+v", &ev)
	}
	var action, actor, role string
	var responsible []byte
	err = e.pool.QueryRow(ctx, `SELECT action, actor_id::text, actor_role, responsible::text FROM ledger.records
		WHERE county_code = $1 AND subject_type = 'report' AND subject_id = $2`, testCounty, d.ID).
		Scan(&action, &actor, &role, &responsible)
	if err != nil {
		t.Fatal(err)
	}
	if action != ActionViolationReported || actor != inspectorAID || role != "inspector" || !strings.Contains(string(responsible), chiefPersonID) {
		t.Fatalf("ledger record %s %s %s %s", action, actor, role, responsible)
	}
	// A replay writes no second event or record.
	if _, replayed, err := e.f.SubmitReport(ctx, inspectorA, d); err != nil || !replayed {
		t.Fatalf("replay: %v %v", replayed, err)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM outbox.events`); n != 1 {
		t.Fatalf("%d outbox rows after replay", n)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM ledger.records WHERE action = $1`, ActionViolationReported); n != 1 {
		t.Fatalf("%d violation records after replay", n)
	}

	// No act without its record: when the responsible people cannot be
	// read (the request is gone before the transaction ends), neither the
	// report nor the event is written.
	d2 := e.draft(29.01, 106.05)
	d2.Violation = true
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := e.f.SubmitReport(gone, inspectorA, d2); err == nil {
		t.Fatal("violation accepted without its accountability record")
	}
	if n := count(t, e.pool, `SELECT count(*) FROM field.reports WHERE id = $1`, d2.ID); n != 0 {
		t.Fatal("report stored without its event and record")
	}
	if n := count(t, e.pool, `SELECT count(*) FROM outbox.events`); n != 1 {
		t.Fatalf("%d outbox rows", n)
	}
}

func TestSubmitReportBatchKeepsGoodItems(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	a, b, c := e.draft(29.01, 106.05), e.draft(29.02, 106.05), e.draft(29.03, 106.05)
	b.Category = "nope"
	c.Violation = true
	res, err := e.f.SubmitReportBatch(ctx, inspectorA, []Draft{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil || res[2].Err != nil || res[0].Report.ID != a.ID || res[2].Report.ID != c.ID {
		t.Fatalf("good items failed: %v %v", res[0].Err, res[2].Err)
	}
	wantCode(t, res[1].Err, codes.InvalidArgument)
	// The app retries the whole queue after fixing b: a and c replay.
	b.Category = "water"
	res, err = e.f.SubmitReportBatch(ctx, inspectorA, []Draft{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Replayed || res[1].Replayed || res[1].Err != nil || !res[2].Replayed {
		t.Fatalf("second pass: %+v", res)
	}
	if n := count(t, e.pool, `SELECT count(*) FROM field.reports`); n != 3 {
		t.Fatalf("%d reports, want 3", n)
	}
	_, err = e.f.SubmitReportBatch(ctx, inspectorA, make([]Draft, 201))
	wantCode(t, err, codes.InvalidArgument)
	_, err = e.f.SubmitReportBatch(ctx, inspectorA, nil)
	wantCode(t, err, codes.InvalidArgument)
}

func TestListReportsScopeFiltersAndPaging(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	var idsA []string
	for i := range 7 {
		d := e.draft(29.01+float64(i)*0.001, 106.05)
		if i%2 == 0 {
			d.Category = "air"
		}
		d.Violation = i == 3
		d.ObservedAt = e.clock.Now().Add(-time.Duration(i) * time.Hour)
		if _, _, err := e.f.SubmitReport(ctx, inspectorA, d); err != nil {
			t.Fatal(err)
		}
		idsA = append(idsA, d.ID)
	}
	dB := e.draft(29.01, 106.15)
	if _, _, err := e.f.SubmitReport(ctx, inspectorB, dB); err != nil {
		t.Fatal(err)
	}
	// A reports once in B's village: A sees it as their own, B sees it in scope.
	dAB := e.draft(29.02, 106.15)
	if _, _, err := e.f.SubmitReport(ctx, inspectorA, dAB); err != nil {
		t.Fatal(err)
	}

	list := func(who int, fl ReportFilter, size int) map[string]bool {
		t.Helper()
		c := []scope.Caller{inspectorA, inspectorB, supervisor, officer, officer2}[who]
		seen := map[string]bool{}
		token := ""
		for pages := 0; ; pages++ {
			page, next, err := e.f.ListReports(ctx, c, fl, size, token)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > size {
				t.Fatalf("page of %d > %d", len(page), size)
			}
			for _, r := range page {
				if seen[r.ID] {
					t.Fatalf("report %s listed twice", r.ID)
				}
				seen[r.ID] = true
			}
			if next == "" {
				return seen
			}
			token = next
			if pages > 20 {
				t.Fatal("paging does not end")
			}
		}
	}
	if got := list(0, ReportFilter{}, 3); len(got) != 8 || !got[dAB.ID] || got[dB.ID] {
		t.Fatalf("inspector A sees %d", len(got))
	}
	if got := list(1, ReportFilter{}, 3); len(got) != 2 || !got[dB.ID] || !got[dAB.ID] {
		t.Fatalf("inspector B sees %v", got)
	}
	if got := list(2, ReportFilter{}, 2); len(got) != 7 || got[dB.ID] {
		t.Fatalf("west township supervisor sees %d", len(got))
	}
	if got := list(3, ReportFilter{}, 100); len(got) != 9 {
		t.Fatalf("county officer sees %d", len(got))
	}
	if got := list(4, ReportFilter{}, 100); len(got) != 0 {
		t.Fatalf("other county's officer sees %d", len(got))
	}
	if got := list(3, ReportFilter{Category: "air"}, 100); len(got) != 4 {
		t.Fatalf("category air: %d", len(got))
	}
	yes := true
	if got := list(3, ReportFilter{Violation: &yes}, 100); len(got) != 1 || !got[idsA[3]] {
		t.Fatalf("violations: %v", got)
	}
	if got := list(3, ReportFilter{NodeCode: townshipEast}, 100); len(got) != 2 {
		t.Fatalf("east township: %d", len(got))
	}
	// A supervisor asking for a node outside their scope gets nothing.
	if got := list(2, ReportFilter{NodeCode: townshipEast}, 100); len(got) != 0 {
		t.Fatalf("supervisor west sees east: %d", len(got))
	}
	from := e.clock.Now().Add(-150 * time.Minute)
	if got := list(3, ReportFilter{NodeCode: villageWS, ObservedFrom: from}, 100); len(got) != 3 {
		t.Fatalf("last 2.5 h in %s: %d", villageWS, len(got))
	}
	// One reporter's reports (issue 14): the county sees both of A's
	// villages, the west supervisor only A's reports in the west, B's
	// filter leaves A's out.
	if got := list(3, ReportFilter{ReporterID: inspectorAID}, 100); len(got) != 8 || got[dB.ID] || !got[dAB.ID] {
		t.Fatalf("reporter A for the county: %d", len(got))
	}
	if got := list(2, ReportFilter{ReporterID: inspectorAID}, 100); len(got) != 7 || got[dAB.ID] {
		t.Fatalf("reporter A for the west supervisor: %d", len(got))
	}
	if got := list(3, ReportFilter{ReporterID: inspectorBID, ObservedTo: e.clock.Now()}, 100); len(got) != 1 || !got[dB.ID] {
		t.Fatalf("reporter B: %v", got)
	}
	_, _, err := e.f.ListReports(ctx, officer, ReportFilter{ReporterID: "li"}, 10, "")
	wantCode(t, err, codes.InvalidArgument)
	_, _, err = e.f.ListReports(ctx, officer, ReportFilter{}, 10, "garbage!")
	wantCode(t, err, codes.InvalidArgument)
	_, _, err = e.f.ListReports(ctx, officer, ReportFilter{NodeCode: "abc"}, 10, "")
	wantCode(t, err, codes.InvalidArgument)
}

func TestCountyCategories(t *testing.T) {
	e := newEnv(t, Config{})
	ctx := context.Background()
	_, err := e.f.CreateCategory(ctx, inspectorA, Category{CountyCode: testCounty, Code: "livestock_waste", Name: "Livestock waste"})
	wantCode(t, err, codes.PermissionDenied)
	_, err = e.f.CreateCategory(ctx, officer, Category{CountyCode: testCounty, Code: "water", Name: "x"})
	wantCode(t, err, codes.AlreadyExists)
	_, err = e.f.CreateCategory(ctx, officer, Category{CountyCode: testCounty, Code: "Bad Code", Name: "x"})
	wantCode(t, err, codes.InvalidArgument)
	c := Category{CountyCode: testCounty, Code: "livestock_waste", Name: "Livestock waste"}
	if _, err := e.f.CreateCategory(ctx, officer, c); err != nil {
		t.Fatal(err)
	}
	if _, err := e.f.CreateCategory(ctx, officer, c); err != nil {
		t.Fatalf("replay: %v", err)
	}
	cats, err := e.f.ListCategories(ctx, testCounty)
	if err != nil || len(cats) != 11 {
		t.Fatalf("%d categories, %v", len(cats), err)
	}
	d := e.draft(29.01, 106.05)
	d.Category = "livestock_waste"
	if _, _, err := e.f.SubmitReport(ctx, inspectorA, d); err != nil {
		t.Fatal(err)
	}
	// Another county does not have it.
	o := caller(uuid.NewString(), "inspector", otherVillage)
	d2 := e.draft(30.05, 106.05)
	d2.Category = "livestock_waste"
	_, _, err = e.f.SubmitReport(ctx, o, d2)
	wantCode(t, err, codes.InvalidArgument)
}

// movedLocator is the test grid after a boundary change yesterday: the
// south-west village now reaches up to 29.06 (it ended at 29.05 before,
// as in the seeded grid).
type movedLocator struct{ grid Locator }

func (m movedLocator) Locate(ctx context.Context, lat, lon float64) (Location, bool, error) {
	loc, ok, err := m.grid.Locate(ctx, lat, lon)
	if ok && loc.VillageCode == villageWN && lat < 29.06 {
		loc.VillageCode = villageWS
	}
	return loc, ok, err
}

func (m movedLocator) LocateAt(ctx context.Context, lat, lon float64, at time.Time) (Location, bool, error) {
	if at.Before(time.Now().Add(-24 * time.Hour)) {
		return m.grid.Locate(ctx, lat, lon) // the old boundaries
	}
	return m.Locate(ctx, lat, lon)
}

func TestLateReplayIsLocatedInTheGridOfItsTime(t *testing.T) {
	e := newEnv(t, Config{})
	e.f.Reports.locator = movedLocator{e.loc}
	ctx := context.Background()
	fresh := e.draft(29.055, 106.05)
	old := e.draft(29.055, 106.05)
	old.ObservedAt = e.clock.Now().Add(-72 * time.Hour) // queued offline three days ago
	r1, _, err := e.f.SubmitReport(ctx, inspectorA, fresh)
	if err != nil {
		t.Fatal(err)
	}
	r2, _, err := e.f.SubmitReport(ctx, inspectorA, old)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Location.VillageCode != villageWS || r2.Location.VillageCode != villageWN {
		t.Fatalf("fresh in %s (want %s), three days old in %s (want %s)", r1.Location.VillageCode, villageWS, r2.Location.VillageCode, villageWN)
	}
}

// A report names the patrol it was filed on: the patrol must exist and be
// the reporter's own, or the report would count for a patrol it was not
// part of.
func TestSubmitReportRefusesAPatrolThatIsNotTheReporters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	ctx := context.Background()
	patrolB := uuid.NewString()
	if _, err := e.f.StartPatrol(ctx, inspectorB, patrolB, e.clock.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}

	d := e.draft(29.01, 106.05)
	d.PatrolID = uuid.NewString()
	_, _, err := e.f.SubmitReport(ctx, inspectorA, d)
	wantCode(t, err, codes.NotFound)
	if !strings.Contains(err.Error(), "start the patrol") {
		t.Fatalf("unhelpful message: %v", err)
	}

	d = e.draft(29.01, 106.05)
	d.PatrolID = patrolB
	_, _, err = e.f.SubmitReport(ctx, inspectorA, d)
	wantCode(t, err, codes.PermissionDenied)

	if n := count(t, e.pool, `SELECT count(*) FROM field.reports`); n != 0 {
		t.Fatalf("%d reports stored on patrols not the reporter's", n)
	}

	// On their own patrol the same report is filed.
	d.ID = uuid.NewString()
	d.PatrolID = uuid.NewString()
	if _, err := e.f.StartPatrol(ctx, inspectorA, d.PatrolID, e.clock.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if r, _, err := e.f.SubmitReport(ctx, inspectorA, d); err != nil || r.PatrolID != d.PatrolID {
		t.Fatalf("own patrol: %+v %v", r, err)
	}
}
