package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"ecogrid/internal/structerr"
)

// Access tokens are JWTs signed with Ed25519 ("EdDSA"), and only EdDSA is
// accepted. Why not HS256: every service that checks tokens (gridd, cased,
// any future replica) would need the secret that also mints them, so a leak
// from the least-guarded process lets anyone forge any caller. With Ed25519
// only the process that logs people in holds the private key; the others
// get the public key. Ed25519 has no parameters to get wrong, small keys and
// signatures, and is fast to verify. The accepted algorithm list is fixed
// (jwt.WithValidMethods), so "none" and HS256-signed-with-the-public-key
// (key confusion) tokens are rejected before any key is used.
const signingAlg = "EdDSA"

// MaxTokenLen bounds what is parsed: a real token is ~400 bytes; anything
// longer than this is refused before base64 or JSON decoding, so a hostile
// megabyte header costs no more than its length check.
const MaxTokenLen = 2048

// Claims are what an access token says: who (account, person) and which
// session. Roles and scope are deliberately absent: they are read from the
// assignments on every call, so ending an assignment takes effect at once.
type Claims struct {
	jwt.RegisteredClaims
	PersonID  string `json:"pid"`
	SessionID string `json:"sid"`
}

// KeyConfig says where the token keys come from. A process with only public
// keys can check tokens but not issue them (cased).
type KeyConfig struct {
	PrivateKeyPEM  string   // PKCS#8 Ed25519 private key text; wins over PrivateKeyFile
	PrivateKeyFile string   // file holding it (mode 0600)
	PublicKeyFiles []string // further PKIX public keys trusted for verification (other issuers, retired keys)
}

// Environment variables read by KeyConfigFromEnv.
const (
	EnvKey        = "ECOGRID_AUTH_KEY"         // private key PEM text
	EnvKeyFile    = "ECOGRID_AUTH_KEY_FILE"    // private key PEM file
	EnvPublicKeys = "ECOGRID_AUTH_PUBLIC_KEYS" // comma-separated public key PEM files
)

// KeyConfigFromEnv reads ECOGRID_AUTH_KEY, ECOGRID_AUTH_KEY_FILE and
// ECOGRID_AUTH_PUBLIC_KEYS.
func KeyConfigFromEnv() KeyConfig {
	cfg := KeyConfig{PrivateKeyPEM: os.Getenv(EnvKey), PrivateKeyFile: os.Getenv(EnvKeyFile)}
	for _, f := range strings.Split(os.Getenv(EnvPublicKeys), ",") {
		if f = strings.TrimSpace(f); f != "" {
			cfg.PublicKeyFiles = append(cfg.PublicKeyFiles, f)
		}
	}
	return cfg
}

// Keys sign and verify access tokens.
type Keys struct {
	private ed25519.PrivateKey // nil in verify-only processes
	kid     string
	public  map[string]ed25519.PublicKey // by key id
}

// KeyID names a public key in token headers: the first 12 bytes of its
// SHA-256, base64url. It lets keys be rotated without a flag day.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(h[:12])
}

// LoadKeys loads the private key (if any) and the trusted public keys.
// Errors never contain key material.
func LoadKeys(cfg KeyConfig) (*Keys, error) {
	k := &Keys{public: map[string]ed25519.PublicKey{}}
	text := cfg.PrivateKeyPEM
	if text == "" && cfg.PrivateKeyFile != "" {
		b, err := os.ReadFile(cfg.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("reading the token signing key file: %w", err)
		}
		text = string(b)
	}
	if text != "" {
		priv, err := ParsePrivateKey([]byte(text))
		if err != nil {
			return nil, err
		}
		k.private = priv
		pub := priv.Public().(ed25519.PublicKey)
		k.kid = KeyID(pub)
		k.public[k.kid] = pub
	}
	for _, f := range cfg.PublicKeyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading token public key %s: %w", f, err)
		}
		pub, err := ParsePublicKey(b)
		if err != nil {
			return nil, fmt.Errorf("token public key %s: %w", f, err)
		}
		k.public[KeyID(pub)] = pub
	}
	if len(k.public) == 0 {
		return nil, fmt.Errorf("no token key configured: set %s (make one with 'gridctl users keygen') or %s", EnvKeyFile, EnvPublicKeys)
	}
	return k, nil
}

// NewKeys returns keys around an in-memory private key (tests, dev stack).
func NewKeys(priv ed25519.PrivateKey, trusted ...ed25519.PublicKey) *Keys {
	pub := priv.Public().(ed25519.PublicKey)
	k := &Keys{private: priv, kid: KeyID(pub), public: map[string]ed25519.PublicKey{KeyID(pub): pub}}
	for _, p := range trusted {
		k.public[KeyID(p)] = p
	}
	return k
}

// GenerateKeyPEM makes a new Ed25519 private key as PKCS#8 PEM.
func GenerateKeyPEM() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// PublicKeyPEM returns the PKIX PEM of the signing key's public half, for
// verify-only processes.
func (k *Keys) PublicKeyPEM() ([]byte, error) {
	if k.private == nil {
		return nil, errors.New("no private key loaded")
	}
	der, err := x509.MarshalPKIXPublicKey(k.private.Public())
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivateKey reads a PKCS#8 Ed25519 private key in PEM.
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errors.New("the token signing key is not a PEM \"PRIVATE KEY\" block (make one with 'gridctl users keygen')")
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, errors.New("the token signing key is not a valid PKCS#8 key")
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("the token signing key is not an Ed25519 key")
	}
	return priv, nil
}

// ParsePublicKey reads a PKIX Ed25519 public key in PEM.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM \"PUBLIC KEY\" block")
	}
	key, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, errors.New("not a valid PKIX public key")
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, errors.New("not an Ed25519 public key")
	}
	return pub, nil
}

// TokenConfig sets the claims every access token carries and checks.
type TokenConfig struct {
	Issuer    string
	Audience  string
	AccessTTL time.Duration
	Leeway    time.Duration // clock difference tolerated on exp/iat/nbf
}

// DefaultTokenConfig: 15-minute access tokens for the "ecogrid" audience.
var DefaultTokenConfig = TokenConfig{Issuer: "ecogrid-gridd", Audience: "ecogrid", AccessTTL: 15 * time.Minute, Leeway: 30 * time.Second}

// Tokens issues and checks access tokens.
type Tokens struct {
	cfg    TokenConfig
	keys   *Keys
	parser *jwt.Parser
}

// NewTokens returns a token issuer/checker.
func NewTokens(cfg TokenConfig, keys *Keys) *Tokens {
	return &Tokens{cfg: cfg, keys: keys, parser: jwt.NewParser(
		jwt.WithValidMethods([]string{signingAlg}),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithStrictDecoding(), // one token string per signature
	)}
}

// Issue signs an access token for a session.
func (t *Tokens) Issue(accountID, personID, sessionID string, now time.Time) (string, time.Time, error) {
	if t.keys.private == nil {
		return "", time.Time{}, structerr.NewInternal("this process has no token signing key")
	}
	exp := now.Add(t.cfg.AccessTTL).Truncate(time.Second)
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.cfg.Issuer,
			Subject:   accountID,
			Audience:  jwt.ClaimStrings{t.cfg.Audience},
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ID:        uuid.NewString(),
		},
		PersonID:  personID,
		SessionID: sessionID,
	})
	tok.Header["kid"] = t.keys.kid
	s, err := tok.SignedString(t.keys.private)
	return s, exp, err
}

// errBadToken is what every token problem becomes for the client: no hint
// about which check failed.
var errBadToken = structerr.NewUnauthenticated("the access token is not valid or has expired; log in again")

// Parse checks a token's length, signature, algorithm, issuer, audience and
// times and returns its claims, or an Unauthenticated error.
func (t *Tokens) Parse(s string) (Claims, error) {
	if len(s) == 0 || len(s) > MaxTokenLen || strings.Count(s, ".") != 2 {
		return Claims{}, errBadToken
	}
	var c Claims
	_, err := t.parser.ParseWithClaims(s, &c, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		pub, ok := t.keys.public[kid]
		if !ok {
			return nil, errors.New("unknown key id")
		}
		return pub, nil
	})
	if err != nil {
		return Claims{}, errBadToken.WithCause(err)
	}
	if _, err := uuid.Parse(c.Subject); err != nil {
		return Claims{}, errBadToken
	}
	if _, err := uuid.Parse(c.SessionID); err != nil {
		return Claims{}, errBadToken
	}
	if _, err := uuid.Parse(c.PersonID); err != nil {
		return Claims{}, errBadToken
	}
	return c, nil
}
