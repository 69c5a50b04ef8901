package auth_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ecogrid/internal/auth"
	"ecogrid/internal/structerr"
)

// FuzzParseToken feeds arbitrary bearer tokens to the access-token check.
// Every refusal is Unauthenticated with the one fixed message (no hint of
// which check failed), and the only strings accepted are tokens this key
// signed, byte for byte: with strict base64 a signature has one spelling.
// Seeds: tokens signed with the server's key, a foreign key, alg "none",
// HS256 keyed with the public key, and wrong issuer, audience and times.
func FuzzParseToken(f *testing.F) {
	seed := make([]byte, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	keys := auth.NewKeys(priv)
	tokens := auth.NewTokens(auth.DefaultTokenConfig, keys)
	now := time.Now()
	// Fixed ids and key: the fuzzing workers rebuild this setup and must
	// accept the coordinator's seed tokens as their own.
	acct, person, session := "0b8f6a9e-2f61-4c1e-9d3e-5a1f00000001", "0b8f6a9e-2f61-4c1e-9d3e-5a1f00000002", "0b8f6a9e-2f61-4c1e-9d3e-5a1f00000003"
	good, _, err := tokens.Issue(acct, person, session, now)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)

	other := auth.NewTokens(auth.DefaultTokenConfig, auth.NewKeys(ed25519.NewKeyFromSeed(append(seed[:31:31], 1))))
	foreign, _, _ := other.Issue(acct, person, session, now)
	f.Add(foreign)
	head, payload, _ := strings.Cut(good, ".")
	payload, sig, _ := strings.Cut(payload, ".")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + payload + ".")
	f.Add(head + "." + payload + "." + sig[:len(sig)-1] + "A")
	f.Add(head + "." + payload + "." + sig + "=")
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": acct, "sid": session, "pid": person, "iss": "ecogrid-gridd", "aud": "ecogrid", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()})
	if s, err := hs.SignedString([]byte(priv.Public().(ed25519.PublicKey))); err == nil {
		f.Add(s)
	}
	for _, claims := range []jwt.MapClaims{
		{"sub": acct, "iss": "someone-else", "aud": "ecogrid", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()},
		{"sub": acct, "iss": "ecogrid-gridd", "aud": "other", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()},
		{"sub": acct, "iss": "ecogrid-gridd", "aud": "ecogrid", "exp": now.Add(-time.Hour).Unix(), "iat": now.Add(-2 * time.Hour).Unix()},
		{"sub": "not-a-uuid", "iss": "ecogrid-gridd", "aud": "ecogrid", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()},
	} {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
		tok.Header["kid"] = auth.KeyID(priv.Public().(ed25519.PublicKey))
		s, err := tok.SignedString(priv)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s)
	}
	want := ""
	if _, err := tokens.Parse("x.y.z"); err != nil {
		want = err.Error()
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := tokens.Parse(s)
		if err != nil {
			st := status.Convert(structerr.ToStatus(err))
			if st.Code() != codes.Unauthenticated || st.Message() != want {
				t.Fatalf("Parse(%q) refused with %v %q; want Unauthenticated %q", s, st.Code(), st.Message(), want)
			}
			return
		}
		if c.Subject != acct || c.PersonID != person || c.SessionID != session {
			t.Fatalf("Parse accepted claims %+v that this issuer never signed: %q", c, s)
		}
		for _, seg := range strings.Split(s, ".") {
			b, err := base64.RawURLEncoding.Strict().DecodeString(seg)
			if err != nil || base64.RawURLEncoding.EncodeToString(b) != seg {
				t.Fatalf("Parse accepted a token with a non-canonical segment %q: %q", seg, s)
			}
		}
	})
}
