package people

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
)

// GridNodes resolves grid nodes by reading the grid context's published
// table grid.nodes (current, not retired). It is the default NodeResolver;
// the grid context may supply its own (e.g. from its in-memory index).
type GridNodes struct {
	Q database.Querier
}

// ResolveNode returns the current node with id, or NotFound.
func (g GridNodes) ResolveNode(ctx context.Context, nodeID string) (Node, error) {
	if _, err := NormaliseID("grid node id", nodeID); err != nil {
		return Node{}, err
	}
	var n Node
	err := g.Q.QueryRow(ctx, `SELECT id::text, code, name FROM grid.nodes WHERE id = $1 AND retired_at IS NULL`, nodeID).
		Scan(&n.ID, &n.Code, &n.Name)
	if errors.Is(err, pgx.ErrNoRows) {
		return Node{}, errNodeNotFound(nodeID)
	}
	return n, err
}

// NodeByCode returns the current node with code (gridctl bootstrap).
func (g GridNodes) NodeByCode(ctx context.Context, code string) (Node, error) {
	var n Node
	err := g.Q.QueryRow(ctx, `SELECT id::text, code, name FROM grid.nodes WHERE code = $1 AND retired_at IS NULL`, code).
		Scan(&n.ID, &n.Code, &n.Name)
	if errors.Is(err, pgx.ErrNoRows) {
		return Node{}, errNodeNotFound(code)
	}
	return n, err
}
