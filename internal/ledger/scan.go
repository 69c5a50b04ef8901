package ledger

import (
	"context"
	"time"

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
	// roles or nodes) and leaves the hashes zero: a reader that counts
	// (the assessment) skips decoding JSON it does not use.
	PersonIDsOnly bool
}

// countingColumns are recordColumns with the responsible people's ids only.
const countingColumns = `r.county_code, r.seq, r.recorded_at, COALESCE(r.actor_id::text, ''), r.actor_role, r.actor_node_code,
	r.action, r.subject_type, r.subject_id, r.node_code,
	ARRAY(SELECT e->>'person_id' FROM jsonb_array_elements(r.responsible) e), r.payload`

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
	var ids []string
	for rows.Next() {
		r := new(Record)
		if q.PersonIDsOnly {
			if err := rows.Scan(&r.CountyCode, &r.Seq, &r.RecordedAt, &r.ActorID, &r.ActorRole, &r.ActorNodeCode,
				&r.Action, &r.SubjectType, &r.SubjectID, &r.NodeCode, &ids, &r.Payload); err != nil {
				return err
			}
			r.RecordedAt = r.RecordedAt.UTC()
			if len(ids) > 0 {
				r.Responsible = make([]Responsible, len(ids))
				for i, id := range ids {
					r.Responsible[i].PersonID = id
				}
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
