package database

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PipeTx is a transaction on one pooled connection whose BEGIN travels in
// the round trip of its first batch of statements and whose COMMIT in the
// round trip of its last: a transaction of n batches costs n round trips
// instead of n + 2. It is for hot paths whose statements are queued on
// pgx batches with callbacks (pgx.QueuedQuery's Exec, Query, QueryRow),
// such as cased's batch of cases: its COMMIT goes with the ledger append,
// so the chain head is held for one round trip and the WAL flush.
//
// Commit returns nil only when the server answered COMMIT, that is once
// the transaction is durable (synchronous_commit is left as configured).
// Always defer Rollback: it ends a transaction still open and gives the
// connection back; after a successful Commit it only gives it back.
type PipeTx struct {
	conn  *pgxpool.Conn
	begun bool
	done  bool
}

// errPipeDone is returned by a PipeTx used after Commit or Rollback.
var errPipeDone = errors.New("database: the transaction has ended")

// BeginPipe takes a connection from pool for a PipeTx; nothing is sent
// until the first batch.
func BeginPipe(ctx context.Context, pool *pgxpool.Pool) (*PipeTx, error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &PipeTx{conn: c}, nil
}

// Send sends b in the transaction (after BEGIN when it is the first batch)
// and runs its callbacks in order; the first error stops it.
func (t *PipeTx) Send(ctx context.Context, b *pgx.Batch) error {
	return t.send(ctx, b, nil, false)
}

// SendRead is Send for a caller that reads b's results itself: read gets
// them in queue order (from b's first statement), and whatever it leaves
// unread is read, running its callbacks, after it returns nil.
func (t *PipeTx) SendRead(ctx context.Context, b *pgx.Batch, read func(br pgx.BatchResults) error) error {
	return t.send(ctx, b, read, false)
}

// Commit sends b followed by COMMIT in one round trip and runs b's
// callbacks; it returns nil only if every statement succeeded and the
// transaction committed. On an error the transaction is not committed,
// except when the connection broke after COMMIT was sent: as with any
// commit, the outcome is then unknown to the caller. The server runs the
// COMMIT right after b's statements, so a callback of b cannot veto it:
// check what must be checked in an earlier batch.
func (t *PipeTx) Commit(ctx context.Context, b *pgx.Batch) error {
	return t.send(ctx, b, nil, true)
}

func (t *PipeTx) send(ctx context.Context, b *pgx.Batch, read func(br pgx.BatchResults) error, commit bool) error {
	if t.done || t.conn == nil {
		return errPipeDone
	}
	all := &pgx.Batch{}
	begin := !t.begun
	if begin {
		all.Queue("BEGIN")
	}
	if b != nil {
		all.QueuedQueries = append(all.QueuedQueries, b.QueuedQueries...)
	}
	committed := false
	if commit {
		all.Queue("COMMIT").Exec(func(ct pgconn.CommandTag) error {
			if ct.String() != "COMMIT" {
				return fmt.Errorf("database: the transaction was rolled back (%s)", ct.String())
			}
			committed = true
			return nil
		})
	}
	if len(all.QueuedQueries) == 0 {
		return nil
	}
	t.begun = true
	br := t.conn.SendBatch(ctx, all)
	if begin {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
	}
	if read != nil {
		if err := read(br); err != nil {
			br.Close()
			return err
		}
	}
	err := br.Close()
	if committed && err == nil {
		t.done = true
		t.conn.Release()
		t.conn = nil
	}
	return err
}

// begin sends BEGIN alone if no batch has been sent yet.
func (t *PipeTx) begin(ctx context.Context) error {
	if t.done || t.conn == nil {
		return errPipeDone
	}
	if t.begun {
		return nil
	}
	t.begun = true
	_, err := t.conn.Exec(ctx, "BEGIN")
	return err
}

// Exec runs one statement in the transaction (a round trip of its own).
func (t *PipeTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := t.begin(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return t.conn.Exec(ctx, sql, args...)
}

// Query runs one query in the transaction (a round trip of its own).
func (t *PipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.begin(ctx); err != nil {
		return nil, err
	}
	return t.conn.Query(ctx, sql, args...)
}

// QueryRow runs one query in the transaction (a round trip of its own).
func (t *PipeTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := t.begin(ctx); err != nil {
		return errRow{err}
	}
	return t.conn.QueryRow(ctx, sql, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// Rollback ends the transaction if it is still open and gives the
// connection back to the pool; after Commit it only does the latter. It
// is safe to call more than once.
func (t *PipeTx) Rollback(ctx context.Context) {
	if t.conn == nil {
		return
	}
	c := t.conn
	t.conn, t.done = nil, true
	if t.begun && c.Conn().PgConn().TxStatus() != 'I' {
		// A connection left in a transaction is closed by the pool on
		// Release; a ROLLBACK lets it be reused.
		_, _ = c.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	}
	c.Release()
}
