package assessment_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"ecogrid/internal/assessment"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/ledger"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
)

// BenchmarkScorecardsYear scores the 500 villages of a county (25
// townships of 20) for a year through Assessor.Scorecards, reading
// everything from PostgreSQL as the RPC does: the grid, the patrol
// rules, the posts, the year's case and violation records from the
// ledger (20 cases a village, 6 records each: about 60,000 records) and
// the year's patrols (one a week per village: 26,000).
func BenchmarkScorecardsYear(b *testing.B) {
	ctx := context.Background()
	pool, officer, records := scorecardsCounty(b)
	l := ledger.New(pool, nil, ledger.Config{}, nil)
	a := assessment.New(pool, l)
	q := assessment.Query{County: "130123", Period: "2026", Level: assessment.LevelVillage}
	var n int
	var before syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	for b.Loop() {
		cards, _, err := a.Scorecards(ctx, officer, q)
		if err != nil {
			b.Fatal(err)
		}
		n = len(cards)
	}
	if n != 500 {
		b.Fatalf("%d scorecards", n)
	}
	var after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) / time.Duration(b.N)
	// CPU of this process only (PostgreSQL's is not in it): under a loaded
	// machine the wall time above is mostly waiting for a core.
	b.ReportMetric(float64(cpu.Milliseconds()), "gridd-cpu-ms/op")
	b.ReportMetric(float64(records), "records")
	b.ReportMetric(float64(n), "scorecards")
}

// scorecardsCounty is the benchmark's county, kept between runs in the
// database dbtest.Kept("assessment_year") (built once, about a minute;
// drop ecogrid_kept_assessment_year_* to rebuild it): its pool, the
// county officer and the number of ledger records.
func scorecardsCounty(b *testing.B) (*pgxpool.Pool, scope.Caller, int) {
	ctx := context.Background()
	u, note := dbtest.Kept(b, "assessment_year")
	pool, err := database.Open(ctx, database.Config{URL: u})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	var kept struct {
		Officer scope.Caller `json:"officer"`
		Records int          `json:"records"`
	}
	if note != "" {
		if err := json.Unmarshal([]byte(note), &kept); err != nil {
			b.Fatal(err)
		}
		return pool, kept.Officer, kept.Records
	}
	county := peopletest.InsertNode(b, pool, "130123", "测试县", 0)
	officer := peopletest.AddMember(b, pool, county, scope.RoleCountyOfficer, "赵主任", "").Caller()
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))
	rng := rand.New(rand.NewPCG(5, 500))
	var entries []ledger.Entry
	var villages []string
	inspector := map[string]string{}
	for tw := 1; tw <= 25; tw++ {
		township := fmt.Sprintf("130123%03d", 100+tw)
		peopletest.InsertNode(b, pool, township, fmt.Sprintf("第%d镇", tw), float64(tw))
		for v := 1; v <= 20; v++ {
			village := fmt.Sprintf("%s%03d", township, 200+v)
			peopletest.InsertNode(b, pool, village, fmt.Sprintf("第%d镇%d村", tw, v), float64(tw)+float64(v)/100)
			villages = append(villages, village)
			id := uuid.NewString()
			inspector[village] = id
			entries = append(entries, ledger.Entry{CountyCode: "130123", ActorRole: "system", Action: "assignment.started", SubjectType: "assignment",
				SubjectID: uuid.NewString(), NodeCode: village, At: from.AddDate(-1, 0, 0), Payload: map[string]any{"person_id": id,
					"person_name": "网格员" + village[9:], "role": "inspector", "node_code": village, "valid_from": from.AddDate(-1, 0, 0).Format(time.RFC3339)}})
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE grid.nodes SET tasks = '[{"kind":"patrol","count":1,"period":"week"}]' WHERE level = 3`); err != nil {
		b.Fatal(err)
	}
	for _, v := range villages {
		resp := []ledger.Responsible{{PersonID: inspector[v], Name: "网格员", Role: "inspector", NodeCode: v}}
		for c := range 20 {
			at := from.Add(time.Duration(c)*18*24*time.Hour + time.Duration(rng.IntN(48))*time.Hour)
			id := uuid.NewString()
			dl := at.Add(7 * 24 * time.Hour)
			entries = append(entries, ledger.Entry{CountyCode: "130123", ActorID: inspector[v], ActorRole: "inspector", Action: "violation.reported",
				SubjectType: "report", SubjectID: uuid.NewString(), NodeCode: v, At: at, Responsible: resp})
			steps := []string{"opened", "accepted", "dispatched", "rectified", "closed"}
			if rng.IntN(8) == 0 {
				steps = append(steps, "reopened")
			}
			for k, s := range steps {
				late := time.Duration(rng.IntN(240)) * time.Hour
				entries = append(entries, ledger.Entry{CountyCode: "130123", ActorRole: "system", Action: "case." + s, SubjectType: "case",
					SubjectID: id, NodeCode: v, At: at.Add(time.Duration(k)*30*time.Hour + late*time.Duration(k/4)), Responsible: resp,
					Payload: map[string]any{"state": s, "deadline": dl.Format(time.RFC3339)}})
			}
		}
	}
	t0 := time.Now()
	for i := 0; i < len(entries); i += 1000 {
		batch := entries[i:min(i+1000, len(entries))]
		if err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
			for _, e := range batch {
				if _, err := ledger.Append(ctx, tx, e); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	// One plausible patrol a week through each village.
	if _, err := pool.Exec(ctx, `INSERT INTO field.patrols (id, request_hash, inspector_id, county_code, started_at, ended_at, cell_codes)
		SELECT gen_random_uuid(), '\x00', 'p-' || n.code, '130123', w, w + interval '1 hour', ARRAY[n.code]
		FROM grid.nodes n, generate_series($1::timestamptz, $1::timestamptz + interval '51 weeks', interval '1 week') AS w
		WHERE n.level = 3`, from.Add(10*time.Hour)); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d ledger records and 26,000 patrols written in %s", len(entries), time.Since(t0).Round(time.Second))
	kept.Officer, kept.Records = officer, len(entries)
	data, err := json.Marshal(kept)
	if err != nil {
		b.Fatal(err)
	}
	dbtest.SetKeptNote(b, "assessment_year", string(data))
	return pool, officer, len(entries)
}

// BenchmarkScorecardsYearScan is the year's read of case and violation
// records alone (the largest read of BenchmarkScorecardsYear), as
// ledger.Scan does it for counting now and, for the comparison in the same
// run, with the columns it read before (every column but the hashes, the
// person ids by an ARRAY(SELECT … jsonb_array_elements) subquery a row).
func BenchmarkScorecardsYearScan(b *testing.B) {
	ctx := context.Background()
	pool, _, _ := scorecardsCounty(b)
	l := ledger.New(pool, nil, ledger.Config{}, nil)
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))
	q := ledger.ScanQuery{NodePrefix: "130123", Actions: []string{"case.*", "violation.reported"}, From: from.Add(-120 * 24 * time.Hour),
		To: from.AddDate(1, 0, 0), AlsoAfterSeq: -1, UpToSeq: -1, PersonIDsOnly: true}
	var n int
	b.Run("before", func(b *testing.B) {
		for b.Loop() {
			rows, err := pool.Query(ctx, `SELECT r.county_code, r.seq, r.recorded_at, COALESCE(r.actor_id::text, ''), r.actor_role, r.actor_node_code,
				r.action, r.subject_type, r.subject_id, r.node_code,
				ARRAY(SELECT e->>'person_id' FROM jsonb_array_elements(r.responsible) e), r.payload FROM ledger.records r
				WHERE r.county_code = $1 AND r.node_code LIKE $2 AND r.action LIKE ANY($3)
				  AND r.recorded_at < $5 AND r.recorded_at >= $4 ORDER BY r.seq`,
				"130123", "130123%", []string{"case.%", "violation.reported"}, q.From, q.To)
			if err != nil {
				b.Fatal(err)
			}
			n = 0
			var ids []string
			for rows.Next() {
				r := new(ledger.Record)
				if err := rows.Scan(&r.CountyCode, &r.Seq, &r.RecordedAt, &r.ActorID, &r.ActorRole, &r.ActorNodeCode,
					&r.Action, &r.SubjectType, &r.SubjectID, &r.NodeCode, &ids, &r.Payload); err != nil {
					b.Fatal(err)
				}
				r.Responsible = make([]ledger.Responsible, len(ids))
				for i, id := range ids {
					r.Responsible[i].PersonID = id
				}
				n++
			}
			if rows.Err() != nil {
				b.Fatal(rows.Err())
			}
		}
		b.ReportMetric(float64(n), "records")
	})
	b.Run("now", func(b *testing.B) {
		for b.Loop() {
			n = 0
			if err := l.Scan(ctx, q, func(*ledger.Record) error { n++; return nil }); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n), "records")
	})
}
