package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"

	"ecogrid/internal/structerr"
)

// ScanQuery selects the records of one county chain that Scan streams.
type ScanQuery struct {
	// NodePrefix keeps the records whose node code starts with it (the
	// county code for the whole chain). Required: at least six digits.
	NodePrefix string
	// Actions keeps only these actions ("case.*" matches a prefix).
	Actions []string
	// From (inclusive) and To (exclusive) bound recorded_at; zero: open.
	From, To time.Time
	// AlsoAfterSeq adds the records appended after this sequence number
	// whose recorded_at is before From (and before To): data recorded
	// late about an earlier time. Negative: none.
	AlsoAfterSeq int64
	// UpToSeq keeps only records with seq <= UpToSeq; negative: no bound.
	UpToSeq int64
	// PersonIDsOnly fills Responsible with the person ids alone (no names,
	// roles or nodes) and leaves ActorRole, ActorNodeCode and the hashes
	// empty: a reader that counts (the assessment) reads and decodes only
	// what it uses.
	PersonIDsOnly bool
}

// countingColumns are what a counting Scan reads: no hashes, no actor
// role or node, the actor as its 16 bytes and the responsible people as
// the JSON array of their ids (jsonb_path_query_array: one function call
// a row, where an ARRAY(SELECT … jsonb_array_elements) subquery cost
// PostgreSQL about as much as the rest of the row).
const countingColumns = `r.seq, r.recorded_at, r.actor_id, r.action, r.subject_type, r.subject_id, r.node_code,
	jsonb_path_query_array(r.responsible, '$[*].person_id')::text, r.payload`

// Scan streams the records ScanQuery selects in seq order to fn, in one
// query (no paging): the read of the assessment, which needs a county's
// year of records at once. It never goes beyond one county chain. Each
// record is a new allocation fn may keep.
func (l *Ledger) Scan(ctx context.Context, q ScanQuery, fn func(*Record) error) error {
	if len(q.NodePrefix) < 6 || !isDigits(q.NodePrefix) || len(q.NodePrefix) > 32 {
		return structerr.NewInvalidArgument("%.40q is not a grid code", q.NodePrefix)
	}
	f, err := HistoryQuery{Scope: []string{q.NodePrefix[:6]}, Actions: q.Actions}.filter()
	if err != nil {
		return err
	}
	var from, to *time.Time
	if !q.From.IsZero() {
		from = &q.From
	}
	if !q.To.IsZero() {
		to = &q.To
	}
	cols := recordColumns
	if q.PersonIDsOnly {
		cols = countingColumns
	}
	rows, err := l.pool.Query(ctx, `SELECT `+cols+` FROM ledger.records r
		WHERE r.county_code = $1 AND r.node_code LIKE $2
		  AND ($3::text[] IS NULL OR r.action LIKE ANY($3))
		  AND ($5::timestamptz IS NULL OR r.recorded_at < $5)
		  AND ($4::timestamptz IS NULL OR r.recorded_at >= $4 OR ($6 >= 0 AND r.seq > $6))
		  AND ($7 < 0 OR r.seq <= $7)
		ORDER BY r.seq`,
		q.NodePrefix[:6], likeEscape.Replace(q.NodePrefix)+"%", f.actions, from, to, q.AlsoAfterSeq, q.UpToSeq)
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		actor pgtype.UUID
		ids   []byte
	)
	for rows.Next() {
		r := new(Record)
		if q.PersonIDsOnly {
			if err := rows.Scan(&r.Seq, &r.RecordedAt, &actor, &r.Action, &r.SubjectType, &r.SubjectID, &r.NodeCode, &ids, &r.Payload); err != nil {
				return err
			}
			r.CountyCode, r.RecordedAt = q.NodePrefix[:6], r.RecordedAt.UTC()
			if actor.Valid {
				r.ActorID = uuid.UUID(actor.Bytes).String()
			}
			if r.Responsible, err = personIDs(ids); err != nil {
				return fmt.Errorf("ledger: the responsible people of record %s#%d: %w", r.CountyCode, r.Seq, err)
			}
		} else if err := scanRecord(rows, r); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ChainSize returns the number of records of a county chain (its next
// sequence number); 0 for a chain never written.
func (l *Ledger) ChainSize(ctx context.Context, county string) (int64, error) {
	if !validCountyCode(county) {
		return 0, structerr.NewInvalidArgument("a ledger chain is named by a 6-digit county code, not %.40q", county)
	}
	var n int64
	err := l.pool.QueryRow(ctx, `SELECT COALESCE(max(seq) + 1, 0) FROM ledger.records WHERE county_code = $1`, county).Scan(&n)
	return n, err
}

// personIDs reads a JSON array of person ids, as jsonb prints
// jsonb_path_query_array's ([] or ["id", "id"]), into Responsible with
// only PersonID set; nil for none. The ids are UUIDs (Append refuses
// anything else), so the common case splits on the quotes without a
// decoder; anything else goes through encoding/json.
func personIDs(b []byte) ([]Responsible, error) {
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return decodePersonIDs(b)
	}
	body := bytes.TrimSpace(b[1 : len(b)-1])
	if len(body) == 0 {
		return nil, nil
	}
	n := bytes.Count(body, []byte{','}) + 1
	out := make([]Responsible, 0, n)
	for part := range bytes.SplitSeq(body, []byte{','}) {
		part = bytes.TrimSpace(part)
		if len(part) != 38 || part[0] != '"' || part[37] != '"' || !uuidText(part[1:37]) {
			return decodePersonIDs(b)
		}
		out = append(out, Responsible{PersonID: string(part[1:37])})
	}
	return out, nil
}

func decodePersonIDs(b []byte) ([]Responsible, error) {
	var ids []string
	if err := json.Unmarshal(b, &ids); err != nil {
		return nil, err
	}
	var out []Responsible
	for _, id := range ids {
		out = append(out, Responsible{PersonID: id})
	}
	return out, nil
}

// uuidText reports whether b holds only what a UUID's text is made of.
func uuidText(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') && c != '-' {
			return false
		}
	}
	return true
}
