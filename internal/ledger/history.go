package ledger

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"ecogrid/internal/pagetoken"
	"ecogrid/internal/structerr"
)

// HistoryQuery filters and pages a history read. Pages are keyset pages in
// (county, seq) order — the order in which the acts were recorded within
// each county — so a page never skips or repeats a record while the ledger
// grows.
type HistoryQuery struct {
	// Scope is the grid roots the reader may see (scope.Caller.Roots); a
	// record is visible when its county code or its node code has one of
	// them as prefix. "" sees everything. No roots: nothing is visible.
	Scope []string
	// Actions keeps only these actions; "case.*" matches every action
	// starting with "case.". Empty: all.
	Actions []string
	// From (inclusive) and To (exclusive) bound recorded_at; zero: open.
	From, To time.Time
	// After continues from a page token (see Cursor).
	After Cursor
	// Limit is the page size (default 50, at most 500).
	Limit int
}

// Cursor is the position after the last record of a page.
type Cursor struct {
	CountyCode string
	Seq        int64
}

// Token encodes a cursor as an opaque page token ("" for the start).
func (c Cursor) Token() string {
	if c.CountyCode == "" {
		return ""
	}
	return pagetoken.Encode(c.CountyCode, strconv.FormatInt(c.Seq, 10))
}

// ParseCursor decodes a page token.
func ParseCursor(token string) (Cursor, error) {
	if token == "" {
		return Cursor{}, nil
	}
	parts, err := pagetoken.Decode(token, 2)
	if err != nil {
		return Cursor{}, err
	}
	n, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || !validCountyCode(parts[0]) || n < 0 {
		return Cursor{}, pagetoken.ErrBad
	}
	return Cursor{CountyCode: parts[0], Seq: n}, nil
}

const (
	defaultPageSize = 50
	maxPageSize     = 500
)

// likeEscape escapes LIKE metacharacters.
var likeEscape = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// filter holds the SQL parameters shared by every history query.
type filter struct {
	countyPatterns []string
	nodePatterns   []string
	actions        []string // nil: all
	from, to       *time.Time
	afterCounty    string
	afterSeq       int64
	limit          int
}

func (q HistoryQuery) filter() (filter, error) {
	f := filter{countyPatterns: []string{}, nodePatterns: []string{}, afterCounty: q.After.CountyCode, afterSeq: q.After.Seq}
	if q.After.CountyCode == "" {
		f.afterSeq = -1
	}
	for _, r := range q.Scope {
		if !isDigits(r) {
			return f, structerr.NewInvalidArgument("scope root %.40q is not a grid code", r)
		}
		if len(r) <= 6 {
			f.countyPatterns = append(f.countyPatterns, r+"%")
		} else {
			f.nodePatterns = append(f.nodePatterns, r+"%")
		}
	}
	for _, a := range q.Actions {
		if a == "" || len(a) > maxFieldLen {
			return f, structerr.NewInvalidArgument("action filter %.40q is not an action name", a)
		}
		if p, ok := strings.CutSuffix(a, "*"); ok {
			f.actions = append(f.actions, likeEscape.Replace(p)+"%")
		} else {
			f.actions = append(f.actions, likeEscape.Replace(a))
		}
	}
	if !q.From.IsZero() {
		t := q.From
		f.from = &t
	}
	if !q.To.IsZero() {
		t := q.To
		f.to = &t
	}
	if f.from != nil && f.to != nil && !f.to.After(*f.from) {
		return f, structerr.NewInvalidArgument("the time range ends before it starts")
	}
	f.limit = q.Limit
	if f.limit <= 0 {
		f.limit = defaultPageSize
	}
	f.limit = min(f.limit, maxPageSize)
	return f, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// filterSQL is the WHERE clause common to every history query over
// ledger.records r, with parameters $1..$7 in filter order.
const filterSQL = `(r.county_code LIKE ANY($1) OR r.node_code LIKE ANY($2))
	AND ($3::text[] IS NULL OR r.action LIKE ANY($3))
	AND ($4::timestamptz IS NULL OR r.recorded_at >= $4)
	AND ($5::timestamptz IS NULL OR r.recorded_at < $5)
	AND (r.county_code, r.seq) > ($6, $7)`

func (f filter) args(more ...any) []any {
	return append([]any{f.countyPatterns, f.nodePatterns, f.actions, f.from, f.to, f.afterCounty, f.afterSeq}, more...)
}

// page runs a history query and returns the records and the cursor of the
// next page (zero when this was the last).
func (l *Ledger) page(ctx context.Context, sql string, f filter, args []any) ([]Record, Cursor, error) {
	rows, err := l.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, Cursor{}, err
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		if err := scanRecord(rows, &r); err != nil {
			return nil, Cursor{}, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, Cursor{}, err
	}
	var next Cursor
	if len(out) > f.limit {
		out = out[:f.limit]
		last := out[len(out)-1]
		next = Cursor{CountyCode: last.CountyCode, Seq: last.Seq}
	}
	return out, next, nil
}

// PersonHistory returns every record in which the person acted or was named
// responsible, across every post they held (the person id is for life), in
// the counties the reader may see.
func (l *Ledger) PersonHistory(ctx context.Context, personID string, q HistoryQuery) ([]Record, Cursor, error) {
	id, err := uuid.Parse(personID)
	if err != nil {
		return nil, Cursor{}, structerr.NewInvalidArgument("person id %.40q is not a UUID", personID)
	}
	f, err := q.filter()
	if err != nil {
		return nil, Cursor{}, err
	}
	// Walk the person index in (county, seq) order; the keyset condition is
	// repeated on it so the index range starts at the cursor.
	sql := `SELECT ` + recordColumns + ` FROM ledger.record_people p
		JOIN ledger.records r ON r.county_code = p.county_code AND r.seq = p.seq
		WHERE p.person_id = $8 AND (p.county_code, p.seq) > ($6, $7) AND ` + filterSQL + `
		ORDER BY p.county_code, p.seq LIMIT $9`
	return l.page(ctx, sql, f, f.args(id, f.limit+1))
}

// NodeHistory returns the records concerning a grid node and its whole
// subtree (node code prefix), from the node's county chain.
func (l *Ledger) NodeHistory(ctx context.Context, nodeCode string, q HistoryQuery) ([]Record, Cursor, error) {
	if len(nodeCode) < 6 || !isDigits(nodeCode) || len(nodeCode) > 32 {
		return nil, Cursor{}, structerr.NewInvalidArgument("%.40q is not a grid code", nodeCode)
	}
	f, err := q.filter()
	if err != nil {
		return nil, Cursor{}, err
	}
	sql := `SELECT ` + recordColumns + ` FROM ledger.records r
		WHERE r.county_code = $8 AND r.node_code LIKE $9 AND ` + filterSQL + `
		ORDER BY r.county_code, r.seq LIMIT $10`
	return l.page(ctx, sql, f, f.args(nodeCode[:6], nodeCode+"%", f.limit+1))
}

// SubjectHistory returns the full history of one subject (a case, a report,
// an assignment…), in the counties the reader may see.
func (l *Ledger) SubjectHistory(ctx context.Context, subjectType, subjectID string, q HistoryQuery) ([]Record, Cursor, error) {
	if subjectType == "" || subjectID == "" || len(subjectType) > maxFieldLen || len(subjectID) > maxFieldLen {
		return nil, Cursor{}, structerr.NewInvalidArgument("a subject is named by its type and id")
	}
	f, err := q.filter()
	if err != nil {
		return nil, Cursor{}, err
	}
	sql := `SELECT ` + recordColumns + ` FROM ledger.records r
		WHERE r.subject_type = $8 AND r.subject_id = $9 AND ` + filterSQL + `
		ORDER BY r.county_code, r.seq LIMIT $10`
	return l.page(ctx, sql, f, f.args(subjectType, subjectID, f.limit+1))
}

// ListCheckpoints returns a chain's checkpoints with size > after, in size
// order, at most limit.
func (l *Ledger) ListCheckpoints(ctx context.Context, county string, after int64, limit int) ([]Checkpoint, error) {
	if !validCountyCode(county) {
		return nil, structerr.NewInvalidArgument("a ledger chain is named by a 6-digit county code, not %.40q", county)
	}
	if limit <= 0 {
		limit = defaultPageSize
	}
	stored, err := listCheckpoints(ctx, l.pool, county, after, min(limit, maxPageSize))
	if err != nil {
		return nil, err
	}
	out := make([]Checkpoint, 0, len(stored))
	for _, s := range stored {
		c := s.Checkpoint
		if c.Proof, err = parseProof(s.rawProof); err != nil {
			return nil, fmt.Errorf("ledger: checkpoint %s/%d: %w", county, c.Size, err)
		}
		out = append(out, c)
	}
	return out, nil
}
