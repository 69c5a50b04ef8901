package ledger

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Environment variables that carry the checkpoint signing key. The private
// key never lives in the database: whoever can rewrite the tables must not
// be able to re-sign them.
const (
	EnvKey     = "ECOGRID_LEDGER_KEY"      // the private key text itself (PRIVATE+KEY+name+id+data)
	EnvKeyFile = "ECOGRID_LEDGER_KEY_FILE" // a file holding it (mode 0600)
	// EnvTrustedKeys lists further public keys (comma or newline separated)
	// whose checkpoints verify, e.g. keys retired by a rotation.
	EnvTrustedKeys = "ECOGRID_LEDGER_TRUSTED_KEYS"
)

// DefaultKeyName names keys made by `gridctl audit keygen` unless told
// otherwise; it appears in every signature line of a checkpoint.
const DefaultKeyName = "ecogrid-ledger"

// KeyConfig says where the signing key and the trusted public keys come from.
type KeyConfig struct {
	PrivateKey     string   // note private key text; wins over PrivateKeyFile
	PrivateKeyFile string   // path of a file holding it
	TrustedKeys    []string // extra public keys (note verifier key text)
}

// KeyConfigFromEnv reads ECOGRID_LEDGER_KEY, ECOGRID_LEDGER_KEY_FILE and
// ECOGRID_LEDGER_TRUSTED_KEYS.
func KeyConfigFromEnv() KeyConfig {
	cfg := KeyConfig{PrivateKey: os.Getenv(EnvKey), PrivateKeyFile: os.Getenv(EnvKeyFile)}
	for _, k := range strings.FieldsFunc(os.Getenv(EnvTrustedKeys), func(r rune) bool { return r == ',' || r == '\n' }) {
		if k = strings.TrimSpace(k); k != "" {
			cfg.TrustedKeys = append(cfg.TrustedKeys, k)
		}
	}
	return cfg
}

// Keys is the checkpoint signer (nil when this process only verifies) and
// the set of public keys whose signatures are trusted.
type Keys struct {
	signer    note.Signer
	publicKey string // verifier key text of signer
	public    []string
	verifiers note.Verifiers
}

// ErrNoSigningKey is returned when a checkpoint is requested from a process
// started without a private key.
var ErrNoSigningKey = errors.New("no ledger signing key configured (set " + EnvKeyFile + " or " + EnvKey + ")")

// LoadKeys loads the signing key (if any) and the trusted public keys.
// Without a private key the ledger still appends and verifies, but cannot
// sign checkpoints. Error messages never contain key material.
func LoadKeys(cfg KeyConfig) (*Keys, error) {
	k := &Keys{}
	var vs []note.Verifier
	skey := strings.TrimSpace(cfg.PrivateKey)
	if skey == "" && cfg.PrivateKeyFile != "" {
		b, err := os.ReadFile(cfg.PrivateKeyFile)
		if err != nil {
			return nil, fmt.Errorf("reading ledger key file: %w", err)
		}
		skey = privateKeyLine(string(b))
	}
	if skey != "" {
		s, err := note.NewSigner(skey)
		if err != nil {
			return nil, errors.New("the ledger signing key is not a valid note private key (make one with 'gridctl audit keygen')")
		}
		vkey, err := publicFromPrivate(skey)
		if err != nil {
			return nil, err
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return nil, err
		}
		k.signer, k.publicKey = s, vkey
		k.public = append(k.public, vkey)
		vs = append(vs, v)
	}
	for _, t := range cfg.TrustedKeys {
		v, err := note.NewVerifier(strings.TrimSpace(t))
		if err != nil {
			return nil, fmt.Errorf("trusted ledger public key %q is not a valid note verifier key", t)
		}
		if k.signer != nil && v.KeyHash() == k.signer.KeyHash() && v.Name() == k.signer.Name() {
			continue
		}
		k.public = append(k.public, strings.TrimSpace(t))
		vs = append(vs, v)
	}
	k.verifiers = note.VerifierList(vs...)
	return k, nil
}

// privateKeyLine returns the PRIVATE+KEY line of a key file (which may also
// hold comments and the public key).
func privateKeyLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "PRIVATE+KEY+") {
			return line
		}
	}
	return strings.TrimSpace(s)
}

// publicFromPrivate derives the verifier key text from a note private key.
func publicFromPrivate(skey string) (string, error) {
	// PRIVATE+KEY+<name>+<hash>+<base64(alg || ed25519 seed)>
	rest, ok := strings.CutPrefix(skey, "PRIVATE+KEY+")
	if !ok {
		return "", errors.New("the ledger signing key is not a note private key")
	}
	parts := strings.SplitN(rest, "+", 3)
	if len(parts) != 3 {
		return "", errors.New("the ledger signing key is not a note private key")
	}
	seed, err := decodeKeyData(parts[2])
	if err != nil {
		return "", err
	}
	return note.NewEd25519VerifierKey(parts[0], seed.Public().(ed25519.PublicKey))
}

// NewKeyPair makes a fresh ed25519 key pair in note format: the private key
// text for ECOGRID_LEDGER_KEY(_FILE) and the public key to publish.
func NewKeyPair(name string) (private, public string, err error) {
	if name == "" {
		name = DefaultKeyName
	}
	return note.GenerateKey(rand.Reader, name)
}

// Signer returns the checkpoint signer, or nil.
func (k *Keys) Signer() note.Signer { return k.signer }

// PublicKey returns the verifier key text of the signing key ("" without one).
func (k *Keys) PublicKey() string { return k.publicKey }

// PublicKeys returns every trusted public key, the signing key's first.
func (k *Keys) PublicKeys() []string { return append([]string(nil), k.public...) }

// Verifiers returns the trusted verifiers.
func (k *Keys) Verifiers() note.Verifiers { return k.verifiers }

// ParsePublicKeys turns key texts into verifiers, for offline verification.
func ParsePublicKeys(keys ...string) (note.Verifiers, error) {
	var vs []note.Verifier
	for _, t := range keys {
		v, err := note.NewVerifier(strings.TrimSpace(t))
		if err != nil {
			return nil, fmt.Errorf("%q is not a ledger public key (name+id+key, as printed by 'gridctl audit keygen')", t)
		}
		vs = append(vs, v)
	}
	if len(vs) == 0 {
		return nil, errors.New("no ledger public key given")
	}
	return note.VerifierList(vs...), nil
}

// decodeKeyData decodes the base64 key data of a note private key: the
// algorithm byte (1 = ed25519) followed by the 32-byte seed.
func decodeKeyData(s string) (ed25519.PrivateKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 1+ed25519.SeedSize || b[0] != 1 {
		return nil, errors.New("the ledger signing key is not an ed25519 note private key")
	}
	return ed25519.NewKeyFromSeed(b[1:]), nil
}
