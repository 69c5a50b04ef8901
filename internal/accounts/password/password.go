// Package password hashes and checks login passwords with argon2id (RFC
// 9106) and encodes the result as a PHC string
// ($argon2id$v=19$m=19456,t=2,p=1$salt$hash), so that parameters can be
// raised later and old hashes still verify (and are re-hashed on the next
// successful login).
//
// Layer: platform-level, imports nothing of ecogrid; used by accounts'
// callers (people for new accounts and resets, auth for logins).
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
	SaltLen     int
	KeyLen      uint32
}

// Default is the OWASP minimum for argon2id (19 MiB, 2 iterations,
// parallelism 1). Each hash holds 19 MiB for its duration, so the number of
// concurrent hashes is bounded (see Hasher).
var Default = Params{MemoryKiB: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// Limits on what is accepted, so that a stored hash or a request cannot ask
// for unbounded work.
const (
	MinLen         = 10  // characters
	MaxLen         = 256 // bytes; longer passwords are refused before hashing
	maxMemoryKiB   = 256 * 1024
	maxIterations  = 16
	maxParallelism = 8
)

// ErrMismatch is returned by Verify when the password is wrong.
var ErrMismatch = errors.New("password does not match")

// Hasher hashes and verifies with bounded concurrency: at most Slots
// argon2id computations run at once (each holds Params.MemoryKiB), the rest
// wait. This bounds a login flood's memory to Slots × 19 MiB.
type Hasher struct {
	Params Params
	slots  chan struct{}
}

// NewHasher returns a hasher with p and at most slots concurrent hashes
// (0 means GOMAXPROCS).
func NewHasher(p Params, slots int) *Hasher {
	if slots <= 0 {
		slots = runtime.GOMAXPROCS(0)
	}
	return &Hasher{Params: p, slots: make(chan struct{}, slots)}
}

func (h *Hasher) acquire() func() {
	h.slots <- struct{}{}
	return func() { <-h.slots }
}

// CheckPolicy reports why pw is not acceptable as a new password, in words
// a user can act on, or nil.
func CheckPolicy(pw string) error {
	if !utf8.ValidString(pw) {
		return errors.New("the password is not valid UTF-8 text")
	}
	if n := utf8.RuneCountInString(pw); n < MinLen {
		return fmt.Errorf("the password needs at least %d characters", MinLen)
	}
	if len(pw) > MaxLen {
		return fmt.Errorf("the password is longer than %d bytes", MaxLen)
	}
	return nil
}

// Hash returns the PHC-encoded argon2id hash of pw with a fresh random salt.
func (h *Hasher) Hash(pw string) (string, error) {
	if len(pw) > MaxLen {
		return "", fmt.Errorf("password longer than %d bytes", MaxLen)
	}
	p := h.Params
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	release := h.acquire()
	key := argon2.IDKey([]byte(pw), salt, p.Iterations, p.MemoryKiB, p.Parallelism, p.KeyLen)
	release()
	return encode(p, salt, key), nil
}

func encode(p Params, salt, key []byte) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		p.MemoryKiB, p.Iterations, p.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// Verify checks pw against a PHC-encoded hash in constant time. It returns
// ErrMismatch for a wrong password, another error for an unusable hash, and
// needsRehash when the hash was made with parameters other than h.Params.
func (h *Hasher) Verify(pw, encoded string) (needsRehash bool, err error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, err
	}
	if len(pw) > MaxLen {
		return false, ErrMismatch
	}
	release := h.acquire()
	got := argon2.IDKey([]byte(pw), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(want)))
	release()
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, ErrMismatch
	}
	cur := h.Params
	return p.MemoryKiB != cur.MemoryKiB || p.Iterations != cur.Iterations || p.Parallelism != cur.Parallelism ||
		len(salt) != cur.SaltLen || uint32(len(want)) != cur.KeyLen, nil
}

// dummy is a valid hash of a random password, verified when a login names an
// unknown account so that the answer takes as long as for a known one.
var dummy = func() string {
	salt := make([]byte, Default.SaltLen)
	key := make([]byte, Default.KeyLen)
	rand.Read(salt) //nolint:errcheck
	rand.Read(key)  //nolint:errcheck
	return encode(Default, salt, key)
}()

// Burn spends the same time and memory as verifying a password, for logins
// that name no known account. It always fails.
func (h *Hasher) Burn(pw string) {
	h.Verify(pw, dummy) //nolint:errcheck
}

func decode(s string) (Params, []byte, []byte, error) {
	bad := func(why string) (Params, []byte, []byte, error) {
		return Params{}, nil, nil, fmt.Errorf("stored password hash is unusable: %s", why)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return bad("not an argon2id PHC string")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported argon2 version")
	}
	var p Params
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return bad("malformed parameters")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return bad("malformed parameter " + k)
		}
		switch k {
		case "m":
			p.MemoryKiB = uint32(n)
		case "t":
			p.Iterations = uint32(n)
		case "p":
			if n > 255 {
				return bad("parallelism out of range")
			}
			p.Parallelism = uint8(n)
		default:
			return bad("unknown parameter " + k)
		}
	}
	if p.MemoryKiB < 8*uint32(p.Parallelism) || p.MemoryKiB > maxMemoryKiB || p.Iterations < 1 || p.Iterations > maxIterations ||
		p.Parallelism < 1 || p.Parallelism > maxParallelism {
		return bad("parameters out of range")
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return bad("malformed salt")
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return bad("malformed hash")
	}
	p.SaltLen = len(salt)
	p.KeyLen = uint32(len(key))
	return p, salt, key, nil
}
