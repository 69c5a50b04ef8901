// Package textcheck refuses text that would mislead whoever reads it later:
// invalid UTF-8, C0 and C1 control characters (a newline or tab only where
// long text may hold one) and the bidirectional overrides and isolates
// (U+202A–U+202E, U+2066–U+2069) that make "abc" display as "cba" in a
// ledger record or a list of names. It also clips text for error messages,
// so a message built from input does not grow with the input.
//
// Layer: platform, beside structerr; it imports nothing of ecogrid but
// structerr. Every context where names or free text enter calls it
// (people: names, phone, employee code, tasks, reasons; grid: node names
// and codes in imports).
package textcheck

import (
	"unicode/utf8"

	"ecogrid/internal/structerr"
)

// Bad reports the first rune of s that a single line of text must not hold
// and its position in characters; ok is false when there is one. Invalid
// UTF-8 is reported as utf8.RuneError.
func Bad(s string, multiline bool) (r rune, pos int, ok bool) {
	pos = 0
	for i, c := range s {
		if c == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return c, pos, false
			}
		}
		if refused(c, multiline) {
			return c, pos, false
		}
		pos++
	}
	return 0, 0, true
}

func refused(c rune, multiline bool) bool {
	switch {
	case multiline && (c == '\n' || c == '\t'):
		return false
	case c < 0x20, c == 0x7f, c >= 0x80 && c <= 0x9f: // C0, DEL, C1
		return true
	case c >= 0x202a && c <= 0x202e, c >= 0x2066 && c <= 0x2069: // bidi embeddings, overrides, isolates
		return true
	}
	return false
}

// Line checks a one-line field (a name, a username, a code): an
// InvalidArgument naming field and the character when it holds one it
// must not.
func Line(field, s string) error { return check(field, s, false) }

// Text checks a long text field where newlines and tabs are legitimate (a
// reason, a description).
func Text(field, s string) error { return check(field, s, true) }

func check(field, s string, multiline bool) error {
	r, pos, ok := Bad(s, multiline)
	if ok {
		return nil
	}
	if r == utf8.RuneError {
		return structerr.NewInvalidArgument("%s is not valid UTF-8 text (at character %d)", Clip(field, 40), pos+1)
	}
	return structerr.NewInvalidArgument("%s contains the control or direction character U+%04X at character %d; remove it", Clip(field, 40), r, pos+1)
}

// Clip returns s cut to at most max bytes at a character boundary, ending
// in "…" when it was cut; invalid UTF-8 is replaced so the result is safe
// to put in a message.
func Clip(s string, max int) string {
	if !utf8.ValidString(s) {
		s = toValid(s)
	}
	if len(s) <= max {
		return s
	}
	const ellipsis = "…"
	cut := max - len(ellipsis)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

func toValid(s string) string {
	b := make([]rune, 0, len(s))
	for _, r := range s {
		b = append(b, r)
	}
	return string(b)
}
