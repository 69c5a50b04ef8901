package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"ecogrid/internal/database"
)

// recordColumns is the column list scanRecord reads, in order.
// The table is aliased r.
const recordColumns = `r.county_code, r.seq, r.recorded_at, COALESCE(r.actor_id::text, ''), r.actor_role, r.actor_node_code,
	r.action, r.subject_type, r.subject_id, r.node_code, r.responsible::text, r.payload, r.prev_hash, r.leaf_hash`

// scanRecord reads one row of recordColumns. A row whose hash columns are
// damaged is still returned (with zero hashes) so that verification reports
// it at its sequence number instead of failing the scan.
func scanRecord(rows pgx.Rows, r *Record) error {
	var responsible, prev, leaf []byte
	if err := rows.Scan(&r.CountyCode, &r.Seq, &r.RecordedAt, &r.ActorID, &r.ActorRole, &r.ActorNodeCode,
		&r.Action, &r.SubjectType, &r.SubjectID, &r.NodeCode, &responsible, &r.Payload, &prev, &leaf); err != nil {
		return err
	}
	r.RecordedAt = r.RecordedAt.UTC()
	r.Responsible = nil
	if string(responsible) == "[]" {
		// the common case, without the decoder
	} else if err := json.Unmarshal(responsible, &r.Responsible); err != nil {
		r.Responsible = []Responsible{{Name: "(damaged)"}}
	}
	r.PrevHash, r.LeafHash = tlog.Hash{}, tlog.Hash{}
	copy(r.PrevHash[:], prev)
	copy(r.LeafHash[:], leaf)
	return nil
}

// forEachRecord streams the records of a chain with from <= seq < to in seq
// order (to < 0: to the end).
func forEachRecord(ctx context.Context, db database.Querier, county string, from, to int64, fn func(*Record) error) error {
	if to < 0 {
		to = 1<<63 - 1
	}
	rows, err := db.Query(ctx, `SELECT `+recordColumns+` FROM ledger.records r
		WHERE r.county_code = $1 AND r.seq >= $2 AND r.seq < $3 ORDER BY r.seq`, county, from, to)
	if err != nil {
		return err
	}
	defer rows.Close()
	var r Record
	for rows.Next() {
		if err := scanRecord(rows, &r); err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// chainHead reads a chain's size and head hash without locking it.
func chainHead(ctx context.Context, db database.Querier, county string) (size int64, head tlog.Hash, err error) {
	var h []byte
	err = db.QueryRow(ctx, `SELECT size, head_hash FROM ledger.chains WHERE county_code = $1`, county).Scan(&size, &h)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, head, nil
	}
	copy(head[:], h)
	return size, head, err
}

// Chains lists the county codes that have a ledger chain.
func chains(ctx context.Context, db database.Querier) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT county_code FROM ledger.chains ORDER BY county_code`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// storedCheckpoint is a checkpoint row as stored, before its note is checked.
type storedCheckpoint struct {
	Checkpoint
	rawProof []byte
}

const checkpointColumns = `county_code, size, root, key_name, key_id, note, prev_size, proof, created_at`

func scanCheckpoint(row pgx.Row) (storedCheckpoint, error) {
	var c storedCheckpoint
	var root []byte
	var keyID int64
	if err := row.Scan(&c.CountyCode, &c.Size, &root, &c.KeyName, &keyID, &c.Note, &c.PrevSize, &c.rawProof, &c.CreatedAt); err != nil {
		return c, err
	}
	copy(c.Root[:], root)
	c.KeyID = uint32(keyID)
	c.CreatedAt = c.CreatedAt.UTC()
	return c, nil
}

// listCheckpoints returns a chain's stored checkpoints in size order, with
// after < size, at most limit (0: all).
func listCheckpoints(ctx context.Context, db database.Querier, county string, after int64, limit int) ([]storedCheckpoint, error) {
	q := `SELECT ` + checkpointColumns + ` FROM ledger.checkpoints WHERE county_code = $1 AND size > $2 ORDER BY size`
	args := []any{county, after}
	if limit > 0 {
		q += ` LIMIT $3`
		args = append(args, limit)
	}
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storedCheckpoint
	for rows.Next() {
		c, err := scanCheckpoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// latestCheckpoint returns the chain's largest stored checkpoint.
func latestCheckpoint(ctx context.Context, db database.Querier, county string) (storedCheckpoint, bool, error) {
	c, err := scanCheckpoint(db.QueryRow(ctx, `SELECT `+checkpointColumns+` FROM ledger.checkpoints
		WHERE county_code = $1 ORDER BY size DESC LIMIT 1`, county))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	return c, err == nil, err
}

func insertCheckpoint(ctx context.Context, db database.Querier, c Checkpoint) error {
	_, err := db.Exec(ctx, `INSERT INTO ledger.checkpoints (`+checkpointColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		c.CountyCode, c.Size, c.Root[:], c.KeyName, int64(c.KeyID), c.Note, c.PrevSize, proofBytes(c.Proof), c.CreatedAt)
	if err != nil {
		return fmt.Errorf("ledger: storing checkpoint %s/%d: %w", c.CountyCode, c.Size, err)
	}
	return nil
}

// nowMicro is the current time as PostgreSQL will store it.
func nowMicro() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
