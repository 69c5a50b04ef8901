package grid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"ecogrid/internal/grid/demo"
)

// projectedDemo is the demo county as a surveyor's office would send it:
// every boundary in CGCS2000 3-degree Gauss-Krüger, central meridian 114°E
// (EPSG:4547), in metres with three decimals, transformed by PostGIS. crs
// is the "crs" member's name, or "" for a file that declares none.
func projectedDemo(t *testing.T, s *Store, crs string) []byte {
	t.Helper()
	var fc map[string]any
	if err := json.Unmarshal(demo.County(), &fc); err != nil {
		t.Fatal(err)
	}
	for _, f := range fc["features"].([]any) {
		feat := f.(map[string]any)
		g, _ := json.Marshal(feat["geometry"])
		var projected string
		if err := s.pool.QueryRow(context.Background(),
			`SELECT ST_AsGeoJSON(ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON($1), 4326), 4547), 3)`, string(g)).Scan(&projected); err != nil {
			t.Fatal(err)
		}
		feat["geometry"] = json.RawMessage(projected)
	}
	if crs != "" {
		fc["crs"] = map[string]any{"type": "name", "properties": map[string]any{"name": crs}}
	}
	b, err := json.Marshal(fc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImportProjectedCRS: a file in a projected CGCS2000 zone is imported
// when its CRS is declared (in the file or by the caller) and lands where
// the WGS-84 original is, to the centimetre; undeclared, it is refused
// with one problem per ring and a hint, not a line per vertex.
func TestImportProjectedCRS(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nodes := len(demo.CountyNodes())

	t.Run("declared in the file", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		res, err := s.ImportGeoJSON(ctx, bytes.NewReader(projectedDemo(t, s, "urn:ogc:def:crs:EPSG::4547")), ImportOptions{})
		if err != nil {
			t.Fatalf("import: %v", err)
		}
		if res.Created != nodes {
			t.Fatalf("created %d nodes, want %d", res.Created, nodes)
		}
		// Compare with the WGS-84 original, imported into a second store.
		orig := newTestStore(t)
		importDemo(t, orig)
		want := map[string]string{}
		rows, err := orig.pool.Query(ctx, `SELECT code, ST_AsText(geom) FROM grid.nodes`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var code, wkt string
			if err := rows.Scan(&code, &wkt); err != nil {
				t.Fatal(err)
			}
			want[code] = wkt
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for code, wkt := range want {
			var d float64
			if err := s.pool.QueryRow(ctx, `SELECT ST_HausdorffDistance(geom::geography::geometry, ST_GeomFromText($2, 4326))
				FROM grid.nodes WHERE code = $1`, code, wkt).Scan(&d); err != nil {
				t.Fatalf("%s: %v", code, err)
			}
			worst = max(worst, d)
		}
		t.Logf("worst Hausdorff distance to the WGS-84 original: %g°", worst)
		// 1e-7° is about a centimetre.
		if worst > 2e-7 {
			t.Errorf("transformed boundaries are up to %g° from the original, want < 2e-7°", worst)
		}
	})

	t.Run("given by the caller", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		res, err := s.ImportGeoJSON(ctx, bytes.NewReader(projectedDemo(t, s, "")), ImportOptions{SourceSRID: 4547, DryRun: true})
		if err != nil || res.Created != nodes {
			t.Fatalf("dry run with -s-srs EPSG:4547: %+v %v", res, err)
		}
	})

	t.Run("undeclared", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		_, err := s.ImportGeoJSON(ctx, bytes.NewReader(projectedDemo(t, s, "")), ImportOptions{})
		var rej *RejectedError
		if !errors.As(err, &rej) {
			t.Fatalf("undeclared projected file: %v, want it refused", err)
		}
		var hint, ranges int
		for _, p := range rej.Problems {
			switch {
			case p.Feature < 0 && strings.Contains(p.Message, "-s-srs") && strings.Contains(p.Message, "EPSG:4547"):
				hint++
			case strings.Contains(p.Message, "out of range"):
				ranges++
			}
		}
		if hint != 1 || ranges != nodes {
			t.Fatalf("%d hints and %d range problems for %d single-ring features, want 1 and one per ring:\n%v", hint, ranges, nodes, rej.Problems)
		}
	})

	t.Run("unknown CRS", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		_, err := s.ImportGeoJSON(ctx, bytes.NewReader(projectedDemo(t, s, "EPSG:990999")), ImportOptions{})
		if err == nil || !strings.Contains(err.Error(), "EPSG:990999 is unknown to PostGIS") {
			t.Fatalf("unknown CRS: %v", err)
		}
	})
}

func TestParseCRS(t *testing.T) {
	for in, want := range map[string]int{
		"EPSG:4547": 4547, "urn:ogc:def:crs:EPSG::4547": 4547, "urn:ogc:def:crs:EPSG:6.6:4326": 4326,
		"urn:ogc:def:crs:OGC:1.3:CRS84": 4326, "4490": 4490, " epsg:4326 ": 4326, "CGCS2000": 4490,
	} {
		if got, err := ParseCRS(in); err != nil || got != want {
			t.Errorf("ParseCRS(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "EPSG:", "EPSG:-1", "Beijing 1954", "EPSG:4547x"} {
		if _, err := ParseCRS(bad); err == nil {
			t.Errorf("ParseCRS(%q) accepted", bad)
		}
	}
}

func FuzzParseCRS(f *testing.F) {
	for _, s := range []string{"EPSG:4547", "urn:ogc:def:crs:EPSG::4547", "urn:ogc:def:crs:OGC:1.3:CRS84", "4490", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseCRS(s)
		if err == nil && (n <= 0 || n > 999999) {
			t.Fatalf("ParseCRS(%q) = %d", s, n)
		}
		if err != nil && len(err.Error()) > 400 {
			t.Fatalf("message of %d bytes", len(err.Error()))
		}
	})
}
