package people

import (
	"context"

	"ecogrid/internal/grid"
)

// resolveNode asks the grid for the current node named by ref — its UUID,
// or its official code (6 digits for the county, 3 more per level), which
// is what a county office has on paper — (NotFound for an unknown or
// retired one) and keeps the part an assignment needs.
func resolveNode(ctx context.Context, g *grid.Store, ref string) (Node, error) {
	if isDigits(ref) {
		if err := CheckNodeCode(ref); err != nil {
			return Node{}, err
		}
		n, err := g.NodeByCode(ctx, ref)
		if err != nil {
			return Node{}, err
		}
		if n.RetiredAt != nil {
			return Node{}, errNodeNotFound(ref)
		}
		return Node{ID: n.ID.String(), Code: n.Code, Name: n.Name}, nil
	}
	if _, err := NormaliseID("grid node id", ref); err != nil {
		return Node{}, err
	}
	r, err := g.ResolveNode(ctx, ref)
	if err != nil {
		return Node{}, err
	}
	return Node{ID: r.ID.String(), Code: r.Code, Name: r.Name}, nil
}
