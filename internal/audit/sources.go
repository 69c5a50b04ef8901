package audit

import (
	"context"

	"ecogrid/internal/database"
	"ecogrid/internal/grid"
	"ecogrid/internal/people"
)

// The audit's only reads from the contexts beside it, through their Go
// API; everything it asserts comes from the ledger, these supply the
// names a reader needs and the audited person's home county.

// personRecord returns the audited person (NotFound when unknown).
func personRecord(ctx context.Context, q database.Querier, id string) (people.Person, error) {
	return people.GetPerson(ctx, q, id)
}

// personName returns a person's name, "" when unknown.
func personName(ctx context.Context, q database.Querier, id string) string {
	p, err := people.GetPerson(ctx, q, id)
	if err != nil {
		return ""
	}
	return p.Name
}

// nodeName returns the current name of a grid node, "" when unknown.
func nodeName(ctx context.Context, g *grid.Store, code string) string {
	n, err := g.NodeByCode(ctx, code)
	if err != nil {
		return ""
	}
	return n.Name
}
