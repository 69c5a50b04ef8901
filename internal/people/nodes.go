package people

import (
	"context"

	"ecogrid/internal/grid"
)

// resolveNode asks the grid for the current node with id (NotFound for an
// unknown or retired one) and keeps the part an assignment needs.
func resolveNode(ctx context.Context, g *grid.Store, nodeID string) (Node, error) {
	if _, err := NormaliseID("grid node id", nodeID); err != nil {
		return Node{}, err
	}
	r, err := g.ResolveNode(ctx, nodeID)
	if err != nil {
		return Node{}, err
	}
	return Node{ID: r.ID.String(), Code: r.Code, Name: r.Name}, nil
}
