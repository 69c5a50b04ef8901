package people

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// rank orders the roles by authority. Grants never exceed the grantor's:
// nobody but an administrator acts on the account, person record or
// assignments of someone holding a role of equal or higher rank.
var rank = map[scope.Role]int{
	scope.RoleInspector:          1,
	scope.RoleGridChief:          2,
	scope.RoleTownshipSupervisor: 3,
	scope.RoleCountyOfficer:      4,
	scope.RoleAdmin:              5,
}

// checkOutranks refuses an act done under grant g on the person personID
// when the person holds, now or from a scheduled date, a role ranked equal
// to or above g's. An administrator may act on anyone.
func checkOutranks(ctx context.Context, q database.Querier, g scope.Grant, personID string) error {
	if g.Role == scope.RoleAdmin {
		return nil
	}
	hist, err := History(ctx, q, personID)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, a := range hist {
		if a.ValidTo != nil && !a.ValidTo.After(now) {
			continue
		}
		if rank[a.Role] >= rank[g.Role] {
			return structerr.NewPermissionDenied("this person holds the role %s, equal to or above yours (%s): only an administrator may change their account, record or assignments", a.Role, g.Role)
		}
	}
	return nil
}

// lastAdminLock serialises the transactions that end or demote an
// administrator's assignment, so that two administrators ending each other
// at the same moment cannot both pass the check below.
const lastAdminLock = `SELECT pg_advisory_xact_lock(hashtext('people'), hashtext('last-admin'))`

// checkNotLastAdminTx refuses, inside the transaction that ends or demotes
// the administrator's assignment a, when no other person holds the admin
// role: the system would be left with nobody able to appoint county
// officers or administrators. It takes lastAdminLock first and counts at
// the statement's clock, not the transaction's start, so an end committed
// by a concurrent transaction while this one waited is seen.
func checkNotLastAdminTx(ctx context.Context, tx pgx.Tx, a Assignment) error {
	if a.Role != scope.RoleAdmin {
		return nil
	}
	if _, err := tx.Exec(ctx, lastAdminLock); err != nil {
		return err
	}
	var others int
	err := tx.QueryRow(ctx, `SELECT count(DISTINCT person_id) FROM people.assignments
		WHERE role = 'admin' AND person_id <> $1
		  AND valid_from <= clock_timestamp() AND (valid_to IS NULL OR valid_to > clock_timestamp())`, a.PersonID).Scan(&others)
	if err != nil {
		return err
	}
	if others == 0 {
		return structerr.NewFailedPrecondition("this is the last administrator: appoint another administrator before ending or changing this assignment")
	}
	return nil
}
