package database_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
)

// A PipeTx commits what its batches wrote when the last one carries the
// COMMIT, and nothing when a statement of any batch fails.
func TestPipeTxCommitsOrWritesNothing(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TABLE pipe_t (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pipe_t`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// Two batches, the second with the commit; the first batch's callback
	// sees its statement's result.
	tx, err := database.BeginPipe(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	b := &pgx.Batch{}
	var got int
	b.Queue(`INSERT INTO pipe_t VALUES (1), (2)`)
	b.Queue(`SELECT count(*) FROM pipe_t`).QueryRow(func(r pgx.Row) error { return r.Scan(&got) })
	if err := tx.Send(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got != 2 {
		t.Fatalf("inside the transaction: %d rows, want 2", got)
	}
	if n := count(); n != 0 {
		t.Fatalf("before the commit another connection sees %d rows", n)
	}
	b = &pgx.Batch{}
	b.Queue(`INSERT INTO pipe_t VALUES (3)`)
	if err := tx.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx) // after the commit: only gives the connection back
	if n := count(); n != 3 {
		t.Fatalf("after the commit: %d rows, want 3", n)
	}

	// A failing statement in the committing batch: nothing is committed,
	// and the connection goes back to the pool usable.
	tx, err = database.BeginPipe(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	b = &pgx.Batch{}
	b.Queue(`INSERT INTO pipe_t VALUES (4)`)
	if err := tx.Send(ctx, b); err != nil {
		t.Fatal(err)
	}
	b = &pgx.Batch{}
	b.Queue(`INSERT INTO pipe_t VALUES (5)`)
	b.Queue(`INSERT INTO pipe_t VALUES (1)`) // duplicate key
	if err := tx.Commit(ctx, b); err == nil {
		t.Fatal("a duplicate key committed")
	}
	tx.Rollback(ctx)
	if n := count(); n != 3 {
		t.Fatalf("after the failed commit: %d rows, want 3", n)
	}
	if err := tx.Send(ctx, &pgx.Batch{}); err == nil {
		t.Fatal("a batch was sent on an ended transaction")
	}

	// Single statements before the first batch begin the transaction too;
	// Rollback undoes them.
	tx, err = database.BeginPipe(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO pipe_t VALUES (6)`); err != nil {
		t.Fatal(err)
	}
	tx.Rollback(ctx)
	tx.Rollback(ctx)
	if n := count(); n != 3 {
		t.Fatalf("after a rollback: %d rows, want 3", n)
	}
	var status string
	if err := pool.QueryRow(ctx, `SELECT 'ok'`).Scan(&status); err != nil || status != "ok" {
		t.Fatalf("pool after the transactions: %q, %v", status, err)
	}
}
