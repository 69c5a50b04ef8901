package grid

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/structerr"
)

// This file is the grid's Go API for the other bounded contexts; they use
// it instead of reading grid tables (see the package comment).

// LocateNow is Locate for callers that must not answer from an index that
// has not loaded yet: it returns Unavailable until the first load.
func (ix *Index) LocateNow(lat, lon float64) (Location, bool, error) {
	select {
	case <-ix.Ready():
	default:
		return Location{}, false, structerr.NewUnavailable("the grid index is still loading, retry")
	}
	loc, ok := ix.Locate(lat, lon)
	return loc, ok, nil
}

// CodeAt returns the code of the node at level in the location's path, or
// "" (e.g. the village code of a point, "" when it lies in a township
// with no villages there).
func (l Location) CodeAt(level Level) string {
	for _, r := range l.Path {
		if r.Level == level {
			return r.Code
		}
	}
	return ""
}

// ResolveNode returns the id, code, name and level of a current node, or
// NotFound for an unknown or retired one (people: validate an assignment).
func (s *Store) ResolveNode(ctx context.Context, id string) (Ref, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return Ref{}, structerr.NewInvalidArgument("grid node id %.40q is not a UUID", id)
	}
	var r Ref
	var level int16
	err = s.pool.QueryRow(ctx, `SELECT id, code, name, level FROM grid.nodes WHERE id = $1 AND retired_at IS NULL`, uid).
		Scan(&r.ID, &r.Code, &r.Name, &level)
	if errors.Is(err, pgx.ErrNoRows) {
		return Ref{}, structerr.NewNotFound("grid node %s not found", id)
	}
	r.Level = Level(level)
	return r, err
}

// TasksByCode returns the current tasks of the nodes with the given codes
// (codes without a node, or without tasks, are absent from the map). The
// field context reads patrol rules from it.
func (s *Store) TasksByCode(ctx context.Context, codes []string) (map[string][]Task, error) {
	return TasksByCode(ctx, s.pool, codes)
}

// TasksByCode is Store.TasksByCode on q, so a caller inside a transaction
// reads through it instead of taking a second pooled connection (which can
// deadlock a small pool when every connection is held by such a caller).
func TasksByCode(ctx context.Context, q database.Querier, codes []string) (map[string][]Task, error) {
	rows, err := q.Query(ctx, `SELECT code, tasks FROM grid.nodes WHERE code = ANY($1) AND retired_at IS NULL AND tasks <> '[]'`, codes)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]Task{}
	for rows.Next() {
		var code string
		var tasks []Task
		if err := rows.Scan(&code, &tasks); err != nil {
			return nil, err
		}
		out[code] = tasks
	}
	return out, rows.Err()
}

// CountNodes returns how many nodes the grid holds, current and retired:
// zero means no grid was ever imported (the dev stack and the fault harness
// load the demo county then).
func (s *Store) CountNodes(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM grid.nodes`).Scan(&n)
	return n, err
}
