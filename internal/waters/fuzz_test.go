package waters_test

import (
	"testing"

	"ecogrid/internal/waters"
)

// FuzzParseFeatureCollection: any bytes give features or problems, never a
// panic, and every problem message is short enough for an app to show.
func FuzzParseFeatureCollection(f *testing.F) {
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"HTH-01","name":"a","body_code":"HTH","body_name":"滹沱河","body_kind":"river","node_code":"130123","seq":1},"geometry":{"type":"LineString","coordinates":[[114.4,38.1],[114.5,38.1]]}}]}`))
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"L","name":"a","body_code":"L","body_name":"湖","body_kind":"lake","node_code":"130123001"},"geometry":{"type":"Polygon","coordinates":[[[114.4,38.1],[114.5,38.1],[114.5,38.2],[114.4,38.1]]]}}]}`))
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"MultiLineString","coordinates":[[[1,2]],[]]}}]}`))
	f.Add([]byte(`{"type":"FeatureCollection","features":[null, 1, "x"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, ps := waters.ParseFeatureCollection(data, waters.ParseLimits{MaxFeatureVertices: 1000})
		for _, p := range ps {
			if len(p.String()) > 400 {
				t.Fatalf("problem of %d bytes: %.100s", len(p.String()), p.String())
			}
		}
		for _, f := range fs {
			if f.Geometry == nil || f.Code == "" || !f.BodyKind.Valid() {
				t.Fatalf("accepted feature %+v", f)
			}
		}
	})
}
