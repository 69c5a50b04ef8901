// Package pagetoken makes and reads the opaque page tokens that list RPCs
// hand out for keyset paging: the sort key of the last row sent, as a few
// strings. A token is a position, not a credential — every list applies
// the caller's scope on each page — so it is encoded, not signed. What
// comes back from a client is outside input: Decode accepts only what
// Encode could have made (bounded length, the expected number of parts,
// valid UTF-8 with no NUL that PostgreSQL would refuse).
package pagetoken

import (
	"encoding/base64"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"ecogrid/internal/structerr"
)

// MaxLen bounds a token as sent by a client.
const MaxLen = 1024

const sep = "\x00"

// ErrBad is the answer to a token this server cannot have issued.
var ErrBad = structerr.NewInvalidArgument("page_token is not one this list gave; start again from the first page")

// Encode packs the sort key parts into a token. Parts must not contain NUL.
func Encode(parts ...string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, sep)))
}

// Decode unpacks a token made by Encode with n parts, or returns ErrBad.
func Decode(tok string, n int) ([]string, error) {
	if tok == "" || len(tok) > MaxLen {
		return nil, ErrBad
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(tok)
	if err != nil || !utf8.Valid(raw) {
		return nil, ErrBad
	}
	parts := strings.Split(string(raw), sep)
	// The decoder skips line breaks; only the one spelling Encode makes
	// is a token.
	if len(parts) != n || Encode(parts...) != tok {
		return nil, ErrBad
	}
	return parts, nil
}

// EncodeTimeID is the token of a list ordered by a timestamp, then a UUID.
func EncodeTimeID(at time.Time, id string) string {
	return Encode(at.UTC().Format(time.RFC3339Nano), id)
}

// DecodeTimeID reads a token made by EncodeTimeID; the id comes back in
// canonical lower-case form.
func DecodeTimeID(tok string) (time.Time, string, error) {
	parts, err := Decode(tok, 2)
	if err != nil {
		return time.Time{}, "", err
	}
	at, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil {
		return time.Time{}, "", ErrBad
	}
	id, err := uuid.Parse(parts[1])
	if err != nil || id.String() != parts[1] {
		return time.Time{}, "", ErrBad
	}
	return at.UTC(), parts[1], nil
}
