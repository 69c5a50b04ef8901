package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
)

// Benchmarks (go test -run '^$' -bench . ./internal/ledger). The 10-million
// record history benchmark only runs with ECOGRID_BENCH_LEDGER_ROWS set.

func benchPool(b *testing.B, conns int32) *pgxpool.Pool {
	b.Helper()
	pool, err := database.Open(context.Background(), database.Config{URL: dbtest.NewURL(b), MaxConns: conns})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	return pool
}

func benchEntry(county string, i int64) Entry {
	return Entry{CountyCode: county, ActorID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i%500), ActorRole: "inspector",
		ActorNodeCode: county + "001001", Action: "report.filed", SubjectType: "report", SubjectID: strconv.FormatInt(i, 10),
		NodeCode: county + "001001", Payload: map[string]any{"category": "water", "severity": 2, "i": i}}
}

// ECOGRID_BENCH_ASYNC_COMMIT=1 appends with synchronous_commit off, to
// show how much of an append is the commit's WAL flush (never do this in
// production: an acknowledged act could be lost).
var asyncCommit = os.Getenv("ECOGRID_BENCH_ASYNC_COMMIT") == "1"

func benchAppend(b *testing.B, counties int) {
	pool := benchPool(b, 16)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(8) // 8 writers per core
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			county := fmt.Sprintf("3301%02d", i%int64(counties))
			err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
				if asyncCommit {
					if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
						return err
					}
				}
				_, err := Append(ctx, tx, benchEntry(county, i))
				return err
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "appends/s")
}

// BenchmarkAppendOneChain: concurrent writers on one county chain, each
// append its own transaction (serialised by the chain head lock).
func BenchmarkAppendOneChain(b *testing.B) { benchAppend(b, 1) }

// BenchmarkAppendTenChains: the same writers spread over 10 county chains.
func BenchmarkAppendTenChains(b *testing.B) { benchAppend(b, 10) }

// BenchmarkVerifyVsSHA256 verifies a chain in memory (what VerifyChain and
// the offline verifier do per record: build the leaf, hash it, link,
// Merkle-fold, compare) and, in the same run on the same leaf bytes, just
// SHA-256s them. The ratio metric is verification speed / raw SHA-256
// speed (target >= 0.5).
func BenchmarkVerifyVsSHA256(b *testing.B) {
	const n = 100_000
	recs := syntheticRecords(n)
	leaves := make([][]byte, n)
	var size int64
	for i := range recs {
		leaves[i] = recs[i].LeafData(nil)
		size += int64(len(leaves[i]))
	}
	var shaTime, verifyTime time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		var sink byte
		for _, l := range leaves {
			h := sha256.Sum256(l)
			sink ^= h[0]
		}
		shaTime += time.Since(t0)
		if sink == 42 {
			b.Log("") // keep the loop
		}
		t1 := time.Now()
		v := NewChainVerifier("330106", nil)
		for i := range recs {
			if d := v.AddRecord(&recs[i]); d != nil {
				b.Fatal(d)
			}
		}
		if res := v.Finish(n); !res.OK() {
			b.Fatal(res.Defect)
		}
		verifyTime += time.Since(t1)
	}
	b.ReportMetric(float64(n*b.N)/verifyTime.Seconds(), "verify_records/s")
	b.ReportMetric(float64(n*b.N)/shaTime.Seconds(), "sha256_records/s")
	b.ReportMetric(shaTime.Seconds()/verifyTime.Seconds(), "verify/sha256")
	b.ReportMetric(float64(size)/float64(n), "leaf_bytes")
}

// BenchmarkVerifyExport is the offline verifier end to end, JSON parsing
// included, on a 20,000-record export.
func BenchmarkVerifyExport(b *testing.B) {
	s, keys := fixedKeys(b)
	const n = 20_000
	data := syntheticExport(b, s, syntheticRecords(n), 1024, n)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		res, err := VerifyExport(bytes.NewReader(data), keys, nil)
		if err != nil || !res.OK() {
			b.Fatal(err, res.Defect)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkPersonHistory measures the first page (50 records) of a random
// person's lifetime history, as a county officer reads it, among
// ECOGRID_BENCH_LEDGER_ROWS records (e.g. 10000000) in 20 county chains with
// 1,000 people each. Rows are generated set-based (INSERT … SELECT
// generate_series; hashes are not valid, which history reads do not look
// at). Reports p50/p99 latency.
//
//	ECOGRID_BENCH_LEDGER_ROWS=10000000 go test -run '^$' -bench PersonHistory -benchtime 2000x -timeout 3h ./internal/ledger
//
// With ECOGRID_BENCH_LEDGER_DB=<database URL> the data set is built once in
// that database (created and migrated if missing) and kept, so later runs
// only measure. Before timing, 200 untimed reads warm the caches as a
// running server's would be.
func BenchmarkPersonHistory(b *testing.B) {
	rows, _ := strconv.ParseInt(os.Getenv("ECOGRID_BENCH_LEDGER_ROWS"), 10, 64)
	if rows <= 0 {
		b.Skip("set ECOGRID_BENCH_LEDGER_ROWS (e.g. 10000000) to generate the data set")
	}
	if b.N == 1 {
		// The testing package's probe run: the data set is built only for
		// the measured run (use -benchtime Nx with N > 1).
		return
	}
	const counties, people = 20, 1000
	ctx := context.Background()
	var pool *pgxpool.Pool
	var existing int64
	if url := os.Getenv("ECOGRID_BENCH_LEDGER_DB"); url != "" {
		if err := database.CreateIfMissing(ctx, url); err != nil {
			b.Fatal(err)
		}
		var err error
		if pool, err = database.Open(ctx, database.Config{URL: url, MaxConns: 4}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(pool.Close)
		if _, err := database.Migrate(ctx, pool); err != nil {
			b.Fatal(err)
		}
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM ledger.records`).Scan(&existing); err != nil {
			b.Fatal(err)
		}
		if existing > 0 && existing != rows {
			b.Fatalf("the kept database holds %d records, not %d: drop it or change ECOGRID_BENCH_LEDGER_ROWS", existing, rows)
		}
	} else {
		pool = benchPool(b, 4)
	}
	perCounty := rows / counties
	t0 := time.Now()
	gen := []string{
		`SET session_replication_role = replica`,
		`SET maintenance_work_mem = '512MB'`,
		// Bulk load without the secondary indexes and keys, then build them.
		`DROP INDEX ledger.records_node`,
		`DROP INDEX ledger.records_subject`,
		`ALTER TABLE ledger.record_people DROP CONSTRAINT record_people_pkey`,
		`ALTER TABLE ledger.record_people DROP CONSTRAINT record_people_county_code_seq_fkey`,
		fmt.Sprintf(`INSERT INTO ledger.records (county_code, seq, recorded_at, actor_id, actor_role, actor_node_code,
			action, subject_type, subject_id, node_code, responsible, payload, prev_hash, leaf_hash)
		SELECT c.code, s.seq, timestamptz '2020-01-01' + s.seq * interval '5 minutes',
			md5(c.code || '/' || ((s.seq * 7919) %% %[2]d))::uuid, 'inspector',
			c.code || lpad(((s.seq %% 20) + 1)::text, 3, '0') || '001',
			(ARRAY['report.filed','case.opened','case.dispatched','assignment.started'])[1 + s.seq %% 4],
			'report', md5(c.code || s.seq)::text,
			c.code || lpad(((s.seq %% 20) + 1)::text, 3, '0') || lpad(((s.seq %% 7) + 1)::text, 3, '0'),
			CASE WHEN s.seq %% 3 = 0 THEN jsonb_build_array(jsonb_build_object('person_id', md5(c.code || '/' || ((s.seq * 104729) %% %[2]d))::uuid, 'name', '负责人', 'role', 'grid_chief', 'node_code', c.code)) ELSE '[]' END,
			convert_to('{"category":"water","severity":2}', 'UTF8'), sha256(int8send(s.seq)), sha256(int8send(s.seq + 1))
		FROM (SELECT (330100 + i)::text AS code FROM generate_series(1, %[3]d) i) c
		CROSS JOIN generate_series(0::bigint, %[1]d - 1) s(seq)`, perCounty, people, counties),
		`INSERT INTO ledger.record_people (person_id, county_code, seq, as_actor)
		SELECT actor_id, county_code, seq, true FROM ledger.records
		UNION ALL
		SELECT (r.responsible->0->>'person_id')::uuid, r.county_code, r.seq, false FROM ledger.records r
		WHERE jsonb_array_length(r.responsible) > 0 AND (r.responsible->0->>'person_id')::uuid <> r.actor_id`,
		`ALTER TABLE ledger.record_people ADD PRIMARY KEY (person_id, county_code, seq)`,
		`ALTER TABLE ledger.record_people ADD FOREIGN KEY (county_code, seq) REFERENCES ledger.records (county_code, seq)`,
		`CREATE INDEX records_node ON ledger.records (node_code text_pattern_ops, recorded_at)`,
		`CREATE INDEX records_subject ON ledger.records (subject_type, subject_id, seq)`,
		fmt.Sprintf(`INSERT INTO ledger.chains (county_code, size) SELECT (330100 + i)::text, %d FROM generate_series(1, %d) i`, perCounty, counties),
		`VACUUM ANALYZE ledger.records`,
		`VACUUM ANALYZE ledger.record_people`,
	}
	if existing > 0 {
		gen = nil
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range gen {
		if _, err := conn.Exec(ctx, q); err != nil {
			conn.Release()
			b.Fatalf("%.60s: %v", q, err)
		}
	}
	conn.Release()
	var total int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM ledger.records`).Scan(&total); err != nil {
		b.Fatal(err)
	}
	b.Logf("generated %d records (%d per county, %d counties) in %s", total, perCounty, counties, time.Since(t0).Round(time.Second))

	var plan []string
	planRows, err := pool.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS) SELECT `+recordColumns+` FROM ledger.record_people p
		JOIN ledger.records r ON r.county_code = p.county_code AND r.seq = p.seq
		WHERE p.person_id = md5('330101/7')::uuid AND (p.county_code, p.seq) > ('', -1) AND r.county_code LIKE ANY('{330101%}')
		ORDER BY p.county_code, p.seq LIMIT 51`)
	if err == nil {
		plan, err = pgx.CollectRows(planRows, pgx.RowTo[string])
	}
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range plan {
		b.Log(line)
	}

	l := New(pool, nil, Config{}, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	var person string
	personOf := func(county string, k int) string {
		var id string
		if err := pool.QueryRow(ctx, `SELECT md5($1 || '/' || $2)::uuid::text`, county, strconv.Itoa(k)).Scan(&id); err != nil {
			b.Fatal(err)
		}
		return id
	}
	for range 200 {
		county := strconv.Itoa(330101 + rng.IntN(counties))
		if _, _, err := l.PersonHistory(ctx, personOf(county, rng.IntN(people)), HistoryQuery{Scope: []string{county}, Limit: 50}); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	var got int
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		county := strconv.Itoa(330101 + rng.IntN(counties))
		person = personOf(county, rng.IntN(people))
		b.StartTimer()
		t := time.Now()
		recs, _, err := l.PersonHistory(ctx, person, HistoryQuery{Scope: []string{county}, Limit: 50})
		lat = append(lat, time.Since(t))
		if err != nil {
			b.Fatal(err)
		}
		got += len(recs)
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(got)/float64(b.N), "records/page")
}

// BenchmarkVerifyChainDB is VerifyChain end to end on 200,000 valid
// records read from PostgreSQL (loaded with COPY), stored tree hashes and
// person index included.
func BenchmarkVerifyChainDB(b *testing.B) {
	const n = 200_000
	ctx := context.Background()
	pool := benchPool(b, 4)
	recs := syntheticRecords(n)
	var stored [][]any
	v := NewChainVerifier("330106", nil)
	v.stored = func(idx int64, h tlog.Hash) string {
		stored = append(stored, []any{"330106", idx, append([]byte(nil), h[:]...)})
		return ""
	}
	for i := range recs {
		if d := v.AddRecord(&recs[i]); d != nil {
			b.Fatal(d)
		}
	}
	rows := make([][]any, n)
	var people [][]any
	for i := range recs {
		r := &recs[i]
		rows[i] = []any{r.CountyCode, r.Seq, r.RecordedAt, r.ActorID, r.ActorRole, r.ActorNodeCode, r.Action, r.SubjectType,
			r.SubjectID, r.NodeCode, string(responsibleJSON(r.Responsible)), r.Payload, r.PrevHash[:], r.LeafHash[:]}
		ids, asActor := r.people()
		for j := range ids {
			people = append(people, []any{ids[j], r.CountyCode, r.Seq, asActor[j]})
		}
	}
	copyIn := func(table string, cols []string, data [][]any) {
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"ledger", table}, cols, pgx.CopyFromRows(data)); err != nil {
			b.Fatalf("copy %s: %v", table, err)
		}
	}
	copyIn("records", []string{"county_code", "seq", "recorded_at", "actor_id", "actor_role", "actor_node_code", "action",
		"subject_type", "subject_id", "node_code", "responsible", "payload", "prev_hash", "leaf_hash"}, rows)
	copyIn("record_people", []string{"person_id", "county_code", "seq", "as_actor"}, people)
	copyIn("tree_hashes", []string{"county_code", "idx", "hash"}, stored)
	if _, err := pool.Exec(ctx, `INSERT INTO ledger.chains (county_code, size, head_hash) VALUES ('330106', $1, $2)`, int64(n), recs[n-1].LeafHash[:]); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `VACUUM ANALYZE ledger.records`); err != nil {
		b.Fatal(err)
	}
	l := New(pool, nil, Config{}, nil)
	if os.Getenv("ECOGRID_BENCH_PHASES") != "" {
		t0 := time.Now()
		_ = forEachRecord(ctx, pool, "330106", 0, -1, func(*Record) error { return nil })
		t1 := time.Now()
		tx, _ := pool.Begin(ctx)
		_, _, _ = checkPersonIndex(ctx, tx, "330106")
		_ = tx.Rollback(ctx)
		b.Logf("scan %s, person index check %s", t1.Sub(t0), time.Since(t1))
	}
	b.ResetTimer()
	for range b.N {
		res, err := l.VerifyChain(ctx, "330106", nil)
		if err != nil || !res.OK() || res.Records != n {
			b.Fatal(err, res.Defect)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}
