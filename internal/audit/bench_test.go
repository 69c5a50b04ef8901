package audit_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"os"
	"strconv"

	"github.com/google/uuid"

	"ecogrid/internal/audit"
	"ecogrid/internal/ledger"
	"ecogrid/internal/people/peopletest"
)

// BenchmarkTenureAudit audits an inspector with five years in three posts
// of a county whose chain holds five years of activity of three villages
// (the fixture of TestTenureAuditMatchesSQLAndVerifiesOffline): gathering
// the records, computing the facts, ledgering the generation, signing a
// checkpoint and proving every cited record.
func BenchmarkTenureAudit(b *testing.B) {
	ctx := context.Background()
	c := newCounty(b)
	zhang := c.person("张伟")
	t1, t2 := epoch.AddDate(1, 6, 0), epoch.AddDate(3, 0, 0)
	z1, z2, z3 := uuid.NewString(), uuid.NewString(), uuid.NewString()
	posts := []post{
		{id: z1, person: zhang.ID, name: zhang.Name, node: peopletest.VillageA1a, role: "inspector", from: epoch, to: &t1, how: "transferred", reason: "调任", next: z2},
		{id: z2, person: zhang.ID, name: zhang.Name, node: peopletest.VillageA1b, role: "inspector", from: t1, to: &t2, how: "transferred", reason: "提任网格长", next: z3},
		{id: z3, person: zhang.ID, name: zhang.Name, node: peopletest.VillageA1b, role: "grid_chief", from: t2},
	}
	for _, p := range posts {
		c.assign(p)
	}
	c.activity(posts, []string{peopletest.VillageA1a, peopletest.VillageA1b, peopletest.VillageA2a}, 5, rand.New(rand.NewPCG(1, 2)))
	// ECOGRID_BENCH_AUDIT_PAD more records of other people in the same
	// chain (spread over the five years), so the tree and the indexes are
	// large; they are real appends, so the tree hashes are valid.
	pad, _ := strconv.Atoi(os.Getenv("ECOGRID_BENCH_AUDIT_PAD"))
	other := uuid.NewString()
	for i := range pad {
		c.events = append(c.events, ledger.Entry{CountyCode: peopletest.CountyA, ActorID: other, ActorRole: "inspector",
			ActorNodeCode: peopletest.VillageA2a, Action: "violation.reported", SubjectType: "report", SubjectID: uuid.NewString(),
			NodeCode: peopletest.VillageA2a, At: epoch.Add(time.Duration(i) * 5 * 365 * 24 * time.Hour / time.Duration(pad)),
			Payload: map[string]any{"category": "water"}})
	}
	t0 := time.Now()
	c.build()
	b.Logf("chain of %d records built in %s", len(c.events), time.Since(t0).Round(time.Millisecond))
	// The checkpointer signs the chain periodically in gridd; a report then
	// verifies only what was appended since.
	if _, err := c.ledger.Checkpoint(ctx, peopletest.CountyA); err != nil {
		b.Fatal(err)
	}
	a := audit.New(c.pool, c.ledger)
	officer := c.officer.Caller()
	var records, cases int
	b.ResetTimer()
	for b.Loop() {
		rep, err := a.TenureAudit(ctx, officer, audit.Request{ReportID: uuid.NewString(), PersonID: zhang.ID, From: epoch.Add(-time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		records, cases = len(rep.Evidence), rep.Facts.Summary.Cases
	}
	b.ReportMetric(float64(records), "records/report")
	b.ReportMetric(float64(cases), "cases/report")
}
