package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"ecogrid/internal/structerr"
)

// errStop ends a record scan early once a defect is found.
var errStop = errors.New("stop")

// VerifyChain verifies a county's chain in the database from its first
// record: every record's content against its leaf hash, the links between
// records, the chain head, every stored checkpoint (signature by a trusted
// key, root reproduced by the records, consistency with its predecessor),
// the witnessed checkpoint (Config.WitnessDir) and any checkpoint notes the
// caller holds (known), the stored Merkle tree hashes used for proofs, and
// the person index behind history queries. It reports the first bad
// sequence number and why (see Defect); an error means verification itself
// could not run.
//
// It does not trust the database's protections: it is what catches a
// superuser who disabled the triggers.
func (l *Ledger) VerifyChain(ctx context.Context, county string, known []string) (Result, error) {
	if !validCountyCode(county) {
		return Result{}, structerr.NewInvalidArgument("a ledger chain is named by a 6-digit county code, not %.40q", county)
	}
	select {
	case l.verifying <- struct{}{}:
		defer func() { <-l.verifying }()
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	// The witness is read before the snapshot is taken: it is written after
	// its checkpoint commits, so the snapshot holds everything it covers.
	witness, haveWitness, werr := l.readWitness(county)
	tx, err := l.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Result{}, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
	size, head, err := chainHead(ctx, tx, county)
	if err != nil {
		return Result{}, err
	}
	// The person index is checked at the same time on a second connection
	// sharing this snapshot.
	var snapshot string
	if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot()`).Scan(&snapshot); err != nil {
		return Result{}, err
	}
	pctx, cancelIndex := context.WithCancel(ctx)
	defer cancelIndex()
	indexDone := make(chan personIndexResult, 1)
	go func() { indexDone <- l.checkPersonIndexAt(pctx, snapshot, county) }()
	v := NewChainVerifier(county, l.keys.Verifiers())
	cps, err := listCheckpoints(ctx, tx, county, 0, 0)
	if err != nil {
		return Result{}, err
	}
	for _, c := range cps {
		proof, perr := parseProof(c.rawProof)
		cp, oerr := OpenCheckpoint(c.Note, l.keys.Verifiers())
		switch {
		case perr != nil:
			v.addBadCheckpoint(c.Size, perr.Error())
		case oerr == nil && !sameCheckpoint(cp, c.Checkpoint):
			v.addBadCheckpoint(min(c.Size, cp.Size), "its stored size or root was changed after signing")
		default:
			if err := v.AddCheckpoint(c.Note, c.PrevSize, proof); err != nil {
				return Result{}, err
			}
		}
	}
	switch {
	case werr != nil:
		v.addBadCheckpoint(0, "the witnessed checkpoint does not verify: "+werr.Error())
	case haveWitness:
		if err := v.AddCheckpoint(witness.Note, 0, nil); err != nil {
			return Result{}, err
		}
	}
	for _, k := range known {
		if err := v.AddCheckpoint(k, 0, nil); err != nil {
			return Result{}, err
		}
	}

	// The stored tree hashes stream beside the records on a second
	// connection (same snapshot is not needed: they are append-only and we
	// only read below the head).
	trees, err := l.openTreeHashes(ctx, county, tlog.StoredHashIndex(0, size))
	if err != nil {
		return Result{}, err
	}
	defer trees.close()
	v.stored = trees.check

	err = forEachRecord(ctx, tx, county, 0, size, func(r *Record) error {
		if v.AddRecord(r) != nil {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return Result{}, err
	}
	if v.defect == nil && size > 0 && v.n == size && v.prev != head {
		v.fail(size-1, "the chain head does not point at the last record")
	}
	res := v.Finish(size)
	if res.Defect != nil {
		verificationsFailed.Inc()
		return res, nil
	}
	pi := <-indexDone
	if pi.err != nil {
		return Result{}, pi.err
	}
	if pi.why != "" {
		verificationsFailed.Inc()
		res.Defect = &Defect{Seq: pi.seq, Reason: pi.why}
	}
	return res, nil
}

type personIndexResult struct {
	seq int64
	why string
	err error
}

// checkPersonIndexAt runs checkPersonIndex in the exported snapshot.
func (l *Ledger) checkPersonIndexAt(ctx context.Context, snapshot, county string) personIndexResult {
	var out personIndexResult
	out.err = func() error {
		tx, err := l.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only
		if _, err := tx.Exec(ctx, `SET TRANSACTION SNAPSHOT '`+strings.ReplaceAll(snapshot, "'", "")+`'`); err != nil {
			return err
		}
		out.seq, out.why, err = checkPersonIndex(ctx, tx, county)
		return err
	}()
	return out
}

// addBadCheckpoint registers a stored checkpoint known to be bad.
func (v *ChainVerifier) addBadCheckpoint(size int64, why string) {
	v.pending = append(v.pending, &pendingCheckpoint{size: max(size, 0), bad: why})
}

// treeHashCursor streams a chain's stored tree hashes in index order.
type treeHashCursor struct {
	rows pgx.Rows
	done func()
	next int64
}

func (l *Ledger) openTreeHashes(ctx context.Context, county string, limit int64) (*treeHashCursor, error) {
	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, `SELECT idx, hash FROM ledger.tree_hashes WHERE county_code = $1 AND idx < $2 ORDER BY idx`, county, limit)
	if err != nil {
		conn.Release()
		return nil, err
	}
	return &treeHashCursor{rows: rows, done: conn.Release}, nil
}

func (c *treeHashCursor) close() {
	c.rows.Close()
	c.done()
}

// check compares the stored hash at idx (called for consecutive idx from 0)
// with the recomputed one.
func (c *treeHashCursor) check(idx int64, h tlog.Hash) string {
	if !c.rows.Next() {
		return "stored Merkle tree hashes are missing"
	}
	var got int64
	var b []byte
	if err := c.rows.Scan(&got, &b); err != nil {
		return "stored Merkle tree hashes are unreadable"
	}
	if got != idx {
		return "stored Merkle tree hashes are missing"
	}
	if !equalHash(b, h) {
		return "the stored Merkle tree hashes were altered"
	}
	return ""
}

// checkPersonIndex finds the first record whose people are not all in the
// person index, or an index row naming a person the record does not name.
func checkPersonIndex(ctx context.Context, tx pgx.Tx, county string) (int64, string, error) {
	// One pass: +1 for every (record, person, as actor) the records name,
	// -1 for every index row; any group not summing to zero is a mismatch.
	var seq, balance int64
	err := tx.QueryRow(ctx, `
		SELECT seq, sum(n) FROM (
			SELECT seq, actor_id AS person_id, true AS as_actor, 1 AS n
			FROM ledger.records WHERE county_code = $1 AND actor_id IS NOT NULL
			UNION ALL
			SELECT DISTINCT r.seq, (p->>'person_id')::uuid, false, 1
			FROM ledger.records r, jsonb_array_elements(r.responsible) p
			WHERE r.county_code = $1 AND jsonb_array_length(r.responsible) > 0
			  AND (r.actor_id IS NULL OR (p->>'person_id')::uuid <> r.actor_id)
			UNION ALL
			SELECT seq, person_id, as_actor, -1 FROM ledger.record_people WHERE county_code = $1
		) x GROUP BY seq, person_id, as_actor HAVING sum(n) <> 0 ORDER BY seq LIMIT 1`, county).Scan(&seq, &balance)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("ledger: checking the person index: %w", err)
	}
	if balance < 0 {
		return seq, "the person index names someone the record does not", nil
	}
	return seq, "the person index misses someone the record names (their history would hide it)", nil
}
