package ledger_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/ledger"
)

// TestBulkAppendWritesTheSameChain loads the same entries into two
// databases, one with AppendMany and one with BulkAppend (in batches of
// odd sizes, over an existing head), and finds every row of the records,
// their people and the tree hashes equal, the chain head equal, and the
// bulk-loaded chain verifying with the ledger's own verifier, checkpoints
// and inclusion proofs included.
func TestBulkAppendWritesTheSameChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := time.Date(2024, 3, 1, 8, 0, 0, 0, time.UTC)
	var entries []ledger.Entry
	for i := range 1500 {
		e := entry(i)
		e.At = at.Add(time.Duration(i) * time.Minute)
		switch i % 4 {
		case 0:
			e.ActorID = "" // the system
		case 1:
			e.Responsible = []ledger.Responsible{{PersonID: e.ActorID, Name: "张三", Role: "inspector", NodeCode: e.NodeCode},
				{PersonID: "7f6c0a0e-5a7e-4d51-9c1e-0b8f5d3a9c11", Name: "李四", Role: "grid_chief", NodeCode: "330106001"}}
		}
		entries = append(entries, e)
	}
	load := func(pool *pgxpool.Pool, rest []ledger.Entry, write func(context.Context, pgx.Tx, []ledger.Entry) ([]ledger.Record, error), sizes []int) {
		t.Helper()
		for i := 0; len(rest) > 0; i++ {
			n := min(sizes[i%len(sizes)], len(rest))
			if err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
				_, err := write(ctx, tx, rest[:n])
				return err
			}); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
	}
	keys, _ := testKeys(t)
	plain, bulk := dbtest.NewPool(t), dbtest.NewPool(t)
	load(plain, entries, ledger.AppendMany, []int{1, 200})
	// The first bulk batch continues a chain appended the ordinary way.
	appendOne(t, bulk, entries[0])
	load(bulk, entries[1:], ledger.BulkAppend, []int{37, 1000, 255})

	dump := func(pool *pgxpool.Pool, sql string) []string {
		t.Helper()
		rows, err := pool.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		out, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, sql := range []string{
		`SELECT format('%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', county_code, seq, recorded_at, actor_id, actor_role, actor_node_code,
			action, subject_type, subject_id, node_code, responsible, encode(payload, 'hex'), encode(prev_hash, 'hex'), encode(leaf_hash, 'hex'))
			FROM ledger.records ORDER BY county_code, seq`,
		`SELECT format('%s|%s|%s|%s', person_id, county_code, seq, as_actor) FROM ledger.record_people ORDER BY 1`,
		`SELECT format('%s|%s|%s', county_code, idx, encode(hash, 'hex')) FROM ledger.tree_hashes ORDER BY county_code, idx`,
		`SELECT format('%s|%s|%s|%s', county_code, size, encode(head_hash, 'hex'), encode(frontier, 'hex')) FROM ledger.chains`,
	} {
		a, b := dump(plain, sql), dump(bulk, sql)
		if len(a) == 0 || !slices.Equal(a, b) {
			t.Fatalf("%d rows appended, %d bulk-loaded, not the same rows:\n%s", len(a), len(b), sql)
		}
	}

	l := ledger.New(bulk, keys, ledger.Config{WitnessDir: t.TempDir()}, nil)
	cp, err := l.Checkpoint(ctx, county)
	if err != nil || cp.Size != int64(len(entries)) {
		t.Fatalf("checkpoint of the bulk-loaded chain: %v, size %d", err, cp.Size)
	}
	res, err := l.VerifyChain(ctx, county, []string{cp.Note})
	if err != nil || !res.OK() || res.Records != int64(len(entries)) {
		t.Fatalf("bulk-loaded chain: %v, %+v", err, res)
	}
	proofs, err := l.ProveRecords(ctx, cp, []int64{0, 1, 2, 777, int64(len(entries) - 1)})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range proofs {
		if err := ledger.VerifyRecordProof(p, cp); err != nil {
			t.Errorf("proof of record %d: %v", p.Record.Seq, err)
		}
	}
}
