package people

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"ecogrid/internal/accounts"
	"ecogrid/internal/grid"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Admin is what BootstrapAdmin made.
type Admin struct {
	Person       Person
	AccountID    string
	AssignmentID string
}

// BootstrapAdmin creates the first administrator directly in the database
// (gridctl users bootstrap-admin, the dev stack): a person of county, an
// account with the given argon2id hash, and an admin assignment at the
// county node, each recorded in the ledger as done by the system. The
// county's grid node id is used when the grid is already imported; an
// administrator may be made before it. An existing username is
// AlreadyExists.
func BootstrapAdmin(ctx context.Context, pool *pgxpool.Pool, county, name, phone, username, passwordHash string) (Admin, error) {
	if err := CheckCountyCode(county); err != nil {
		return Admin{}, err
	}
	if _, err := accounts.ByUsername(ctx, pool, username); err == nil {
		return Admin{}, structerr.NewAlreadyExists("an account named %.40q already exists", username)
	} else if !errors.Is(err, accounts.ErrNotFound) {
		return Admin{}, err
	}
	nodeID := ""
	if n, err := grid.NewStore(pool, grid.Config{}).NodeByCode(ctx, county); err == nil && n.RetiredAt == nil {
		nodeID = n.ID.String()
	}
	st := NewStore(pool, nil)
	p, _, err := st.CreatePerson(ctx, SystemActor, Person{ID: uuid.NewString(), CountyCode: county, Name: name, Phone: phone})
	if err != nil {
		return Admin{}, err
	}
	a, _, err := st.CreateAccount(ctx, SystemActor, p, accounts.Account{ID: uuid.NewString(), PersonID: p.ID, Username: username, PasswordHash: passwordHash})
	if err != nil {
		return Admin{}, err
	}
	asg, _, err := st.StartAssignment(ctx, SystemActor, NewAssignment{
		ID: uuid.NewString(), PersonID: p.ID, NodeID: nodeID, NodeCode: county, Role: scope.RoleAdmin, Tasks: []string{"system administration"},
	})
	if err != nil {
		return Admin{}, err
	}
	return Admin{Person: p, AccountID: a.ID, AssignmentID: asg.ID}, nil
}
