package auth

import (
	"context"
	"time"

	"ecogrid/internal/accounts"
	"ecogrid/internal/database"
	"ecogrid/internal/people"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

var errBadRefresh = structerr.NewUnauthenticated("the session has ended; log in again")

// loadCaller loads whether a session is live (accounts) and the grants its
// person holds now (people.ActiveGrants), so that revoking a session,
// disabling an account or ending an assignment takes effect on the next
// call. Called on every RPC: two short indexed reads, through each owner's
// Go API rather than one join across their tables.
func loadCaller(ctx context.Context, q database.Querier, sessionID, accountID, personID string) (bool, []scope.Grant, error) {
	live, err := accounts.SessionLive(ctx, q, sessionID, accountID, personID)
	if err != nil || !live {
		return false, nil, err
	}
	grants, err := people.ActiveGrants(ctx, q, personID, time.Now())
	if err != nil {
		return false, nil, err
	}
	return true, grants, nil
}
