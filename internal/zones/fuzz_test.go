package zones

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseFeatureCollection: any bytes give features or problems, never a
// panic; every problem is short and names a feature or the file; a
// feature that parsed has a valid code, kind, name and a geometry.
func FuzzParseFeatureCollection(f *testing.F) {
	f.Add(collection(waterZones()...))
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"A","kind":"no_build","name":"x"},"geometry":{"type":"MultiPolygon","coordinates":[[[[1,1],[2,1],[2,2],[1,1]]]]}}]}`))
	f.Add([]byte(`{"type":"FeatureCollection","features":[null,1,"x",{}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		features, problems := ParseFeatureCollection(bytes.NewReader(data))
		if len(problems) > maxProblems {
			t.Fatalf("%d problems, capped at %d", len(problems), maxProblems)
		}
		for _, p := range problems {
			if len(p.Message) > maxProblemMessage+len("…") || !utf8.ValidString(p.String()) && utf8.Valid(data) {
				t.Fatalf("problem message %d bytes: %q", len(p.Message), p.Message)
			}
		}
		for _, ft := range features {
			if !ValidCode(ft.Code) || !ValidKindName(string(ft.Kind)) || strings.TrimSpace(ft.Name) == "" || ft.Geometry == nil {
				t.Fatalf("accepted a bad feature: %+v", ft)
			}
		}
		if len(problems) > 0 {
			err := (&RejectedError{Problems: problems}).GRPCStatus()
			if len(err.Message()) > 400 {
				t.Fatalf("status message %d bytes", len(err.Message()))
			}
		}
	})
}
