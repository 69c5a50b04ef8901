package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// Append records e as the next record of its county's chain, inside the
// caller's transaction tx: the act and its record commit or fail together.
//
// It locks the county's chain head row (SELECT … FOR UPDATE; the row is
// created on first use) until tx ends, so appends to one chain are
// serialised while other counties proceed in parallel. Call it late in the
// transaction to hold the lock briefly, and append to at most one county
// per transaction (two counties locked in opposite orders would deadlock;
// PostgreSQL would then abort one of them, which maps to Aborted).
//
// Invalid entries return an InvalidArgument error and write nothing.
func Append(ctx context.Context, tx pgx.Tx, e Entry) (Record, error) {
	r, err := newRecord(e, time.Now())
	if err != nil {
		return Record{}, err
	}
	size, head, err := lockHead(ctx, tx, r.CountyCode)
	if err != nil {
		return Record{}, err
	}
	r.Seq = size
	r.PrevHash = head
	r.LeafHash = r.ComputeLeafHash()

	stored, err := tlog.StoredHashesForRecordHash(r.Seq, r.LeafHash, txHashReader(ctx, tx, r.CountyCode))
	if err != nil {
		return Record{}, fmt.Errorf("ledger: computing tree hashes for %s: %w", r.String(), err)
	}
	first := tlog.StoredHashIndex(0, r.Seq)
	idx := make([]int64, len(stored))
	hashes := make([][]byte, len(stored))
	for i := range stored {
		idx[i] = first + int64(i)
		hashes[i] = stored[i][:]
	}
	ids, asActor := r.people()

	var actor any
	if r.ActorID != "" {
		actor = r.ActorID
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO ledger.records (county_code, seq, recorded_at, actor_id, actor_role, actor_node_code,
		action, subject_type, subject_id, node_code, responsible, payload, prev_hash, leaf_hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		r.CountyCode, r.Seq, r.RecordedAt, actor, r.ActorRole, r.ActorNodeCode,
		r.Action, r.SubjectType, r.SubjectID, r.NodeCode, string(responsibleJSON(r.Responsible)), r.Payload,
		r.PrevHash[:], r.LeafHash[:])
	if len(ids) > 0 {
		b.Queue(`INSERT INTO ledger.record_people (person_id, county_code, seq, as_actor)
			SELECT p, $2, $3, a FROM unnest($1::uuid[], $4::boolean[]) AS t(p, a)`,
			ids, r.CountyCode, r.Seq, asActor)
	}
	b.Queue(`INSERT INTO ledger.tree_hashes (county_code, idx, hash) SELECT $1, i, h FROM unnest($2::bigint[], $3::bytea[]) AS t(i, h)`,
		r.CountyCode, idx, hashes)
	b.Queue(`UPDATE ledger.chains SET size = size + 1, head_hash = $2, updated_at = now() WHERE county_code = $1`,
		r.CountyCode, r.LeafHash[:])
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return Record{}, fmt.Errorf("ledger: appending %s: %w", r.String(), err)
	}
	return r, nil
}

// lockHead locks the county's chain head, creating it on first use, and
// returns the chain size and the leaf hash of its last record.
func lockHead(ctx context.Context, tx pgx.Tx, county string) (int64, tlog.Hash, error) {
	const q = `SELECT size, head_hash FROM ledger.chains WHERE county_code = $1 FOR UPDATE`
	var size int64
	var head []byte
	err := tx.QueryRow(ctx, q, county).Scan(&size, &head)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := tx.Exec(ctx, `INSERT INTO ledger.chains (county_code) VALUES ($1) ON CONFLICT DO NOTHING`, county); err != nil {
			return 0, tlog.Hash{}, fmt.Errorf("ledger: creating chain %s: %w", county, err)
		}
		err = tx.QueryRow(ctx, q, county).Scan(&size, &head)
	}
	if err != nil {
		return 0, tlog.Hash{}, fmt.Errorf("ledger: locking chain %s: %w", county, err)
	}
	var h tlog.Hash
	if size > 0 {
		if len(head) != tlog.HashSize {
			return 0, tlog.Hash{}, fmt.Errorf("ledger: chain %s head hash is damaged", county)
		}
		copy(h[:], head)
	}
	return size, h, nil
}

// txHashReader reads stored tree hashes of one chain.
func txHashReader(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, county string) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		return readHashes(ctx, q, county, indexes)
	})
}

func readHashes(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, county string, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	pos := make(map[int64][]int, len(indexes))
	for i, x := range indexes {
		pos[x] = append(pos[x], i)
	}
	rows, err := q.Query(ctx, `SELECT idx, hash FROM ledger.tree_hashes WHERE county_code = $1 AND idx = ANY($2)`, county, indexes)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := 0
	for rows.Next() {
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			return nil, err
		}
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("ledger: stored hash %d of chain %s is damaged", idx, county)
		}
		for _, i := range pos[idx] {
			copy(out[i][:], h)
			found++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if found != len(indexes) {
		return nil, fmt.Errorf("ledger: chain %s is missing stored tree hashes", county)
	}
	return out, nil
}
