package cases

import (
	"testing"

	"google.golang.org/grpc/codes"

	"ecogrid/internal/structerr"
)

// Notes on steps are shown to other people and printed in audits: control
// characters and direction overrides are refused (issue 13), newlines kept.
func TestStepNotesRefuseControlAndDirectionCharacters(t *testing.T) {
	for _, note := range []string{"已整改\u202e", "ok\x1b[2J", "a\x00b", "\xff", "x\u2066y"} {
		if err := checkInput(Input{Note: note}); structerr.Code(err) != codes.InvalidArgument {
			t.Errorf("note %q: %v, want InvalidArgument", note, err)
		}
	}
	if err := checkInput(Input{Note: "现场已清理。\n垃圾已运走。"}); err != nil {
		t.Errorf("a two-line note: %v", err)
	}
}
