package grid

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"ecogrid/internal/structerr"
)

// TestImportErrorsAreCapped: a long name reached the client as a 900 KB
// error. Every problem's text and the number of problems listed are now
// bounded, and the rest are counted.
func TestImportErrorsAreCapped(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	long := strings.Repeat("长", 300_000) // 900 KB
	var b bytes.Buffer
	b.WriteString(`{"type":"FeatureCollection","features":[`)
	for i := range 500 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"type":"Feature","properties":{"code":"%s","name":"%s","level":"village"},"geometry":{"type":"Polygon","coordinates":[[[114,38],[114.1,38],[114.1,38.1],[114,38]]]}}`,
			strings.Repeat("9", 2000), long[:3*(i%3+1)*1000])
	}
	b.WriteString(`]}`)
	_, err := s.ImportGeoJSON(context.Background(), &b, ImportOptions{})
	st, violations := rejection(t, err)
	if n := len(st.Message()); n > structerr.MaxMessageBytes {
		t.Errorf("message is %d bytes; want at most %d", n, structerr.MaxMessageBytes)
	}
	if !strings.Contains(st.Message(), "more") {
		t.Errorf("message %q does not count the problems left off", st.Message())
	}
	if n := proto.Size(st.Proto()); n > 64<<10 {
		t.Errorf("status with details is %d bytes; want under 64 KiB", n)
	}
	if len(violations) > maxDetailProblems+1 || !strings.Contains(violations[len(violations)-1].Description, "more problems") {
		t.Errorf("%d violations, last %q", len(violations), violations[len(violations)-1].Description)
	}
}

// TestImportRefusesDirectionAndControlCharactersInNames: a name that
// displays reversed (U+202E) or holds a control character is refused.
func TestImportRefusesDirectionAndControlCharactersInNames(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	for _, name := range []string{"河源\u202E县", "河源\\u0007县", "河源\\n县"} {
		data := `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"130123","name":"` + name +
			`","level":"county"},"geometry":{"type":"Polygon","coordinates":[[[114,38],[114.1,38],[114.1,38.1],[114,38]]]}}]}`
		_, err := s.ImportGeoJSON(context.Background(), strings.NewReader(data), ImportOptions{})
		st, _ := rejection(t, err)
		if !strings.Contains(st.Message(), "control or direction character") {
			t.Errorf("name %q: message %q", name, st.Message())
		}
	}
}
