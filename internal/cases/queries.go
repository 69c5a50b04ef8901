package cases

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"ecogrid/internal/pagetoken"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Get returns a case the caller may see; any other is NotFound.
func (t *Tracker) Get(ctx context.Context, caller scope.Caller, id string) (*Case, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, structerr.NewInvalidArgument("case id %.40q is not a UUID", id)
	}
	c, err := getCase(ctx, t.pool, id, false)
	if err != nil {
		return nil, err
	}
	if !Visible(caller, c) {
		ok, err := t.chiefSees(ctx, caller, c)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, structerr.NewNotFound("case %s not found", id)
		}
	}
	return c, nil
}

// Timeline returns the steps of a case the caller may see, oldest first.
func (t *Tracker) Timeline(ctx context.Context, caller scope.Caller, id string) ([]TimelineEntry, error) {
	if _, err := t.Get(ctx, caller, id); err != nil {
		return nil, err
	}
	return timeline(ctx, t.pool, id)
}

// Filter narrows a case list. Zero values do not filter.
type Filter struct {
	States []State
	// NodeCode keeps cases inside a grid subtree (a township, a village).
	NodeCode string
	// OverdueOnly keeps cases whose rectification deadline has passed.
	OverdueOnly bool
	// EscalatedOnly keeps cases under county supervision.
	EscalatedOnly bool
	// HandlerID keeps the cases dispatched to one person.
	HandlerID string
	// Category keeps the cases of one category code.
	Category string
	// CreatedFrom and CreatedTo keep the cases opened in [from, to).
	CreatedFrom, CreatedTo time.Time
	PageSize               int
	PageToken              string
}

// Page size bounds.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// List returns the cases inside the caller's scope, newest first, one page
// at a time (keyset paging on created_at, id: stable while cases are added).
func (t *Tracker) List(ctx context.Context, caller scope.Caller, f Filter) ([]*Case, string, error) {
	roots := caller.Roots()
	reaches, err := t.chiefReaches(ctx, caller)
	if err != nil {
		return nil, "", err
	}
	if len(roots) == 0 && len(reaches) == 0 {
		return nil, "", nil
	}
	patterns := make([]string, len(roots))
	for i, r := range roots {
		patterns[i] = r + "%"
	}
	size := f.PageSize
	if size <= 0 {
		size = DefaultPageSize
	}
	size = min(size, MaxPageSize)
	var where []string
	args := []any{patterns, nonNil(reaches)}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "$?", fmt.Sprintf("$%d", len(args))))
	}
	where = append(where, "(c.node_code LIKE ANY($1) OR c.reach_codes && $2::text[])")
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, s := range f.States {
			if !validState(s) {
				return nil, "", structerr.NewInvalidArgument("unknown case state %.40q", s)
			}
			states[i] = string(s)
		}
		add("c.state = ANY($?)", states)
	}
	if f.NodeCode != "" {
		if !digits(f.NodeCode, len(f.NodeCode)) {
			return nil, "", structerr.NewInvalidArgument("grid code %.40q is not a code", f.NodeCode)
		}
		add("c.node_code LIKE $?", f.NodeCode+"%")
	}
	if f.OverdueOnly {
		add("c.state IN ('dispatched', 'in_progress') AND c.deadline < $?", t.now())
	}
	if f.EscalatedOnly {
		where = append(where, "c.escalated_at IS NOT NULL")
	}
	if f.HandlerID != "" {
		id, err := uuid.Parse(f.HandlerID)
		if err != nil {
			return nil, "", structerr.NewInvalidArgument("handler id %.40q is not a person id", f.HandlerID)
		}
		add("c.handler_id = $?", id.String())
	}
	if f.Category != "" {
		add("c.category = $?", f.Category)
	}
	if !f.CreatedFrom.IsZero() && !f.CreatedTo.IsZero() && !f.CreatedTo.After(f.CreatedFrom) {
		return nil, "", structerr.NewInvalidArgument("the time range ends before it starts")
	}
	if !f.CreatedFrom.IsZero() {
		add("c.created_at >= $?", f.CreatedFrom)
	}
	if !f.CreatedTo.IsZero() {
		add("c.created_at < $?", f.CreatedTo)
	}
	if f.PageToken != "" {
		at, id, err := decodePageToken(f.PageToken)
		if err != nil {
			return nil, "", err
		}
		args = append(args, at, id)
		where = append(where, fmt.Sprintf("(c.created_at, c.id) < ($%d, $%d)", len(args)-1, len(args)))
	}
	args = append(args, size+1)
	sql := `SELECT ` + caseColumns + ` FROM cases.cases c WHERE ` + strings.Join(where, " AND ") +
		fmt.Sprintf(` ORDER BY c.created_at DESC, c.id DESC LIMIT $%d`, len(args))
	rows, err := t.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", err
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Case, error) { return scanCase(row) })
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(list) > size {
		list = list[:size]
		last := list[size-1]
		next = encodePageToken(last.CreatedAt, last.ID)
	}
	return list, next, nil
}

func validState(s State) bool { return slices.Contains(AllStates, s) }

func encodePageToken(at time.Time, id string) string { return pagetoken.EncodeTimeID(at, id) }

func decodePageToken(tok string) (time.Time, string, error) { return pagetoken.DecodeTimeID(tok) }

// OpenCasesHeldBy lists the open cases a person holds as supervisor or
// handler, oldest first: the handover list shown when their assignment
// ends. It is not scoped to a caller; the people service decides who sees
// a handover list.
func (t *Tracker) OpenCasesHeldBy(ctx context.Context, personID string) ([]*Case, error) {
	rows, err := t.pool.Query(ctx, `
		SELECT `+caseColumns+` FROM cases.cases c
		WHERE c.state NOT IN ('closed', 'rejected') AND (c.supervisor_id = $1 OR c.handler_id = $1)
		ORDER BY c.created_at, c.id`, personID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Case, error) { return scanCase(row) })
}

// StepsFor is the steps caller may take on c now (StepsFor in
// workflow.go), with the case's person bindings read from the database.
func (t *Tracker) StepsFor(ctx context.Context, caller scope.Caller, c *Case) ([]Action, error) {
	b, err := binding(ctx, t.pool, c)
	if err != nil {
		return nil, err
	}
	return StepsFor(caller, c, b), nil
}
