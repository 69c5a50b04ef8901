// Package structerrtest holds the checks fuzz targets apply to a refusal
// of outside input: a field app shows the message as it is, so it must be
// one of the expected codes, valid UTF-8 and short whatever the input.
package structerrtest

import (
	"slices"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ecogrid/internal/structerr"
)

// MaxMessage bounds a refusal's message in bytes (structerr cuts longer
// ones; client input is quoted truncated with %.40q).
const MaxMessage = structerr.MaxMessageBytes

// CheckRefusal fails t unless err, as the client would receive it, has
// one of the codes and a short, valid UTF-8 message.
func CheckRefusal(t testing.TB, err error, want ...codes.Code) {
	t.Helper()
	st := status.Convert(structerr.ToStatus(err))
	if !slices.Contains(want, st.Code()) {
		t.Fatalf("refused with %v (%q); want one of %v", st.Code(), st.Message(), want)
	}
	if msg := st.Message(); msg == "" || len(msg) > MaxMessage || !utf8.ValidString(msg) {
		t.Fatalf("refusal message is empty, longer than %d bytes or not UTF-8 (%d bytes): %.200q", MaxMessage, len(msg), msg)
	}
}
