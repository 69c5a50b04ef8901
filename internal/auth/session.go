package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// refreshTokenBytes of randomness per refresh token (256 bits).
const refreshTokenBytes = 32

// maxRefreshTokenLen bounds what Refresh decodes.
const maxRefreshTokenLen = 64

func newRefreshToken() (string, []byte, error) {
	b := make([]byte, refreshTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, hashRefresh(tok), nil
}

// hashRefresh is what is stored: a refresh token has 256 bits of entropy,
// so a plain SHA-256 is enough (no salt or slow hash needed) and a database
// leak does not reveal usable tokens.
func hashRefresh(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

var errBadRefresh = structerr.NewUnauthenticated("the session has ended; log in again")

type session struct {
	ID        string
	AccountID string
	PersonID  string
	ExpiresAt time.Time
}

func createSession(ctx context.Context, tx pgx.Tx, id, accountID, personID string, expires time.Time, addr, device string) error {
	_, err := tx.Exec(ctx, `INSERT INTO auth.sessions (id, account_id, person_id, expires_at, client_addr, user_agent)
		VALUES ($1, $2, $3, $4, $5, $6)`, id, accountID, personID, expires, addr, device)
	return err
}

func issueRefresh(ctx context.Context, tx pgx.Tx, sessionID string, expires time.Time) (string, error) {
	tok, h, err := newRefreshToken()
	if err != nil {
		return "", err
	}
	_, err = tx.Exec(ctx, `INSERT INTO auth.refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)`, h, sessionID, expires)
	return tok, err
}

// RevokeSession ends a session: its access tokens stop working on the next
// call and its refresh tokens are refused.
func RevokeSession(ctx context.Context, q database.Querier, sessionID, reason string) error {
	_, err := q.Exec(ctx, `UPDATE auth.sessions SET revoked_at = now(), revoke_reason = $2
		WHERE id = $1 AND revoked_at IS NULL`, sessionID, reason)
	return err
}

// rotateOutcome is what rotating a refresh token found.
type rotateOutcome int

const (
	rotated rotateOutcome = iota
	rotateRefused
	rotateReused // a used token was presented: the family was revoked
)

// RefreshGrace is how long after a rotation the previous refresh token may
// be presented again without ending the session, provided its successor
// has not been used yet: a phone on a flaky network that sent Refresh and
// lost the answer retries with the token it still holds. The retry gets a
// new successor and the unused one is withdrawn, so a family never has
// more than one live refresh token.
const RefreshGrace = 30 * time.Second

// rotateRefresh consumes a refresh token and returns its live session and
// the new token's expiry-independent hash to chain from. A token that was
// already rotated, outside the grace above or after its successor was
// used, revokes the session (the family): either it was stolen, or a thief
// already used it; in both cases nobody holding this family can be trusted
// any more. The revocation must commit, so the caller commits on
// rotateReused and reports the error afterwards.
func rotateRefresh(ctx context.Context, tx pgx.Tx, tok string, refreshEnd func(session) time.Time) (session, string, rotateOutcome, error) {
	var s session
	var rotatedAt, revokedAt, disabledAt, successorUsed *time.Time
	var tokExpires, now time.Time
	var successor []byte
	h := hashRefresh(tok)
	err := tx.QueryRow(ctx, `SELECT s.id, s.account_id, s.person_id, s.expires_at, s.revoked_at,
			rt.rotated_at, rt.expires_at, rt.replaced_by, nx.rotated_at, a.disabled_at, now()
		FROM auth.refresh_tokens rt
		JOIN auth.sessions s ON s.id = rt.session_id
		JOIN auth.accounts a ON a.id = s.account_id
		LEFT JOIN auth.refresh_tokens nx ON nx.token_hash = rt.replaced_by
		WHERE rt.token_hash = $1
		FOR UPDATE OF rt, s`, h).
		Scan(&s.ID, &s.AccountID, &s.PersonID, &s.ExpiresAt, &revokedAt, &rotatedAt, &tokExpires, &successor, &successorUsed, &disabledAt, &now)
	if errors.Is(err, pgx.ErrNoRows) {
		return session{}, "", rotateRefused, nil
	}
	if err != nil {
		return session{}, "", rotateRefused, err
	}
	if revokedAt != nil || disabledAt != nil {
		return session{}, "", rotateRefused, nil
	}
	if rotatedAt != nil {
		retry := now.Sub(*rotatedAt) <= RefreshGrace && successor != nil && successorUsed == nil
		if !retry {
			if err := RevokeSession(ctx, tx, s.ID, "refresh token reused"); err != nil {
				return session{}, "", rotateRefused, err
			}
			return s, "", rotateReused, nil
		}
		// Withdraw the successor the client never received.
		if _, err := tx.Exec(ctx, `UPDATE auth.refresh_tokens SET rotated_at = now() WHERE token_hash = $1`, successor); err != nil {
			return session{}, "", rotateRefused, err
		}
	}
	if !tokExpires.After(now) || !s.ExpiresAt.After(now) {
		return session{}, "", rotateRefused, nil
	}
	next, nextHash, err := newRefreshToken()
	if err != nil {
		return session{}, "", rotateRefused, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO auth.refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)`,
		nextHash, s.ID, refreshEnd(s)); err != nil {
		return session{}, "", rotateRefused, err
	}
	if _, err := tx.Exec(ctx, `UPDATE auth.refresh_tokens SET rotated_at = coalesce(rotated_at, now()), replaced_by = $2
		WHERE token_hash = $1`, h, nextHash); err != nil {
		return session{}, "", rotateRefused, err
	}
	if _, err := tx.Exec(ctx, `UPDATE auth.sessions SET last_refresh_at = now() WHERE id = $1`, s.ID); err != nil {
		return session{}, "", rotateRefused, err
	}
	return s, next, rotated, nil
}

// loadCaller loads, in one round trip, whether a session is live (not
// revoked, not past its absolute end, its account not disabled) and the
// grants its person holds now. Called on every RPC. The grant predicate is
// the one of people.ActiveGrants (TestCallerGrantsMatchActiveGrants keeps
// them in step); it is repeated here to save a second round trip per call.
func loadCaller(ctx context.Context, q database.Querier, sessionID, accountID, personID string) (bool, []scope.Grant, error) {
	rows, err := q.Query(ctx, `SELECT s.revoked_at IS NULL AND s.expires_at > now() AND a.disabled_at IS NULL,
			g.role, coalesce(g.node_id::text, ''), g.node_code
		FROM auth.sessions s
		JOIN auth.accounts a ON a.id = s.account_id
		LEFT JOIN people.assignments g ON g.person_id = s.person_id
			AND g.valid_from <= now() AND (g.valid_to IS NULL OR g.valid_to > now())
		WHERE s.id = $1 AND s.account_id = $2 AND s.person_id = $3
		ORDER BY length(g.node_code), g.node_code, g.role`, sessionID, accountID, personID)
	if err != nil {
		return false, nil, err
	}
	defer rows.Close()
	live, found := false, false
	var grants []scope.Grant
	for rows.Next() {
		var role, nodeID, code *string
		if err := rows.Scan(&live, &role, &nodeID, &code); err != nil {
			return false, nil, err
		}
		found = true
		if role != nil {
			grants = append(grants, scope.Grant{Role: scope.Role(*role), NodeID: *nodeID, NodeCode: *code})
		}
	}
	if err := rows.Err(); err != nil {
		return false, nil, err
	}
	return found && live, grants, nil
}

// pruneRefreshTokens deletes the token hashes of sessions that ended
// (revoked or expired) more than 30 days ago.
func pruneRefreshTokens(ctx context.Context, q database.Querier) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM auth.refresh_tokens rt USING auth.sessions s
		WHERE s.id = rt.session_id
		  AND (s.revoked_at < now() - interval '30 days' OR s.expires_at < now() - interval '30 days')`)
	return tag.RowsAffected(), err
}
