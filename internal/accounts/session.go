package accounts

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
)

// refreshTokenBytes of randomness per refresh token (256 bits).
const refreshTokenBytes = 32

// MaxRefreshTokenLen bounds what Refresh decodes.
const MaxRefreshTokenLen = 64

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

// Session is one login of an account on one device.
type Session struct {
	ID        string
	AccountID string
	PersonID  string
	ExpiresAt time.Time
}

// CreateSession stores a new session of an account (a login).
func CreateSession(ctx context.Context, tx pgx.Tx, id, accountID, personID string, expires time.Time, addr, device string) error {
	_, err := tx.Exec(ctx, `INSERT INTO auth.sessions (id, account_id, person_id, expires_at, client_addr, user_agent)
		VALUES ($1, $2, $3, $4, $5, $6)`, id, accountID, personID, expires, addr, device)
	return err
}

// IssueRefresh starts a session's refresh-token family and returns the
// token (only its hash is stored).
func IssueRefresh(ctx context.Context, tx pgx.Tx, sessionID string, expires time.Time) (string, error) {
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

// RevokeSessions ends every live session of an account except keep (""
// for none): a password change or reset logs the other devices out.
func RevokeSessions(ctx context.Context, q database.Querier, accountID, keep, reason string) error {
	_, err := q.Exec(ctx, `UPDATE auth.sessions SET revoked_at = now(), revoke_reason = $3
		WHERE account_id = $1 AND revoked_at IS NULL AND id::text <> $2`, accountID, keep, reason)
	return err
}

// RotateOutcome is what rotating a refresh token found.
type RotateOutcome int

// The outcomes of RotateRefresh.
const (
	Rotated       RotateOutcome = iota
	RotateRefused               // unknown, expired, revoked or disabled
	RotateReused                // a used token was presented: the family was revoked
)

// RefreshGrace is how long after a rotation the previous refresh token may
// be presented again without ending the session, provided its successor
// has not been used yet: a phone on a flaky network that sent Refresh and
// lost the answer retries with the token it still holds. The retry gets a
// new successor and the unused one is withdrawn, so a family never has
// more than one live refresh token.
const RefreshGrace = 30 * time.Second

// RotateRefresh consumes a refresh token and returns its live session and
// the new token. A token that was already rotated, outside the grace above
// or after its successor was used, revokes the session (the family):
// either it was stolen, or a thief already used it; in both cases nobody
// holding this family can be trusted any more. The revocation must commit,
// so the caller commits on RotateReused and reports the error afterwards.
func RotateRefresh(ctx context.Context, tx pgx.Tx, tok string, refreshEnd func(Session) time.Time) (Session, string, RotateOutcome, error) {
	var s Session
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
		return Session{}, "", RotateRefused, nil
	}
	if err != nil {
		return Session{}, "", RotateRefused, err
	}
	if revokedAt != nil || disabledAt != nil {
		return Session{}, "", RotateRefused, nil
	}
	if rotatedAt != nil {
		retry := now.Sub(*rotatedAt) <= RefreshGrace && successor != nil && successorUsed == nil
		if !retry {
			if err := RevokeSession(ctx, tx, s.ID, "refresh token reused"); err != nil {
				return Session{}, "", RotateRefused, err
			}
			return s, "", RotateReused, nil
		}
		// Withdraw the successor the client never received.
		if _, err := tx.Exec(ctx, `UPDATE auth.refresh_tokens SET rotated_at = now() WHERE token_hash = $1`, successor); err != nil {
			return Session{}, "", RotateRefused, err
		}
	}
	if !tokExpires.After(now) || !s.ExpiresAt.After(now) {
		return Session{}, "", RotateRefused, nil
	}
	next, nextHash, err := newRefreshToken()
	if err != nil {
		return Session{}, "", RotateRefused, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO auth.refresh_tokens (token_hash, session_id, expires_at) VALUES ($1, $2, $3)`,
		nextHash, s.ID, refreshEnd(s)); err != nil {
		return Session{}, "", RotateRefused, err
	}
	if _, err := tx.Exec(ctx, `UPDATE auth.refresh_tokens SET rotated_at = coalesce(rotated_at, now()), replaced_by = $2
		WHERE token_hash = $1`, h, nextHash); err != nil {
		return Session{}, "", RotateRefused, err
	}
	if _, err := tx.Exec(ctx, `UPDATE auth.sessions SET last_refresh_at = now() WHERE id = $1`, s.ID); err != nil {
		return Session{}, "", RotateRefused, err
	}
	return s, next, Rotated, nil
}

// SessionLive reports whether a session of the account and person is live
// now: not revoked, not past its absolute end, its account not disabled.
// The auth interceptor asks it on every call.
func SessionLive(ctx context.Context, q database.Querier, sessionID, accountID, personID string) (bool, error) {
	var live bool
	err := q.QueryRow(ctx, `SELECT s.revoked_at IS NULL AND s.expires_at > now() AND a.disabled_at IS NULL
		FROM auth.sessions s JOIN auth.accounts a ON a.id = s.account_id
		WHERE s.id = $1 AND s.account_id = $2 AND s.person_id = $3`, sessionID, accountID, personID).Scan(&live)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return live, err
}

// SessionLiveUntil is SessionLive that also tells until when the answer
// holds by the clock alone: the session's absolute end.
func SessionLiveUntil(ctx context.Context, q database.Querier, sessionID, accountID, personID string) (bool, time.Time, error) {
	var live bool
	var until time.Time
	err := q.QueryRow(ctx, `SELECT s.revoked_at IS NULL AND s.expires_at > now() AND a.disabled_at IS NULL, s.expires_at
		FROM auth.sessions s JOIN auth.accounts a ON a.id = s.account_id
		WHERE s.id = $1 AND s.account_id = $2 AND s.person_id = $3`, sessionID, accountID, personID).Scan(&live, &until)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, time.Time{}, nil
	}
	return live, until, err
}

// PruneRefreshTokens deletes the token hashes of sessions that ended
// (revoked or expired) more than 30 days ago.
func PruneRefreshTokens(ctx context.Context, q database.Querier) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM auth.refresh_tokens rt USING auth.sessions s
		WHERE s.id = rt.session_id
		  AND (s.revoked_at < now() - interval '30 days' OR s.expires_at < now() - interval '30 days')`)
	return tag.RowsAffected(), err
}
