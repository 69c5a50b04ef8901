package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"ecogrid/internal/audit"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/ledger"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
)

// benchSubject is what the benchmark needs of a built county: kept as
// the note of the kept database, so a later run finds it without
// rebuilding. The signing key is a throwaway benchmark key: the stored
// checkpoints must verify with it.
type benchSubject struct {
	Key     string       `json:"key"`
	Person  string       `json:"person"`
	Officer scope.Caller `json:"officer"`
	Records int64        `json:"records"`
}

// BenchmarkTenureAudit audits an inspector with five years in three posts
// of a county whose chain holds five years of activity of three villages
// (the fixture of TestTenureAuditMatchesSQLAndVerifiesOffline): gathering
// the records, computing the facts, ledgering the generation, signing a
// checkpoint and proving every cited record.
//
// ECOGRID_BENCH_AUDIT_PAD=N adds N records of the county's other 500
// villages (reports and case acts of 1,000 other inspectors, spread over
// the same five years and interleaved with the audited person's) so that
// the chain, its tree and its indexes are large. They are written with
// ledger.BulkAppend — the ledger's own rows and hashes, written with
// COPY — and the whole chain is then verified by the ledger's checkpoint
// (every record's hashes recomputed) before the first audit, so the proofs
// are real. The county is kept in a database of its own
// (dbtest.Kept("audit_pad_N")) and reused by later runs with the same N
// and migrations; drop ecogrid_kept_audit_pad_N_* to rebuild it.
func BenchmarkTenureAudit(b *testing.B) {
	ctx := context.Background()
	pad, _ := strconv.Atoi(os.Getenv("ECOGRID_BENCH_AUDIT_PAD"))
	var c *county
	var subject benchSubject
	if pad > 0 {
		c, subject = paddedCounty(b, pad)
	} else {
		c = newCounty(b)
		subject = benchCounty(c, nil)
	}
	var size int64
	if err := c.pool.QueryRow(ctx, `SELECT size FROM ledger.chains WHERE county_code = $1`, peopletest.CountyA).Scan(&size); err != nil {
		b.Fatal(err)
	}
	b.Logf("chain of %d records (%d built, the rest generation records of earlier runs)", size, subject.Records)
	a := audit.New(c.pool, c.ledger)
	var records, cases int
	b.ResetTimer()
	for b.Loop() {
		rep, err := a.TenureAudit(ctx, subject.Officer, audit.Request{ReportID: uuid.NewString(), PersonID: subject.Person, From: epoch.Add(-time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		records, cases = len(rep.Evidence), rep.Facts.Summary.Cases
	}
	b.ReportMetric(float64(records), "records/report")
	b.ReportMetric(float64(cases), "cases/report")
	b.ReportMetric(float64(size), "chain-records")
}

// benchCounty queues the audited inspector's five years in three posts
// and the activity of their villages, and writes them, merged in time
// order with the records pad yields (nil: none), into the ledger; then
// signs a checkpoint (which verifies every record since the last one),
// as gridd's checkpointer does periodically, so a report then verifies
// only what was appended since.
func benchCounty(c *county, pad func(yield func(ledger.Entry) bool)) benchSubject {
	ctx := context.Background()
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
	t0 := time.Now()
	if pad == nil {
		c.build()
	} else {
		c.bulkBuild(pad)
	}
	if _, err := c.ledger.Checkpoint(ctx, peopletest.CountyA); err != nil {
		c.t.Fatal(err)
	}
	var size int64
	if err := c.pool.QueryRow(ctx, `SELECT size FROM ledger.chains WHERE county_code = $1`, peopletest.CountyA).Scan(&size); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("chain of %d records built, verified and checkpointed in %s", size, time.Since(t0).Round(time.Second))
	return benchSubject{Person: zhang.ID, Officer: c.officer.Caller(), Records: size}
}

// bulkBuild writes the queued events merged in time order with pad's
// (which come in time order) with ledger.BulkAppend, 20,000 a
// transaction.
func (c *county) bulkBuild(pad func(yield func(ledger.Entry) bool)) {
	c.t.Helper()
	ctx := context.Background()
	slices.SortStableFunc(c.events, func(a, b ledger.Entry) int { return a.At.Compare(b.At) })
	batch := make([]ledger.Entry, 0, 20000)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := database.InTx(ctx, c.pool, func(tx pgx.Tx) error {
			_, err := ledger.BulkAppend(ctx, tx, batch)
			return err
		}); err != nil {
			c.t.Fatal(err)
		}
		batch = batch[:0]
	}
	add := func(e ledger.Entry) {
		if batch = append(batch, e); len(batch) == cap(batch) {
			flush()
		}
	}
	events := c.events
	t0, n := time.Now(), 0
	for e := range pad {
		for len(events) > 0 && !events[0].At.After(e.At) {
			add(events[0])
			events = events[1:]
		}
		add(e)
		if n++; n%1000000 == 0 {
			c.t.Logf("%d padding records written in %s", n, time.Since(t0).Round(time.Second))
		}
	}
	for _, e := range events {
		add(e)
	}
	flush()
}

// padding yields n records of the county's other 500 villages over the
// five years: each case a report by the village's inspector and five case
// acts (created, accepted, dispatched with a deadline, rectified, closed)
// naming the inspector responsible.
func padding(n int) func(yield func(ledger.Entry) bool) {
	return func(yield func(ledger.Entry) bool) {
		rng := rand.New(rand.NewPCG(10, uint64(n)))
		var villages, inspectors []string
		for tw := 3; tw <= 27; tw++ {
			for v := 1; v <= 20; v++ {
				villages = append(villages, fmt.Sprintf("%s%03d%03d", peopletest.CountyA, 100+tw, 200+v))
				inspectors = append(inspectors, uuid.NewString(), uuid.NewString())
			}
		}
		span := 5 * 365 * 24 * time.Hour
		steps := []string{"created", "accepted", "dispatched", "rectified", "closed"}
		for i := 0; i < n; {
			k := rng.IntN(len(villages))
			v, who := villages[k], inspectors[2*k+rng.IntN(2)]
			resp := []ledger.Responsible{{PersonID: who, Name: "网格员" + v[9:], Role: "inspector", NodeCode: v}}
			caseID := uuid.NewString()
			deadline := epoch.Add(span * time.Duration(i+3) / time.Duration(n)).Add(7 * 24 * time.Hour).Format(time.RFC3339)
			for s := -1; s < len(steps) && i < n; s++ {
				at := epoch.Add(span * time.Duration(i) / time.Duration(n))
				e := ledger.Entry{CountyCode: peopletest.CountyA, ActorRole: "system", SubjectType: "case", SubjectID: caseID,
					NodeCode: v, Responsible: resp, At: at}
				if s < 0 {
					e.ActorID, e.ActorRole, e.ActorNodeCode, e.Action, e.SubjectType, e.SubjectID = who, "inspector", v, "violation.reported", "report", uuid.NewString()
					e.Payload = map[string]any{"category": "water", "severity": "SEVERITY_NORMAL"}
				} else {
					e.Action = "case." + steps[s]
					e.Payload = map[string]any{"state": steps[s], "deadline": deadline, "severity": "normal"}
				}
				if !yield(e) {
					return
				}
				i++
			}
		}
	}
}

// paddedCounty is the benchmark's county with pad records of padding,
// from its kept database when a previous run built it.
func paddedCounty(b *testing.B, pad int) (*county, benchSubject) {
	name := fmt.Sprintf("audit_pad_%d", pad)
	u, note := dbtest.Kept(b, name)
	pool, err := database.Open(context.Background(), database.Config{URL: u})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	var s benchSubject
	if note != "" {
		if err := json.Unmarshal([]byte(note), &s); err != nil {
			b.Fatalf("kept database %s: %v", name, err)
		}
		c := countyOn(b, pool, s.Key)
		var size int64
		if err := pool.QueryRow(context.Background(), `SELECT size FROM ledger.chains WHERE county_code = $1`, peopletest.CountyA).Scan(&size); err != nil || size < s.Records {
			b.Fatalf("kept database %s has %d records, built with %d: %v", name, size, s.Records, err)
		}
		b.Logf("reusing kept database %s", name)
		return c, s
	}
	skey, _, err := ledger.NewKeyPair("test-ledger")
	if err != nil {
		b.Fatal(err)
	}
	c := countyOn(b, pool, skey)
	c.grid = peopletest.InsertGrid(b, pool)
	c.officer = peopletest.AddMember(b, pool, c.grid[peopletest.CountyA], scope.RoleCountyOfficer, "赵主任", "")
	s = benchCounty(c, padding(pad))
	s.Key = skey
	if _, err := pool.Exec(context.Background(), `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	data, err := json.Marshal(s)
	if err != nil {
		b.Fatal(err)
	}
	dbtest.SetKeptNote(b, name, string(data))
	return c, s
}
