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

	"ecogrid/internal/auth"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
)

// BenchmarkAuthenticate is the per-call cost of the auth interceptor:
// token signature check plus the two database reads (session liveness,
// current grants) that make ended assignments take effect at once.
func BenchmarkAuthenticate(b *testing.B) {
	pool := dbtest.NewPool(b)
	g := peopletest.InsertGrid(b, pool)
	m := peopletest.AddMember(b, pool, g[peopletest.VillageA1a], scope.RoleInspector, "bench", "bench")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	tokens := auth.NewTokens(testTokenConfig, auth.NewKeys(priv))
	sid := uuid.NewString()
	if _, err := pool.Exec(context.Background(), `INSERT INTO auth.sessions (id, account_id, person_id, expires_at)
		VALUES ($1, $2, $3, now() + interval '1 day')`, sid, m.AccountID, m.Person.ID); err != nil {
		b.Fatal(err)
	}
	tok, _, err := tokens.Issue(m.AccountID, m.Person.ID, sid, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	authz := auth.NewAuthorizer(tokens, pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.Run("token_only", func(b *testing.B) {
		for b.Loop() {
			if _, err := tokens.Parse(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("token_session_grants", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			if _, err := authz.Authenticate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The same with the caller cache on (RunCache: LISTEN/NOTIFY
	// invalidation, TTL 15s): the token check and a map lookup.
	b.Run("token_cached", func(b *testing.B) {
		cached := auth.NewAuthorizer(tokens, pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); cached.RunCache(ctx, pool, auth.CacheConfig{}) }()
		defer func() { cancel(); <-done }()
		for !cached.CacheReady() {
			time.Sleep(time.Millisecond)
		}
		for b.Loop() {
			if _, err := cached.Authenticate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
