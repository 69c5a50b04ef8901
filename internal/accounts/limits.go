package accounts

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
)

// Limits throttle password guessing. Counters live in auth.login_limits,
// so the limits hold across replicas and restarts.
//
// An account is locked after AccountFailures failed logins within
// AccountWindow, for AccountLockout (a county officer can lift it sooner);
// an address is blocked after AddrFailures failures within AddrWindow, for
// AddrLockout. Failures are counted per username whether or not it exists,
// so a lockout reveals nothing about which usernames are real.
type Limits struct {
	AccountFailures int
	AccountWindow   time.Duration
	AccountLockout  time.Duration
	AddrFailures    int
	AddrWindow      time.Duration
	AddrLockout     time.Duration
}

// DefaultLimits: 5 failures in 15 minutes lock an account for 30 minutes;
// 30 failures from one address in 10 minutes block it for 15 minutes (a
// township office behind one NAT address must not be locked out by one
// forgetful inspector).
var DefaultLimits = Limits{
	AccountFailures: 5, AccountWindow: 15 * time.Minute, AccountLockout: 30 * time.Minute,
	AddrFailures: 30, AddrWindow: 10 * time.Minute, AddrLockout: 15 * time.Minute,
}

// AccountKey and AddrKey name the counters of a username and an address.
func AccountKey(username string) string { return "account:" + username }

// AddrKey names the counter of a client address.
func AddrKey(addr string) string { return "addr:" + addr }

// LockedUntil returns the latest lock end among keys, or the zero time when
// none is locked now.
func LockedUntil(ctx context.Context, q database.Querier, keys ...string) (time.Time, error) {
	var until *time.Time
	err := q.QueryRow(ctx, `SELECT max(locked_until) FROM auth.login_limits
		WHERE key = ANY($1) AND locked_until > now()`, keys).Scan(&until)
	if err != nil || until == nil {
		return time.Time{}, err
	}
	return *until, nil
}

// RecordFailure counts one failed login against key and locks it when the
// count within window reaches max. It returns the lock end, if locked now
// (a lock that has run out is no lock: the zero time).
func RecordFailure(ctx context.Context, q database.Querier, key string, max int, window, lockout time.Duration) (time.Time, error) {
	var until *time.Time
	err := q.QueryRow(ctx, `
		INSERT INTO auth.login_limits AS l (key, failures, window_start, locked_until, updated_at)
		VALUES ($1, 1, now(), CASE WHEN 1 >= $2 THEN now() + make_interval(secs => $4) END, now())
		ON CONFLICT (key) DO UPDATE SET
			failures     = CASE WHEN l.window_start < now() - make_interval(secs => $3) THEN 1 ELSE l.failures + 1 END,
			window_start = CASE WHEN l.window_start < now() - make_interval(secs => $3) THEN now() ELSE l.window_start END,
			locked_until = CASE
				WHEN (CASE WHEN l.window_start < now() - make_interval(secs => $3) THEN 1 ELSE l.failures + 1 END) >= $2
				THEN now() + make_interval(secs => $4)
				ELSE l.locked_until END,
			updated_at   = now()
		RETURNING CASE WHEN locked_until > now() THEN locked_until END`, key, max, window.Seconds(), lockout.Seconds()).Scan(&until)
	if err != nil || until == nil {
		return time.Time{}, err
	}
	return *until, nil
}

// Reset clears key's counter and lock (a successful login of an account, or
// a county officer lifting a lockout). It reports whether there was a lock
// in force.
func Reset(ctx context.Context, q database.Querier, key string) (wasLocked bool, err error) {
	err = q.QueryRow(ctx, `DELETE FROM auth.login_limits WHERE key = $1 RETURNING coalesce(locked_until > now(), false)`, key).Scan(&wasLocked)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return wasLocked, err
}

// Prune deletes counters untouched for a day whose lock has ended, so the
// table stays the size of the recent failures.
func Prune(ctx context.Context, q database.Querier) (int64, error) {
	tag, err := q.Exec(ctx, `DELETE FROM auth.login_limits
		WHERE updated_at < now() - interval '1 day' AND (locked_until IS NULL OR locked_until < now())`)
	return tag.RowsAffected(), err
}
