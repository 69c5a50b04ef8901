package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/ledger"
)

func TestAppendManyChainsLikeAppend(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	var want int64
	for _, n := range []int{5, 1, 10, 3} {
		entries := make([]ledger.Entry, n)
		for i := range entries {
			entries[i] = entry(int(want) + i)
			if i%2 == 0 {
				entries[i].Responsible = []ledger.Responsible{{PersonID: entries[i].ActorID, Name: "张三", Role: "inspector", NodeCode: entries[i].NodeCode}}
			}
		}
		var recs []ledger.Record
		err := database.InTx(ctx, f.pool, func(tx pgx.Tx) error {
			var err error
			recs, err = ledger.AppendMany(ctx, tx, entries)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if r.Seq != want+int64(i) {
				t.Fatalf("record %d of a batch has seq %d, want %d", i, r.Seq, want+int64(i))
			}
			if i > 0 && r.PrevHash != recs[i-1].LeafHash {
				t.Fatalf("record %d of a batch is not linked to the one before", i)
			}
		}
		want += int64(n)
		f.checkpoint(t)
	}
	if res := f.verify(t); res.Defect != nil || res.Records != want {
		t.Fatalf("chain of batched appends: %+v, want %d records and no defect", res, want)
	}
	// Entries of two chains in one call are refused before anything is written.
	other := entry(0)
	other.CountyCode = "330107"
	err := database.InTx(ctx, f.pool, func(tx pgx.Tx) error {
		_, err := ledger.AppendMany(ctx, tx, []ledger.Entry{entry(0), other})
		return err
	})
	if err == nil {
		t.Fatal("entries of two chains appended in one call")
	}
}

// TestCommitterGroupsActs files acts (run and staged) from many
// goroutines; one of them fails (a duplicate row, which aborts the transaction it runs in). Every
// other act commits with exactly its own record, the failing one with
// none, and the chain verifies.
func TestCommitterGroupsActs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.pool.Exec(ctx, `CREATE TABLE public.acts (id text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `INSERT INTO public.acts VALUES ('taken')`); err != nil {
		t.Fatal(err)
	}
	c := ledger.NewCommitter(f.pool, ledger.CommitterConfig{MaxBatch: 16})
	const n = 100
	errs := make([]error, n)
	recs := make([][]ledger.Record, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("act-%d", i)
			if i == 37 {
				id = "taken"
			}
			e := entry(i)
			e.SubjectID = id
			if i%2 == 1 {
				// Half the acts are staged: their INSERTs share round trips.
				recs[i], errs[i] = c.DoStaged(ctx, county, ledger.StagedAct{
					Stages: func() []ledger.Stage {
						return []ledger.Stage{{
							Queue: func(b *pgx.Batch) error { b.Queue(`INSERT INTO public.acts VALUES ($1)`, id); return nil },
							Read:  func(br pgx.BatchResults) error { _, err := br.Exec(); return err },
						}}
					},
					Entries: func() ([]ledger.Entry, error) { return []ledger.Entry{e}, nil },
				})
				return
			}
			recs[i], errs[i] = c.Do(ctx, county, func(ctx context.Context, tx pgx.Tx) ([]ledger.Entry, error) {
				if _, err := tx.Exec(ctx, `INSERT INTO public.acts VALUES ($1)`, id); err != nil {
					return nil, err
				}
				return []ledger.Entry{e}, nil
			})
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i := range n {
		if i == 37 {
			if errs[i] == nil {
				t.Fatal("the act inserting a duplicate row succeeded")
			}
			continue
		}
		if errs[i] != nil {
			t.Fatalf("act %d: %v", i, errs[i])
		}
		if len(recs[i]) != 1 || recs[i][0].SubjectID != fmt.Sprintf("act-%d", i) || seen[recs[i][0].Seq] {
			t.Fatalf("act %d got records %+v", i, recs[i])
		}
		seen[recs[i][0].Seq] = true
	}
	var acts, records, orphans int
	if err := f.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM public.acts), (SELECT count(*) FROM ledger.records),
		(SELECT count(*) FROM ledger.records r WHERE NOT EXISTS (SELECT 1 FROM public.acts a WHERE a.id = r.subject_id))`).
		Scan(&acts, &records, &orphans); err != nil {
		t.Fatal(err)
	}
	if acts != n || records != n-1 || orphans != 0 {
		t.Fatalf("%d acts (want %d, the taken one included), %d records (want %d), %d records without their act", acts, n, records, n-1, orphans)
	}
	f.checkpoint(t)
	if res := f.verify(t); res.Defect != nil || res.Records != n-1 {
		t.Fatalf("chain after group commits: %+v", res)
	}

	// An act whose caller has gone is not run; an invalid entry fails its act alone.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Do(cancelled, county, func(context.Context, pgx.Tx) ([]ledger.Entry, error) {
		t.Error("an act of a cancelled caller ran")
		return nil, nil
	}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	if _, err := c.Do(ctx, county, func(context.Context, pgx.Tx) ([]ledger.Entry, error) {
		e := entry(0)
		e.CountyCode = "330107"
		return []ledger.Entry{e}, nil
	}); err == nil {
		t.Fatal("an act recording an entry of another chain was committed")
	}
}

// TestCommitterPipelinesStagedActs files only staged acts of two stages,
// so that batches take the pipelined path (BEGIN with the first stage,
// the head lock with the last, the records with the COMMIT). One act
// inserts a duplicate row and one records an entry of another chain: each
// fails alone, every other act commits with exactly its own record, in
// one order, and the chain verifies.
func TestCommitterPipelinesStagedActs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.pool.Exec(ctx, `CREATE TABLE public.acts (id text PRIMARY KEY, stage int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `INSERT INTO public.acts VALUES ('taken', 1)`); err != nil {
		t.Fatal(err)
	}
	c := ledger.NewCommitter(f.pool, ledger.CommitterConfig{MaxBatch: 16})
	const n = 80
	const dup, foreign = 23, 51
	errs := make([]error, n)
	recs := make([][]ledger.Record, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("act-%d", i)
			second := id + "/2"
			if i == dup {
				second = "taken"
			}
			e := entry(i)
			e.SubjectID = id
			if i == foreign {
				e.CountyCode = "330107"
			}
			var got int
			recs[i], errs[i] = c.DoStaged(ctx, county, ledger.StagedAct{
				Stages: func() []ledger.Stage {
					return []ledger.Stage{{
						Queue: func(b *pgx.Batch) error { b.Queue(`INSERT INTO public.acts VALUES ($1, 1)`, id); return nil },
						Read:  func(br pgx.BatchResults) error { _, err := br.Exec(); return err },
					}, {
						// The second stage reads what the first wrote.
						Queue: func(b *pgx.Batch) error {
							b.Queue(`WITH i AS (INSERT INTO public.acts VALUES ($1, 2)) SELECT count(*)::int FROM public.acts WHERE id = $2`, second, id)
							return nil
						},
						Read: func(br pgx.BatchResults) error { return br.QueryRow().Scan(&got) },
					}}
				},
				Entries: func() ([]ledger.Entry, error) {
					if got != 1 {
						return nil, fmt.Errorf("stage 2 saw %d rows of stage 1", got)
					}
					return []ledger.Entry{e}, nil
				},
			})
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i := range n {
		if i == dup || i == foreign {
			if errs[i] == nil {
				t.Fatalf("act %d (duplicate row or foreign entry) succeeded", i)
			}
			continue
		}
		if errs[i] != nil {
			t.Fatalf("act %d: %v", i, errs[i])
		}
		if len(recs[i]) != 1 || recs[i][0].SubjectID != fmt.Sprintf("act-%d", i) || seen[recs[i][0].Seq] {
			t.Fatalf("act %d got records %+v", i, recs[i])
		}
		seen[recs[i][0].Seq] = true
	}
	var acts, records, orphans int
	if err := f.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM public.acts), (SELECT count(*) FROM ledger.records),
		(SELECT count(*) FROM ledger.records r WHERE NOT EXISTS (SELECT 1 FROM public.acts a WHERE a.id = r.subject_id))`).
		Scan(&acts, &records, &orphans); err != nil {
		t.Fatal(err)
	}
	if acts != 1+2*(n-2) || records != n-2 || orphans != 0 {
		t.Fatalf("%d acts' rows (want %d), %d records (want %d), %d records without their act", acts, 1+2*(n-2), records, n-2, orphans)
	}
	f.checkpoint(t)
	if res := f.verify(t); res.Defect != nil || res.Records != n-2 {
		t.Fatalf("chain after pipelined group commits: %+v", res)
	}
}
