package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/accounts"
	"ecogrid/internal/auth"
	"ecogrid/internal/flagenv"
	"ecogrid/internal/people"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// hostileTokens returns tokens that must all be refused, built around a
// live session of m so that only the token itself is wrong.
func hostileTokens(t *testing.T, h *harness, accountID, personID, sessionID string) map[string]string {
	t.Helper()
	now := time.Now()
	claims := auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: testTokenConfig.Issuer, Subject: accountID, Audience: jwt.ClaimStrings{testTokenConfig.Audience},
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute)), IssuedAt: jwt.NewNumericDate(now),
		},
		PersonID: personID, SessionID: sessionID,
	}
	pub := h.priv.Public().(ed25519.PublicKey)
	kid := auth.KeyID(pub)
	sign := func(m jwt.SigningMethod, key any) string {
		tok := jwt.NewWithClaims(m, claims)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)

	issue := func(cfg auth.TokenConfig, keys *auth.Keys, at time.Time) string {
		s, _, err := auth.NewTokens(cfg, keys).Issue(accountID, personID, sessionID, at)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	wrongAud, wrongIss := testTokenConfig, testTokenConfig
	wrongAud.Audience, wrongIss.Issuer = "someone-else", "evil-issuer"
	good := issue(testTokenConfig, auth.NewKeys(h.priv), now)
	parts := strings.Split(good, ".")
	otherParts := strings.Split(issue(testTokenConfig, auth.NewKeys(h.priv), now.Add(-time.Second)), ".")

	return map[string]string{
		"alg none":                    sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType),
		"HS256 keyed with public key": sign(jwt.SigningMethodHS256, []byte(pub)),
		"HS256 keyed with public PEM": sign(jwt.SigningMethodHS256, pubPEM),
		"expired":                     issue(testTokenConfig, auth.NewKeys(h.priv), now.Add(-time.Hour)),
		"issued in the future":        issue(testTokenConfig, auth.NewKeys(h.priv), now.Add(time.Hour)),
		"wrong audience":              issue(wrongAud, auth.NewKeys(h.priv), now),
		"wrong issuer":                issue(wrongIss, auth.NewKeys(h.priv), now),
		"unknown signing key":         issue(testTokenConfig, auth.NewKeys(otherPriv), now),
		"signature of another token":  parts[0] + "." + parts[1] + "." + otherParts[2],
		"signature stripped":          parts[0] + "." + parts[1] + ".",
		"1 MB of dots":                strings.Repeat(".", 1<<20),
		"1 MB payload":                parts[0] + "." + strings.Repeat("A", 1<<20) + "." + parts[2],
		"garbage":                     "not a token",
	}
}

func TestHostileTokensAreUnauthenticated(t *testing.T) {
	h := newHarness(t, accounts.DefaultLimits)
	me := h.callers[scope.RoleCountyOfficer]
	ctx := h.session(t, me)
	var sid string
	if err := h.pool.QueryRow(context.Background(), `SELECT id::text FROM auth.sessions WHERE account_id = $1`, me.AccountID).Scan(&sid); err != nil {
		t.Fatal(err)
	}
	// The live session works with a proper token...
	if _, err := h.auth.WhoAmI(ctx, &ecogridv1.WhoAmIRequest{}); err != nil {
		t.Fatalf("WhoAmI with a good token: %v", err)
	}
	for name, tok := range hostileTokens(t, h, me.AccountID, me.Person.ID, sid) {
		t.Run(name, func(t *testing.T) {
			// ...and each hostile token for the same session does not.
			_, err := h.authz.Authenticate(context.Background(), tok)
			if structerr.Code(err) != codes.Unauthenticated {
				t.Errorf("Authenticate = %v; want Unauthenticated", err)
			}
			_, err = h.auth.WhoAmI(withToken(context.Background(), tok), &ecogridv1.WhoAmIRequest{})
			if status.Code(err) != codes.Unauthenticated {
				t.Errorf("WhoAmI = %v; want Unauthenticated", err)
			}
		})
	}
	for name, ctx := range map[string]context.Context{
		"no header":     context.Background(),
		"empty bearer":  withToken(context.Background(), ""),
		"basic auth":    withRawAuth("Basic dXNlcjpwYXNz"),
		"bearer spaces": withRawAuth("Bearer    "),
	} {
		if _, err := h.auth.WhoAmI(ctx, &ecogridv1.WhoAmIRequest{}); status.Code(err) != codes.Unauthenticated {
			t.Errorf("WhoAmI with %s = %v; want Unauthenticated", name, err)
		}
	}
}

// TestHugeTokenMemoryBounded: refusing a 1 MB token allocates (almost)
// nothing: it is refused on its length before any decoding.
func TestHugeTokenMemoryBounded(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	tokens := auth.NewTokens(testTokenConfig, auth.NewKeys(priv))
	for _, tok := range []string{strings.Repeat(".", 1<<20), "a." + strings.Repeat("b", 1<<20) + ".c"} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		const n = 100
		for range n {
			if _, err := tokens.Parse(tok); structerr.Code(err) != codes.Unauthenticated {
				t.Fatalf("Parse(1 MB) = %v; want Unauthenticated", err)
			}
		}
		runtime.ReadMemStats(&after)
		if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 4<<10 {
			t.Errorf("refusing a %d-byte token allocated %d bytes; want it bounded (< 4 KiB)", len(tok), per)
		}
	}
}

func TestEndedSessionAndAssignmentTakeEffectAtOnce(t *testing.T) {
	h := newHarness(t, accounts.DefaultLimits)
	insp := h.callers[scope.RoleInspector]
	ctx := h.session(t, insp)
	get := func() error {
		_, err := h.people.GetPerson(ctx, &ecogridv1.GetPersonRequest{PersonId: insp.Person.ID})
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("GetPerson(self) before: %v", err)
	}
	// The supervisor ends the inspector's assignment: the very next call
	// with the same, unexpired token has no grants.
	sup := h.session(t, h.callers[scope.RoleTownshipSupervisor])
	if _, err := h.people.EndAssignment(sup, &ecogridv1.EndAssignmentRequest{AssignmentId: insp.Assignment.ID, Reason: "left the job"}); err != nil {
		t.Fatal(err)
	}
	if err := get(); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("GetPerson after the assignment ended = %v; want PermissionDenied", err)
	}
	who, err := h.auth.WhoAmI(ctx, &ecogridv1.WhoAmIRequest{})
	if err != nil || len(who.GetGrants()) != 0 {
		t.Fatalf("WhoAmI after the end = %v, %v; want the person with no grants", who, err)
	}
	// Logging out ends the session: the token stops working at once.
	if _, err := h.auth.Logout(ctx, &ecogridv1.LogoutRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.auth.WhoAmI(ctx, &ecogridv1.WhoAmIRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("WhoAmI after logout = %v; want Unauthenticated", err)
	}
}

func TestKeyFiles(t *testing.T) {
	pemBytes, err := auth.GenerateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := auth.LoadKeys(auth.KeyConfig{PrivateKeyPEM: string(pemBytes)})
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := keys.PublicKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := writeFile(dir+"/pub.pem", pubPEM); err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.LoadKeys(auth.KeyConfig{PublicKeyFiles: []string{dir + "/pub.pem"}})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := auth.NewTokens(testTokenConfig, keys).Issue("7f1d9a34-0a4e-4c9b-9d53-3b1a0a6f2c11", "0c7e3a52-8a51-4d5e-b1a8-6f3e2d1c0b9a", "2b4c6d8e-1f3a-4b5c-8d7e-9f0a1b2c3d4e", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.NewTokens(testTokenConfig, verifier).Parse(tok); err != nil {
		t.Fatalf("verify-only keys refuse a good token: %v", err)
	}
	if _, _, err := auth.NewTokens(testTokenConfig, verifier).Issue("a", "b", "c", time.Now()); err == nil {
		t.Fatal("verify-only keys issued a token")
	}
	if _, err := auth.LoadKeys(auth.KeyConfig{}); err == nil {
		t.Fatal("LoadKeys without any key succeeded")
	}
	if _, err := auth.LoadKeys(auth.KeyConfig{PrivateKeyPEM: string(pubPEM)}); err == nil || strings.Contains(err.Error(), "BEGIN") {
		t.Fatalf("LoadKeys with a public key as private = %v; want an error without key material", err)
	}
}

func TestNewFromConfig(t *testing.T) {
	pemBytes, err := auth.GenerateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := writeFile(dir+"/key.pem", pemBytes); err != nil {
		t.Fatal(err)
	}
	var cfg auth.Config
	fs := flag.NewFlagSet("gridd", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := flagenv.Parse(fs, []string{"-auth-key-file", dir + "/key.pem", "-auth-access-ttl", "10m"}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	authz, svc, err := auth.New(cfg, nil, log)
	if err != nil || authz == nil || svc == nil {
		t.Fatalf("New with a signing key = %v, %v, %v; want interceptors and AuthService", authz, svc, err)
	}
	keys, _ := auth.LoadKeys(auth.KeyConfig{PrivateKeyFile: dir + "/key.pem"})
	pub, _ := keys.PublicKeyPEM()
	if err := writeFile(dir+"/pub.pem", pub); err != nil {
		t.Fatal(err)
	}
	authz, svc, err = auth.New(auth.Config{PublicKeyFiles: dir + "/pub.pem"}, nil, log)
	if err != nil || authz == nil || svc != nil {
		t.Fatalf("New verify-only = %v, %v, %v; want interceptors without AuthService", authz, svc, err)
	}
	if _, _, err := auth.New(auth.Config{}, nil, log); err == nil {
		t.Fatal("New without keys succeeded")
	}
}

// TestCallerGrantsMatchActiveGrants: the grants the interceptor loads
// agree with people.ActiveGrants for current, ended and scheduled
// assignments.
func TestCallerGrantsMatchActiveGrants(t *testing.T) {
	h := newHarness(t, accounts.DefaultLimits)
	ctx := context.Background()
	off := h.callers[scope.RoleCountyOfficer]
	st := people.NewStore(h.pool, nil)
	actor := people.ActorFor(off.Caller(), off.Caller().Grants[0])
	// A second current grant, an ended one and one starting tomorrow.
	if _, _, err := st.StartAssignment(ctx, actor, people.NewAssignment{ID: uuid.NewString(), PersonID: off.Person.ID,
		NodeID: h.grid[peopletest.VillageA2a].ID, NodeCode: peopletest.VillageA2a, Role: scope.RoleGridChief}); err != nil {
		t.Fatal(err)
	}
	ended, _, err := st.StartAssignment(ctx, actor, people.NewAssignment{ID: uuid.NewString(), PersonID: off.Person.ID,
		NodeID: h.grid[peopletest.VillageA1b].ID, NodeCode: peopletest.VillageA1b, Role: scope.RoleGridChief})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.EndAssignment(ctx, actor, ended.ID, "test", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.StartAssignment(ctx, actor, people.NewAssignment{ID: uuid.NewString(), PersonID: off.Person.ID,
		NodeID: h.grid[peopletest.TownshipA2].ID, NodeCode: peopletest.TownshipA2, Role: scope.RoleTownshipSupervisor,
		ValidFrom: time.Now().Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	want, err := people.ActiveGrants(ctx, h.pool, off.Person.ID, time.Now())
	if err != nil || len(want) != 2 {
		t.Fatalf("ActiveGrants = %+v, %v; want 2", want, err)
	}
	tok := strings.TrimPrefix(bearerOf(t, h.session(t, off)), "Bearer ")
	c, err := h.authz.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Grants, want) {
		t.Fatalf("interceptor grants = %+v; ActiveGrants = %+v", c.Grants, want)
	}
}
