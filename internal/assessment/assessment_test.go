package assessment_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"ecogrid/internal/assessment"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/ledger"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
)

// TestScorecardsAndClosedPeriods scores two villages for a quarter from
// case records, checks the figures, ranks and weights per kind of area,
// closes the quarter into the ledger, then records late data: the closed
// quarter's scorecards do not change, and the late records count in the
// next quarter.
func TestScorecardsAndClosedPeriods(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	l := ledger.New(pool, nil, ledger.Config{}, nil)
	grid := peopletest.InsertGrid(t, pool)
	officer := peopletest.AddMember(t, pool, grid[peopletest.CountyA], scope.RoleCountyOfficer, "赵主任", "")

	q1 := assessment.Period{County: peopletest.CountyA, Label: "2026-Q1",
		From: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)}
	q2 := assessment.Period{County: q1.County, Label: "2026-Q2", From: q1.To, To: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)}
	good, bad := peopletest.VillageA1a, peopletest.VillageA1b
	var entries []ledger.Entry
	kase := func(v string, opened time.Time, acceptAfter, closeAfter time.Duration, escalate, reopen bool) {
		id := uuid.NewString()
		deadline := opened.Add(7 * 24 * time.Hour)
		e := func(event string, at time.Time) {
			entries = append(entries, ledger.Entry{CountyCode: v[:6], ActorRole: "system", Action: "case." + event, SubjectType: "case",
				SubjectID: id, NodeCode: v, At: at, Payload: map[string]any{"deadline": deadline.Format(time.RFC3339)}})
		}
		entries = append(entries, ledger.Entry{CountyCode: v[:6], ActorRole: "inspector", Action: "violation.reported",
			SubjectType: "report", SubjectID: uuid.NewString(), NodeCode: v, At: opened})
		e("created", opened)
		e("accepted", opened.Add(acceptAfter))
		if escalate {
			e("escalated", deadline.Add(time.Hour))
		}
		e("closed", opened.Add(closeAfter))
		if reopen {
			e("reopened", opened.Add(closeAfter+48*time.Hour))
		}
	}
	jan := q1.From.Add(10 * 24 * time.Hour)
	for i := range 4 { // good: fast, on time
		kase(good, jan.Add(time.Duration(i)*24*time.Hour), 2*time.Hour, 3*24*time.Hour, false, false)
	}
	kase(bad, jan, 48*time.Hour, 10*24*time.Hour, true, false) // 3 days late
	kase(bad, jan, 24*time.Hour, 3*24*time.Hour, false, true)  // on time, reopened
	write := func(es []ledger.Entry) {
		t.Helper()
		if err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
			for _, e := range es {
				if _, err := ledger.Append(ctx, tx, e); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	write(entries)

	a := assessment.New(pool, l)
	nodes := []string{good, bad}
	kinds := map[string]assessment.AreaKind{good: assessment.Ecological, bad: assessment.Urban}
	sc, closed, err := a.Scorecards(ctx, officer.Caller(), q1, nodes, kinds)
	if err != nil || closed {
		t.Fatalf("scorecards: %v closed=%v", err, closed)
	}
	fig := func(s assessment.Scorecard, code string) assessment.Figure {
		for _, f := range s.Figures {
			if f.Code == code {
				return f
			}
		}
		t.Fatalf("no figure %s", code)
		return assessment.Figure{}
	}
	g, b := sc[0], sc[1]
	if v := fig(g, "on_time_closure").Value; v != 100 {
		t.Errorf("good on-time closure %v, want 100", v)
	}
	if v := fig(b, "on_time_closure").Value; v != 50 {
		t.Errorf("bad on-time closure %v, want 50", v)
	}
	if v := fig(b, "overdue_days").Value; v != 3 {
		t.Errorf("bad overdue days %v, want 3", v)
	}
	if v := fig(b, "response_hours").Value; v != 36 {
		t.Errorf("bad response hours %v, want 36", v)
	}
	if v := fig(b, "reopen_rate").Value; v != 50 {
		t.Errorf("bad reopen rate %v, want 50", v)
	}
	if v := fig(g, "violations"); v.Value != 4 || len(v.Cites) != 4 {
		t.Errorf("good violations %+v, want 4 with their 4 records", v)
	}
	if g.Rank != 1 || b.Rank != 2 || !(g.Total > b.Total) || fig(g, "reopen_rate").Weight != 0.25 || fig(b, "reopen_rate").Weight != 0.1 {
		t.Errorf("ranks/totals/weights: good %+v bad %+v", g, b)
	}

	frozen, err := a.ClosePeriod(ctx, officer.Caller(), q1, nodes, kinds)
	if err != nil {
		t.Fatal(err)
	}
	// Late data about January, recorded now (after the close, so in Q2 by
	// recording time): another late case in the good village.
	entries = nil
	kase(good, q2.From.Add(time.Hour), 70*time.Hour, 20*24*time.Hour, true, false)
	write(entries)
	again, closed, err := a.Scorecards(ctx, officer.Caller(), q1, nodes, kinds)
	if err != nil || !closed || again[0].Total != frozen[0].Total || fig(again[0], "escalations").Value != 0 {
		t.Fatalf("closed Q1 changed: %v closed=%v %+v vs %+v", err, closed, again[0], frozen[0])
	}
	next, _, err := a.Scorecards(ctx, officer.Caller(), q2, nodes, kinds)
	if err != nil || fig(next[0], "escalations").Value != 1 {
		t.Fatalf("Q2: %v %+v", err, next)
	}
	if _, _, err := a.Scorecards(ctx, peopletest.AddMember(t, pool, grid[peopletest.CountyB], scope.RoleCountyOfficer, "other", "").Caller(), q1, nodes, kinds); err == nil {
		t.Error("another county's officer read the scorecards")
	}
}
