package assessment_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/assessment"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/ledger"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// fixture is a county with two townships and three villages, written the
// way people, field and cases record their acts.
type fixture struct {
	t       *testing.T
	pool    *pgxpool.Pool
	a       *assessment.Assessor
	officer scope.Caller
	entries []ledger.Entry
}

var cst = time.FixedZone("CST", 8*3600)

func newFixture(t *testing.T) *fixture {
	pool := dbtest.NewPool(t)
	l := ledger.New(pool, nil, ledger.Config{}, nil)
	grid := peopletest.InsertGrid(t, pool)
	officer := peopletest.AddMember(t, pool, grid[peopletest.CountyA], scope.RoleCountyOfficer, "赵主任", "")
	// Village A1a must patrol twice a month, A1b once a week (4 a month).
	if _, err := pool.Exec(context.Background(), `UPDATE grid.nodes SET tasks = $2 WHERE code = $1`, peopletest.VillageA1a,
		`[{"kind":"patrol","count":2,"period":"month"}]`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), `UPDATE grid.nodes SET tasks = $2 WHERE code = $1`, peopletest.VillageA1b,
		`[{"kind":"patrol","count":1,"period":"week"}]`); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, pool: pool, a: assessment.New(pool, l), officer: officer.Caller()}
}

func (f *fixture) post(person, name, node, role string, from time.Time) {
	f.entries = append(f.entries, ledger.Entry{CountyCode: node[:6], ActorRole: "system", Action: "assignment.started", SubjectType: "assignment",
		SubjectID: uuid.NewString(), NodeCode: node, At: from,
		Payload: map[string]any{"person_id": person, "person_name": name, "role": role, "node_code": node, "valid_from": from.Format(time.RFC3339Nano)}})
}

// kase queues a case in village v reported by inspector: accepted after
// acceptAfter, 7-day deadline, closed after closeAfter (0: never).
func (f *fixture) kase(v, inspector string, resp []ledger.Responsible, opened time.Time, acceptAfter, closeAfter time.Duration, escalate, reopen bool) string {
	id := uuid.NewString()
	deadline := opened.Add(7 * 24 * time.Hour)
	e := func(event, state string, at time.Time) {
		f.entries = append(f.entries, ledger.Entry{CountyCode: v[:6], ActorRole: "system", Action: "case." + event, SubjectType: "case",
			SubjectID: id, NodeCode: v, At: at, Responsible: resp, Payload: map[string]any{"state": state, "deadline": deadline.Format(time.RFC3339)}})
	}
	f.entries = append(f.entries, ledger.Entry{CountyCode: v[:6], ActorID: inspector, ActorRole: "inspector", ActorNodeCode: v, Action: "violation.reported",
		SubjectType: "report", SubjectID: uuid.NewString(), NodeCode: v, At: opened, Responsible: resp})
	e("opened", "reported", opened)
	e("accepted", "accepted", opened.Add(acceptAfter))
	if escalate {
		e("escalated", "accepted", deadline.Add(time.Hour))
	}
	if closeAfter > 0 {
		e("closed", "closed", opened.Add(closeAfter))
		if reopen {
			e("reopened", "accepted", opened.Add(closeAfter+48*time.Hour))
		}
	}
	return id
}

func (f *fixture) write() {
	f.t.Helper()
	ctx := context.Background()
	if err := database.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		for _, e := range f.entries {
			if _, err := ledger.Append(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		f.t.Fatal(err)
	}
	f.entries = nil
}

// patrol inserts an ended patrol of inspector through cells.
func (f *fixture) patrol(inspector string, at time.Time, plausible bool, cells ...string) string {
	f.t.Helper()
	id := uuid.NewString()
	flags := []string{}
	if !plausible {
		flags = []string{"too_fast"}
	}
	if _, err := f.pool.Exec(context.Background(), `INSERT INTO field.patrols (id, request_hash, inspector_id, county_code, started_at, ended_at, cell_codes, flags)
		VALUES ($1, '\x00', $2, $3, $4, $5, $6, $7)`, id, inspector, cells[0][:6], at, at.Add(time.Hour), cells, flags); err != nil {
		f.t.Fatal(err)
	}
	return id
}

func fig(t *testing.T, cards []assessment.Scorecard, code, ind string) assessment.Figure {
	t.Helper()
	for _, c := range cards {
		if c.Code == code {
			return c.Figure(ind)
		}
	}
	t.Fatalf("no scorecard %s", code)
	return assessment.Figure{}
}

func card(t *testing.T, cards []assessment.Scorecard, code string) assessment.Scorecard {
	t.Helper()
	for _, c := range cards {
		if c.Code == code {
			return c
		}
	}
	t.Fatalf("no scorecard %s in %d", code, len(cards))
	return assessment.Scorecard{}
}

// TestScorecardsDrillDownAndClosedPeriods scores villages, townships and
// inspectors for a quarter from case records, patrols and a value entered
// by another department; checks figures, ranks among siblings, weights
// per kind of area and the drill-down; closes the quarter, then records
// late data about it: the closed quarter does not change, the late data
// counts in the next quarter and is flagged, and an altered frozen row is
// detected.
func TestScorecardsDrillDownAndClosedPeriods(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	good, bad, other := peopletest.VillageA1a, peopletest.VillageA1b, peopletest.VillageA2a
	zhang, li, wang := uuid.NewString(), uuid.NewString(), uuid.NewString()
	start := time.Date(2025, 6, 1, 0, 0, 0, 0, cst)
	f.post(zhang, "张伟", good, "inspector", start)
	f.post(li, "李娜", bad, "inspector", start)
	f.post(wang, "王强", other, "inspector", start)
	rz := []ledger.Responsible{{PersonID: zhang, Name: "张伟", Role: "inspector", NodeCode: good}}
	rl := []ledger.Responsible{{PersonID: li, Name: "李娜", Role: "inspector", NodeCode: bad}}

	jan := time.Date(2026, 1, 10, 9, 0, 0, 0, cst)
	for i := range 4 { // good: fast, on time
		f.kase(good, zhang, rz, jan.Add(time.Duration(i)*24*time.Hour), 2*time.Hour, 3*24*time.Hour, false, false)
	}
	f.kase(bad, li, rl, jan, 48*time.Hour, 10*24*time.Hour, true, false) // 3 days late, escalated
	f.kase(bad, li, rl, jan, 24*time.Hour, 3*24*time.Hour, false, true)  // on time, reopened
	f.kase(bad, li, rl, time.Date(2026, 3, 1, 9, 0, 0, 0, cst), 24*time.Hour, 0, false, false)
	// ↑ still open at the quarter's end, past its deadline (Mar 8) by 24 days;
	// the reopened case is open again past its deadline (Jan 17) by 74 days.
	f.write()
	// Patrols: good meets 2/month in Jan and Feb, not in March; bad patrols
	// once (a flagged patrol does not count).
	var goodPatrols []string
	for _, d := range []string{"2026-01-05", "2026-01-20", "2026-02-03", "2026-02-17", "2026-03-09"} {
		at, _ := time.ParseInLocation("2006-01-02", d, cst)
		goodPatrols = append(goodPatrols, f.patrol(zhang, at.Add(9*time.Hour), true, good))
	}
	f.patrol(li, jan, true, bad)
	f.patrol(li, jan.Add(24*time.Hour), false, bad)

	// Kinds and weights: the good village is ecological, the bad one urban
	// with the county's own urban weights and an external indicator.
	if err := f.a.SetNodeKind(ctx, f.officer, good, assessment.Ecological); err != nil {
		t.Fatal(err)
	}
	if err := f.a.SetNodeKind(ctx, f.officer, peopletest.TownshipA1, assessment.Urban); err != nil {
		t.Fatal(err)
	}
	wq := assessment.Indicator{Code: "water_quality", Name: "水质达标率", Definition: "monitored sections meeting their class (生态环境局)",
		Unit: "%", Direction: assessment.HigherIsBetter, Best: 100, Worst: 60, Source: assessment.External}
	if _, err := f.a.DefineIndicator(ctx, f.officer, peopletest.CountyA, wq); err != nil {
		t.Fatal(err)
	}
	urban := assessment.Weights{assessment.OnTimeClosure: 0.4, assessment.ResponseHours: 0.2, assessment.OverdueDays: 0.2, "water_quality": 0.2}
	if err := f.a.SetWeights(ctx, f.officer, peopletest.CountyA, assessment.Urban, urban); err != nil {
		t.Fatal(err)
	}
	if err := f.a.SetWeights(ctx, f.officer, peopletest.CountyA, assessment.Urban, assessment.Weights{"forest": 1}); structerr.Code(err) != codes.InvalidArgument {
		t.Errorf("weights of an unknown indicator: %v", err)
	}
	val, err := f.a.RecordValue(ctx, f.officer, assessment.ValueInput{ID: uuid.NewString(), Period: "2026-Q1", NodeCode: bad, Indicator: "water_quality",
		Value: 80, EvidenceNote: "县生态环境局 2026年一季度水质月报", AttachmentName: "q1.pdf", AttachmentType: "application/pdf", Attachment: []byte("%PDF-1.4 q1")})
	if err != nil || val.Late || val.AttachmentSHA == "" {
		t.Fatalf("value: %+v %v", val, err)
	}
	if name, _, data, err := f.a.Attachment(ctx, f.officer, val.ID); err != nil || name != "q1.pdf" || string(data) != "%PDF-1.4 q1" {
		t.Fatalf("attachment: %q %q %v", name, data, err)
	}

	q := assessment.Query{County: peopletest.CountyA, Period: "2026-Q1", Level: assessment.LevelVillage}
	vs, closed, err := f.a.Scorecards(ctx, f.officer, q)
	if err != nil || closed || len(vs) != 3 {
		t.Fatalf("villages: %v closed=%v %d", err, closed, len(vs))
	}
	for _, c := range []struct {
		node, ind string
		want      float64
	}{
		{good, assessment.OnTimeClosure, 100}, {good, assessment.ResponseHours, 2}, {good, assessment.PatrolCompliance, 66.67},
		{good, assessment.CellCoverage, 100}, {good, assessment.ReportsPerInspector, 4}, {good, assessment.ViolationsPerKm2, 400},
		{bad, assessment.OnTimeClosure, 50}, {bad, assessment.ResponseHours, 32}, {bad, assessment.OverdueCount, 3},
		{bad, assessment.OverdueDays, 3 + 24 + 74}, {bad, assessment.Escalations, 1}, {bad, assessment.ReopenRate, 50},
		{bad, assessment.PatrolCompliance, 0}, {bad, "water_quality", 80},
	} {
		if got := fig(t, vs, c.node, c.ind); got.Value != c.want || !got.Applicable {
			t.Errorf("%s %s = %+v, want %v", c.node, c.ind, got, c.want)
		}
	}
	if f := fig(t, vs, other, assessment.OnTimeClosure); f.Applicable {
		t.Errorf("a village with no closed case has an on-time closure rate: %+v", f)
	}
	g, b := card(t, vs, good), card(t, vs, bad)
	if g.Kind != assessment.Ecological || b.Kind != assessment.Urban || g.Figure(assessment.ReopenRate).Weight != 0.15 ||
		b.Figure(assessment.OnTimeClosure).Weight != 0.4 || b.Figure(assessment.ReopenRate).Weight != 0 {
		t.Errorf("kinds and weights: good %s %+v, bad %s %+v", g.Kind, g.Figure(assessment.ReopenRate), b.Kind, b.Figure(assessment.OnTimeClosure))
	}
	if g.Rank != 1 || b.Rank != 2 || g.Of != 2 || card(t, vs, other).Rank != 1 || card(t, vs, other).Of != 1 || !(g.Total > b.Total) {
		t.Errorf("ranks among siblings: good %d/%d %.2f, bad %d/%d %.2f", g.Rank, g.Of, g.Total, b.Rank, b.Of, b.Total)
	}
	if g.Figure(assessment.ReportsPerInspector).Items != nil {
		t.Error("the list carries the drill-down items")
	}
	// Drill-down: the patrols counted, the records counted.
	d, _, err := f.a.Detail(ctx, f.officer, q, good, assessment.PatrolCompliance)
	if err != nil || len(d.Items) != len(goodPatrols) {
		t.Fatalf("patrol drill-down: %v %+v", err, d)
	}
	for i, it := range d.Items {
		if it.Ref != "patrol:"+goodPatrols[i] {
			t.Errorf("patrol item %d = %s, want %s", i, it.Ref, goodPatrols[i])
		}
	}
	d, _, err = f.a.Detail(ctx, f.officer, q, bad, assessment.OverdueCount)
	if err != nil || len(d.Items) != 3 || d.Items[0].SubjectType != "case" {
		t.Fatalf("overdue drill-down: %v %+v", err, d)
	}

	ts, _, err := f.a.Scorecards(ctx, f.officer, assessment.Query{County: q.County, Period: q.Period, Level: assessment.LevelTownship})
	if err != nil || len(ts) != 2 {
		t.Fatalf("townships: %v %d", err, len(ts))
	}
	if v := fig(t, ts, peopletest.TownshipA1, assessment.OnTimeClosure).Value; v != 83.33 {
		t.Errorf("township A1 on-time closure %v, want 5/6", v)
	}
	if v := fig(t, ts, peopletest.TownshipA1, assessment.CellCoverage).Value; v != 100 {
		t.Errorf("township A1 coverage %v, want both villages", v)
	}
	if v := fig(t, ts, peopletest.TownshipA2, assessment.CellCoverage).Value; v != 0 {
		t.Errorf("township A2 coverage %v, want 0", v)
	}
	ps, _, err := f.a.Scorecards(ctx, f.officer, assessment.Query{County: q.County, Period: q.Period, Level: assessment.LevelPerson, Parent: peopletest.TownshipA1})
	if err != nil || len(ps) != 2 {
		t.Fatalf("persons: %v %+v", err, ps)
	}
	pz, pl := card(t, ps, zhang), card(t, ps, li)
	if pz.Name != "张伟" || pz.Rank != 1 || pl.Rank != 2 || pz.Figure(assessment.ReportsPerInspector).Value != 4 ||
		pl.Figure(assessment.OverdueCount).Value != 3 || pz.Figure(assessment.ViolationsPerKm2).Applicable {
		t.Errorf("persons: zhang %+v li %+v", pz, pl)
	}

	// Close Q1 and record late data about it: a case of the good village
	// closed late, backdated into March, and a corrected water value.
	rec, err := f.a.ClosePeriod(ctx, f.officer, q.County, "2026-Q1")
	if err != nil || rec.Action != assessment.ActionPeriodClosed {
		t.Fatalf("close: %v %+v", err, rec)
	}
	if again, err := f.a.ClosePeriod(ctx, f.officer, q.County, "2026-Q1"); err != nil || again.Seq != rec.Seq {
		t.Fatalf("closing again: %v %d vs %d", err, again.Seq, rec.Seq)
	}
	frozen := vs
	f.kase(good, zhang, rz, time.Date(2026, 3, 2, 9, 0, 0, 0, cst), 70*time.Hour, 20*24*time.Hour, true, false)
	f.write()
	late, err := f.a.RecordValue(ctx, f.officer, assessment.ValueInput{ID: uuid.NewString(), Period: "2026-Q1", NodeCode: bad, Indicator: "water_quality",
		Value: 70, EvidenceNote: "更正: 一季度复核"})
	if err != nil || !late.Late {
		t.Fatalf("late value: %+v %v", late, err)
	}
	again, closed, err := f.a.Scorecards(ctx, f.officer, q)
	if err != nil || !closed {
		t.Fatalf("closed Q1: %v closed=%v", err, closed)
	}
	for _, code := range []string{good, bad, other} {
		a, b := card(t, again, code), card(t, frozen, code)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Errorf("closed Q1 changed for %s:\n%s\n%s", code, ja, jb)
		}
	}
	d, closed, err = f.a.Detail(ctx, f.officer, q, good, assessment.ReportsPerInspector)
	if err != nil || !closed || len(d.Items) != 4 || d.Value != 4 {
		t.Errorf("closed Q1 drill-down: %v %+v", err, d)
	}
	q2 := q
	q2.Period, q2.Trend = "2026-Q2", 2
	next, closed, err := f.a.Scorecards(ctx, f.officer, q2)
	if err != nil || closed {
		t.Fatalf("Q2: %v", err)
	}
	ng := card(t, next, good)
	if e := ng.Figure(assessment.Escalations); e.Value != 1 || e.Late != 1 {
		t.Errorf("Q2 good escalations %+v, want the late one, flagged", e)
	}
	if ng.Late == 0 || ng.Figure(assessment.ReportsPerInspector).Late != 1 {
		t.Errorf("Q2 good: late %d, reports %+v", ng.Late, ng.Figure(assessment.ReportsPerInspector))
	}
	if w := card(t, next, bad).Figure("water_quality"); w.Value != 70 || w.Late != 1 {
		t.Errorf("Q2 water quality %+v, want the late Q1 value 70, flagged", w)
	}
	if len(ng.Trend) != 2 || ng.Trend[0].Period != "2026-Q1" || ng.Trend[0].Total != g.Total || !ng.Trend[0].Found || ng.Trend[1].Period != "2025-Q4" {
		t.Errorf("trend %+v, want Q1 %.2f then 2025-Q4", ng.Trend, g.Total)
	}

	// Periods not over cannot close; another county's officer sees nothing;
	// an altered frozen row is detected.
	if _, err := f.a.ClosePeriod(ctx, f.officer, q.County, fmt.Sprint(time.Now().Year()+1)); structerr.Code(err) != codes.FailedPrecondition {
		t.Errorf("closing next year: %v", err)
	}
	otherOfficer := peopletest.AddMember(t, f.pool, peopletest.InsertNode(t, f.pool, "130125", "another county", 30), scope.RoleCountyOfficer, "孙", "").Caller()
	if _, _, err := f.a.Scorecards(ctx, otherOfficer, q); structerr.Code(err) != codes.NotFound {
		t.Errorf("another county's officer: %v", err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE assessment.closed_periods SET scorecards = convert_to(replace(convert_from(scorecards, 'UTF8'), '"rank":1', '"rank":2'), 'UTF8')
		WHERE level = 'village'`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.a.Scorecards(ctx, f.officer, q); structerr.Code(err) != codes.FailedPrecondition {
		t.Errorf("altered frozen scorecards read back: %v", err)
	}
}
