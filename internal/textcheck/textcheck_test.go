package textcheck_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"

	"ecogrid/internal/structerr"
	"ecogrid/internal/textcheck"
)

func TestLineRefusesControlAndBidi(t *testing.T) {
	for _, s := range []string{"a\x00b", "a\nb", "a\tb", "a\x1bb", "a\x7fb", "a\u0085b", "a\u009fb",
		"abc\u202Efed", "a\u202Ab", "a\u2066b", "a\u2069b", "a\xffb"} {
		if err := textcheck.Line("name", s); structerr.Code(err) != codes.InvalidArgument {
			t.Errorf("Line(%q) = %v; want InvalidArgument", s, err)
		}
	}
	for _, s := range []string{"", "张伟", "Zhang Wei", "O'Brien-Smith", "河长 (县级)", "a\u200db"} {
		if err := textcheck.Line("name", s); err != nil {
			t.Errorf("Line(%q) = %v; want nil", s, err)
		}
	}
}

func TestTextAllowsNewlinesOnly(t *testing.T) {
	if err := textcheck.Text("reason", "moved post\n\tsee memo"); err != nil {
		t.Errorf("Text with newline and tab: %v", err)
	}
	for _, s := range []string{"a\rb", "a\u202Eb", "a\x00b"} {
		if err := textcheck.Text("reason", s); err == nil {
			t.Errorf("Text(%q) accepted", s)
		}
	}
}

func TestClip(t *testing.T) {
	long := strings.Repeat("长", 1000)
	c := textcheck.Clip(long, 100)
	if len(c) > 100 || !utf8.ValidString(c) || !strings.HasSuffix(c, "…") {
		t.Errorf("Clip = %d bytes %q", len(c), c)
	}
	if textcheck.Clip("short", 100) != "short" {
		t.Error("short text changed")
	}
}

func FuzzTextcheck(f *testing.F) {
	for _, s := range []string{"张伟", "a\u202Eb", "a\nb", "\xff", strings.Repeat("x", 500)} {
		f.Add(s, 40)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		max = max%1000 + 1
		if max < 0 {
			max = -max
		}
		c := textcheck.Clip(s, max)
		if !utf8.ValidString(c) || (len(c) > max && len(c) > len("…")) {
			t.Fatalf("Clip(%q, %d) = %q", s, max, c)
		}
		err := textcheck.Line("f", s)
		if err != nil && len(err.Error()) > structerr.MaxMessageBytes {
			t.Fatalf("message of %d bytes", len(err.Error()))
		}
		_, _, ok := textcheck.Bad(s, false)
		if ok != (err == nil) {
			t.Fatalf("Bad and Line disagree on %q", s)
		}
		if ok {
			for _, r := range s {
				if r < 0x20 || (r >= 0x7f && r <= 0x9f) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
					t.Fatalf("Line accepted %q with U+%04X", s, r)
				}
			}
			if !utf8.ValidString(s) {
				t.Fatalf("Line accepted invalid UTF-8 %q", s)
			}
		}
		if textcheck.Text("f", s) != nil && err == nil {
			t.Fatalf("Text refused what Line accepted: %q", s)
		}
	})
}
