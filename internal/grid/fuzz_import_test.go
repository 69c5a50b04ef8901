package grid

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"ecogrid/internal/database/dbtest"
)

// FuzzImportGeoJSON drives the whole import path (parser, structural
// checks, PostGIS checks in a transaction) as a dry run on one database:
// whatever the bytes, the answer is success or a rejection listing
// problems, never an internal error or a panic. The seeds are geometries
// that are valid GeoJSON but hard for GEOS and geography functions.
func FuzzImportGeoJSON(f *testing.F) {
	county := func(coords string) []byte {
		return []byte(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"130123","name":"县","level":"county"},"geometry":{"type":"Polygon","coordinates":` + coords + `}}]}`)
	}
	f.Add(county(`[[[114.4,38.05],[114.5,38.05],[114.5,38.1],[114.4,38.1],[114.4,38.05]]]`))
	f.Add(county(`[[[-180,-90],[180,-90],[180,90],[-180,90],[-180,-90]]]`))                                               // the whole world
	f.Add(county(`[[[179.9,0],[-179.9,0],[-179.9,1],[179.9,1],[179.9,0]]]`))                                              // across the antimeridian
	f.Add(county(`[[[114.4,38.05],[114.4,38.05],[114.4,38.05],[114.4,38.05]]]`))                                          // a point as a ring
	f.Add(county(`[[[114.4,38.05],[114.5,38.05],[114.6,38.05],[114.4,38.05]]]`))                                          // zero area
	f.Add(county(`[[[114.4,38.05],[114.5,38.1],[114.5,38.05],[114.4,38.1],[114.4,38.05]]]`))                              // bow-tie
	f.Add(county(`[[[114.4,38.05],[114.5,38.05],[114.5,38.1],[114.4,38.05]],[[115,39],[115.1,39],[115,39.1],[115,39]]]`)) // hole outside shell
	f.Add(county(`[[[114.4,38.05],[114.40000000001,38.05],[114.40000000001,38.05000000001],[114.4,38.05]]]`))             // a sliver of 1e-11°
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"130123","name":"县","level":"county"},"geometry":{"type":"Polygon","coordinates":[[[114,38],[115,38],[115,39],[114,39],[114,38]]]}},{"type":"Feature","properties":{"code":"130123001","name":"镇"},"geometry":{"type":"Polygon","coordinates":[[[-10,-10],[10,-10],[10,10],[-10,-10]]]}}]}`))
	pool := dbtest.NewPool(f)
	store := NewStore(pool, Config{Limits: ParseLimits{MaxFeatures: 20, MaxRingVertices: 200, MaxFeatureVertices: 1000}})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := store.ImportGeoJSON(context.Background(), bytes.NewReader(data), ImportOptions{DryRun: true})
		var rej *RejectedError
		if err != nil && !errors.As(err, &rej) {
			t.Fatalf("import of %q: %v", data, err)
		}
	})
}
