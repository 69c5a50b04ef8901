package people

import (
	"context"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/accounts"
	"ecogrid/internal/ledger"
)

// CreateAccount stores a login for a person and records it (without any
// secret). Repeating the same create returns the stored account.
func (s *Store) CreateAccount(ctx context.Context, actor Actor, p Person, a accounts.Account) (accounts.Account, bool, error) {
	var out accounts.Account
	var created bool
	err := s.recordedChange(ctx, actor, func(tx pgx.Tx) ([]ledger.Entry, error) {
		var err error
		by := actor.PersonID
		out, created, err = accounts.Create(ctx, tx, a, by)
		if err != nil || !created {
			return nil, err
		}
		return []ledger.Entry{{
			CountyCode: p.CountyCode, Action: "account.created", SubjectType: "account", SubjectID: out.ID, NodeCode: p.CountyCode,
			Payload: map[string]any{"person_id": p.ID, "person_name": p.Name, "username": out.Username},
		}}, nil
	})
	return out, created, err
}

// UnlockAccount lifts a login lockout and records who lifted it.
func (s *Store) UnlockAccount(ctx context.Context, actor Actor, p Person, a accounts.Account) (bool, error) {
	var was bool
	err := s.recordedChange(ctx, actor, func(tx pgx.Tx) ([]ledger.Entry, error) {
		var err error
		was, err = accounts.Reset(ctx, tx, accounts.AccountKey(a.Username))
		if err != nil || !was {
			return nil, err
		}
		return []ledger.Entry{{
			CountyCode: p.CountyCode, Action: "account.unlocked", SubjectType: "account", SubjectID: a.ID, NodeCode: p.CountyCode,
			Payload: map[string]any{"person_id": p.ID, "username": a.Username},
		}}, nil
	})
	return was, err
}

// ResetPassword replaces an account's password hash, ends all its sessions
// and records who did it (never the password).
func (s *Store) ResetPassword(ctx context.Context, actor Actor, p Person, a accounts.Account, hash string) error {
	return s.recordedChange(ctx, actor, func(tx pgx.Tx) ([]ledger.Entry, error) {
		if err := accounts.SetPasswordHash(ctx, tx, a.ID, hash, true); err != nil {
			return nil, err
		}
		if err := accounts.RevokeSessions(ctx, tx, a.ID, "", "password reset"); err != nil {
			return nil, err
		}
		return []ledger.Entry{{
			CountyCode: p.CountyCode, Action: "account.password_reset", SubjectType: "account", SubjectID: a.ID, NodeCode: p.CountyCode,
			Payload: map[string]any{"person_id": p.ID, "username": a.Username},
		}}, nil
	})
}
