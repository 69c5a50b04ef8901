package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/accounts"
	"ecogrid/internal/auth"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// eventually polls cond until it holds, failing after a generous deadline
// (a bound on the machine, not a timing assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type cacheFixture struct {
	pool   *pgxpool.Pool
	tokens *auth.Tokens
	authz  *auth.Authorizer
	grid   peopletest.Grid
}

func (f *cacheFixture) session(t *testing.T, m peopletest.Member) (sid, token string) {
	t.Helper()
	sid = uuid.NewString()
	if _, err := f.pool.Exec(context.Background(), `INSERT INTO auth.sessions (id, account_id, person_id, expires_at)
		VALUES ($1, $2, $3, now() + interval '1 day')`, sid, m.AccountID, m.Person.ID); err != nil {
		t.Fatal(err)
	}
	tok, _, err := f.tokens.Issue(m.AccountID, m.Person.ID, sid, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return sid, tok
}

// changed runs change and waits until the cache has applied a notice
// since; the very next call must then see the change.
func (f *cacheFixture) changed(t *testing.T, what string, change func() error) {
	t.Helper()
	before := f.authz.CacheApplied()
	if err := change(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	eventually(t, what+": change notice applied", func() bool { return f.authz.CacheApplied() > before })
}

func withBearer(token string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+token))
}

func (f *cacheFixture) wantRefused(t *testing.T, what, token string) {
	t.Helper()
	if _, err := f.authz.Authenticate(context.Background(), token); structerr.Code(err) != codes.Unauthenticated {
		t.Fatalf("%s: the next call got %v, want Unauthenticated", what, err)
	}
}

// TestCallerCacheRevocation: with the cache on, calls are answered from it
// (no reads), and each kind of change — session revoked, grant ended,
// account disabled, password changed — is refused on the first call after
// its notice; a lost listener connection empties the cache, so a change
// made while it was down is not missed either.
func TestCallerCacheRevocation(t *testing.T) {
	t.Parallel()
	f := &cacheFixture{pool: dbtest.NewPool(t)}
	f.grid = peopletest.InsertGrid(t, f.pool)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	f.tokens = auth.NewTokens(testTokenConfig, auth.NewKeys(priv))
	f.authz = auth.NewAuthorizer(f.tokens, f.pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.authz.RunCache(ctx, f.pool, auth.CacheConfig{TTL: time.Hour}) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "listener connected", f.authz.CacheReady)

	member := func(name string) peopletest.Member {
		return peopletest.AddMember(t, f.pool, f.grid[peopletest.VillageA1a], scope.RoleInspector, name, name)
	}
	call := func(token string) scope.Caller {
		t.Helper()
		c, err := f.authz.Authenticate(context.Background(), token)
		if err != nil {
			t.Fatalf("call refused: %v", err)
		}
		return c
	}

	// Session revoked.
	a := member("cache-a")
	sidA, tokA := f.session(t, a)
	call(tokA)
	if f.authz.CacheLen() != 1 {
		t.Fatalf("cache holds %d entries after one call, want 1", f.authz.CacheLen())
	}
	// Answered from the cache: a change made with the triggers off (no
	// notice) is not seen until a notice for the person comes.
	if _, err := f.pool.Exec(ctx, `SET session_replication_role = replica;
		UPDATE auth.sessions SET revoked_at = now() WHERE id = '`+sidA+`';
		SET session_replication_role = origin`); err != nil {
		t.Fatal(err)
	}
	call(tokA)
	f.changed(t, "notice", func() error {
		_, err := f.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, auth.NotifyChannel, a.Person.ID)
		return err
	})
	f.wantRefused(t, "revoked session, then a notice", tokA)
	// Session revoked the ordinary way: the trigger's notice suffices.
	sidA2, tokA2 := f.session(t, a)
	call(tokA2)
	f.changed(t, "revoke session", func() error { return accounts.RevokeSession(ctx, f.pool, sidA2, "test") })
	f.wantRefused(t, "revoked session", tokA2)

	// Grant ended: the caller's grants are gone, so the policy refuses.
	b := member("cache-b")
	_, tokB := f.session(t, b)
	if c := call(tokB); len(c.Grants) != 1 {
		t.Fatalf("grants %v, want the inspector grant", c.Grants)
	}
	f.changed(t, "end grant", func() error {
		_, err := f.pool.Exec(ctx, `UPDATE people.assignments SET valid_to = now() WHERE id = $1`, b.Assignment.ID)
		return err
	})
	if c := call(tokB); len(c.Grants) != 0 {
		t.Fatalf("grants after the assignment ended: %v, want none", c.Grants)
	}
	if _, err := f.authz.Authorize(withBearer(tokB), ecogridv1.FieldService_SubmitReport_FullMethodName); structerr.Code(err) != codes.PermissionDenied {
		t.Fatalf("call after the grant ended: %v, want PermissionDenied", err)
	}

	// Account disabled, and password changed (which the service pairs with
	// ending the other sessions; the notice alone already drops the entry).
	c := member("cache-c")
	_, tokC := f.session(t, c)
	call(tokC)
	f.changed(t, "disable account", func() error {
		_, err := f.pool.Exec(ctx, `UPDATE auth.accounts SET disabled_at = now() WHERE id = $1`, c.AccountID)
		return err
	})
	f.wantRefused(t, "disabled account", tokC)
	d := member("cache-d")
	sidD, tokD := f.session(t, d)
	call(tokD)
	f.changed(t, "change password", func() error {
		_, err := f.pool.Exec(ctx, `WITH p AS (UPDATE auth.accounts SET password_hash = password_hash || 'x' WHERE id = $1)
			UPDATE auth.sessions SET revoked_at = now() WHERE id = $2`, d.AccountID, sidD)
		return err
	})
	f.wantRefused(t, "password changed", tokD)

	// The listener's connection dies and a session is revoked meanwhile:
	// the reconnect empties the cache, so the revocation is seen.
	e := member("cache-e")
	sidE, tokE := f.session(t, e)
	call(tokE)
	before := f.authz.CacheApplied()
	if _, err := f.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN `+auth.NotifyChannel+`'`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "listener lost", func() bool { return f.authz.CacheApplied() > before })
	if _, err := f.pool.Exec(ctx, `UPDATE auth.sessions SET revoked_at = now() WHERE id = $1`, sidE); err != nil {
		t.Fatal(err)
	}
	f.wantRefused(t, "revoked while the listener was down", tokE)
	eventually(t, "listener back", f.authz.CacheReady)
	f.wantRefused(t, "revoked while the listener was down, after the reconnect", tokE)
	_, tokE2 := f.session(t, e)
	call(tokE2)
	call(tokE2)
	if f.authz.CacheLen() != 1 {
		t.Fatalf("cache holds %d entries after the reconnect and one session's calls, want 1", f.authz.CacheLen())
	}
}
