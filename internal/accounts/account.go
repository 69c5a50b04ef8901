// Package accounts owns login credentials: accounts (username and argon2id
// password hash, one per person), their sessions and rotating refresh
// tokens, and the failed-login counters that throttle guessing, kept in
// PostgreSQL so every replica shares them. Its tables live in the "auth"
// schema (accounts, sessions, refresh_tokens, login_limits); this package is
// the only one that names them.
//
// Layer: beside people, above the platform (database, structerr). It
// imports no context: people calls it to create accounts, reset passwords
// and lift lockouts (recording those acts in the ledger), and auth calls it
// to log in, refresh and check sessions. Hashing is in accounts/password.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/structerr"
)

// Account is a person's login.
type Account struct {
	ID                string
	PersonID          string
	Username          string
	PasswordHash      string
	CreatedAt         time.Time
	PasswordChangedAt time.Time
	DisabledAt        *time.Time
}

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{2,63}$`)

// NormaliseUsername lower-cases and trims a username and checks its form:
// 3–64 characters of a-z, 0-9 and . _ @ - (phone numbers and employee codes
// fit), starting with a letter or digit.
func NormaliseUsername(s string) (string, error) {
	u := strings.ToLower(strings.TrimSpace(s))
	if !usernameRE.MatchString(u) {
		return "", structerr.NewInvalidArgument("username %.40q must be 3 to 64 characters of a-z, 0-9, '.', '_', '@' or '-'", s)
	}
	return u, nil
}

const columns = `id, person_id, username, password_hash, created_at, password_changed_at, disabled_at`

func scan(row pgx.Row) (Account, error) {
	var a Account
	err := row.Scan(&a.ID, &a.PersonID, &a.Username, &a.PasswordHash, &a.CreatedAt, &a.PasswordChangedAt, &a.DisabledAt)
	return a, err
}

// ErrNotFound is returned when no account matches.
var ErrNotFound = structerr.NewNotFound("account not found")

// Create stores a new account under the client-generated a.ID. Repeating
// the same create returns the stored account with created=false; the same
// id, username or person with a different account is AlreadyExists.
func Create(ctx context.Context, q database.Querier, a Account, createdBy string) (Account, bool, error) {
	var by any
	if createdBy != "" {
		by = createdBy
	}
	stored, err := scan(q.QueryRow(ctx, `INSERT INTO auth.accounts (id, person_id, username, password_hash, created_by)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING `+columns,
		a.ID, a.PersonID, a.Username, a.PasswordHash, by))
	if err == nil {
		return stored, true, nil
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		stored, err := ByID(ctx, q, a.ID)
		if err != nil {
			return Account{}, false, err
		}
		if stored.PersonID != a.PersonID || stored.Username != a.Username {
			return Account{}, false, structerr.NewAlreadyExists("account id %s is already used by another account", a.ID)
		}
		return stored, false, nil
	case structerr.IsUniqueViolation(err, "accounts_username_key"):
		return Account{}, false, structerr.NewAlreadyExists("username %.40q is taken", a.Username)
	case structerr.IsUniqueViolation(err, "accounts_person_id_key"):
		return Account{}, false, structerr.NewAlreadyExists("this person already has an account")
	}
	return Account{}, false, fmt.Errorf("creating account: %w", err)
}

// ByID returns the account with id.
func ByID(ctx context.Context, q database.Querier, id string) (Account, error) {
	a, err := scan(q.QueryRow(ctx, `SELECT `+columns+` FROM auth.accounts WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, ErrNotFound
	}
	return a, err
}

// ByUsername returns the account with the (normalised) username.
func ByUsername(ctx context.Context, q database.Querier, username string) (Account, error) {
	a, err := scan(q.QueryRow(ctx, `SELECT `+columns+` FROM auth.accounts WHERE username = $1`, username))
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, ErrNotFound
	}
	return a, err
}

// ByPerson returns the person's account.
func ByPerson(ctx context.Context, q database.Querier, personID string) (Account, error) {
	a, err := scan(q.QueryRow(ctx, `SELECT `+columns+` FROM auth.accounts WHERE person_id = $1`, personID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Account{}, ErrNotFound
	}
	return a, err
}

// SetPasswordHash replaces an account's password hash (a password change,
// or a re-hash with stronger parameters after a successful login).
func SetPasswordHash(ctx context.Context, q database.Querier, id, hash string, changed bool) error {
	_, err := q.Exec(ctx, `UPDATE auth.accounts SET password_hash = $2,
		password_changed_at = CASE WHEN $3 THEN now() ELSE password_changed_at END WHERE id = $1`, id, hash, changed)
	return err
}
