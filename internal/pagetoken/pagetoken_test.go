package pagetoken

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRoundTrip(t *testing.T) {
	for _, parts := range [][]string{
		{"130123005001"},
		{"2026-11-29T11:00:00.123456Z", "6f1c2b7e-4d0a-4c8e-9a53-0b7f3e2d9c11"},
		{"张三", "6f1c2b7e-4d0a-4c8e-9a53-0b7f3e2d9c11"},
		{"", ""},
	} {
		got, err := Decode(Encode(parts...), len(parts))
		if err != nil || !slices.Equal(got, parts) {
			t.Errorf("Decode(Encode(%q)) = %q, %v", parts, got, err)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		tok string
		n   int
	}{
		"empty":         {"", 1},
		"not base64":    {"!!!", 1},
		"padded":        {"YQ==", 1},
		"wrong count":   {Encode("a", "b"), 1},
		"too few":       {Encode("a"), 2},
		"invalid utf-8": {"_w", 1}, // 0xff
		"too long":      {Encode(strings.Repeat("x", MaxLen)), 1},
		"non-canonical": {"YR", 1}, // "a" with stray low bits
	} {
		if _, err := Decode(tc.tok, tc.n); !errors.Is(err, ErrBad) {
			t.Errorf("%s: Decode(%q, %d) = %v, want ErrBad", name, tc.tok, tc.n, err)
		}
	}
}

func TestTimeID(t *testing.T) {
	at := time.Date(2026, 11, 29, 11, 0, 0, 123456000, time.FixedZone("CST", 8*3600))
	id := "6f1c2b7e-4d0a-4c8e-9a53-0b7f3e2d9c11"
	gotAt, gotID, err := DecodeTimeID(EncodeTimeID(at, id))
	if err != nil || !gotAt.Equal(at) || gotID != id {
		t.Fatalf("DecodeTimeID(EncodeTimeID) = %v, %q, %v", gotAt, gotID, err)
	}
	for _, bad := range []string{Encode("yesterday", id), Encode(at.Format(time.RFC3339Nano), "x"), Encode(at.Format(time.RFC3339Nano), strings.ToUpper(id)), Encode("a")} {
		if _, _, err := DecodeTimeID(bad); !errors.Is(err, ErrBad) {
			t.Errorf("DecodeTimeID(%q) = %v, want ErrBad", bad, err)
		}
	}
}

// FuzzDecode: whatever a client sends, Decode either refuses it with
// ErrBad or returns n parts of valid UTF-8 without NUL that encode back to
// the same token (so a token has exactly one meaning).
func FuzzDecode(f *testing.F) {
	f.Add(Encode("130123005001"), 1)
	f.Add(Encode("2026-11-29T11:00:00Z", "6f1c2b7e-4d0a-4c8e-9a53-0b7f3e2d9c11"), 2)
	f.Add("YR", 1)
	f.Add("_w", 2)
	f.Fuzz(func(t *testing.T, tok string, n int) {
		parts, err := Decode(tok, n)
		if err != nil {
			if !errors.Is(err, ErrBad) {
				t.Fatalf("Decode(%q) error %v is not ErrBad", tok, err)
			}
			return
		}
		if len(parts) != n {
			t.Fatalf("Decode(%q, %d) gave %d parts", tok, n, len(parts))
		}
		for _, p := range parts {
			if !utf8.ValidString(p) || strings.Contains(p, sep) {
				t.Fatalf("Decode(%q) accepted part %q", tok, p)
			}
		}
		if again := Encode(parts...); again != tok {
			t.Fatalf("Decode(%q) = %q encodes back as %q", tok, parts, again)
		}
	})
}
