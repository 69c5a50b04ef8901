package gridd

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/grid"
	"ecogrid/internal/people"
	"ecogrid/internal/structerr"
)

// historyNames gives the ledger's histories the names of the people and
// grid nodes they cite (ledger.Names), from people's and grid's Go API.
type historyNames struct {
	pool *pgxpool.Pool
	grid *grid.Store
}

// PersonName is the person's current name, "" for an id that names no
// person (the system actor, a deleted test fixture).
func (n historyNames) PersonName(ctx context.Context, id string) (string, error) {
	if _, err := uuid.Parse(id); err != nil {
		return "", nil
	}
	p, err := people.GetPerson(ctx, n.pool, id)
	if errors.Is(err, people.ErrPersonNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return p.Name, nil
}

// NodeName is the grid node's name, "" for an unknown code.
func (n historyNames) NodeName(ctx context.Context, code string) (string, error) {
	node, err := n.grid.NodeByCode(ctx, code)
	if structerr.Code(err) == codes.NotFound {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return node.Name, nil
}
