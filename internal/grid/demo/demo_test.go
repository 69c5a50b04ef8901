package demo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/grid/demo"
)

func TestCountyShape(t *testing.T) {
	nodes := demo.CountyNodes()
	levels := map[int]int{}
	codes := map[string]bool{}
	names := map[string]bool{}
	for _, n := range nodes {
		levels[n.Level]++
		if codes[n.Code] {
			t.Errorf("duplicate code %s", n.Code)
		}
		codes[n.Code] = true
		if n.Level == demo.LevelVillage {
			if names[n.Name] {
				t.Errorf("duplicate village name %s", n.Name)
			}
			names[n.Name] = true
			if !strings.HasSuffix(n.Name, "村") || !codes[n.Code[:9]] || len(n.Code) != 12 {
				t.Errorf("village %s %s: bad name or parent", n.Code, n.Name)
			}
		}
		if r := n.Ring; r[0] != r[len(r)-1] || len(r) < 4 {
			t.Errorf("%s: ring not closed", n.Code)
		}
	}
	if levels[1] != 1 || levels[2] != 10 || levels[3] != 150 {
		t.Fatalf("levels %v, want 1 county, 10 townships, 150 villages", levels)
	}
	if !bytes.Equal(demo.County(), demo.County()) {
		t.Fatal("County() is not deterministic")
	}
	var fc struct {
		Type     string            `json:"type"`
		Features []json.RawMessage `json:"features"`
	}
	if err := json.Unmarshal(demo.County(), &fc); err != nil || fc.Type != "FeatureCollection" || len(fc.Features) != 161 {
		t.Fatalf("GeoJSON: %v %q %d", err, fc.Type, len(fc.Features))
	}
}

// TestCountyTilesExactly checks with PostGIS that every polygon is valid,
// that villages tile their township and townships the county with no gap
// and no overlap.
func TestCountyTilesExactly(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE TEMP TABLE n (code text, parent text, g geometry)`); err != nil {
		t.Fatal(err)
	}
	for _, n := range demo.CountyNodes() {
		var wkt strings.Builder
		wkt.WriteString("POLYGON((")
		for i, c := range n.Ring {
			if i > 0 {
				wkt.WriteByte(',')
			}
			wkt.WriteString(strings.TrimSpace(strings.Join([]string{ftoa(c[0]), ftoa(c[1])}, " ")))
		}
		wkt.WriteString("))")
		parent := ""
		if n.Level > 1 {
			parent = n.Code[:len(n.Code)-3]
		}
		if _, err := pool.Exec(ctx, `INSERT INTO n VALUES ($1, $2, ST_GeomFromText($3, 4326))`, n.Code, parent, wkt.String()); err != nil {
			t.Fatal(err)
		}
	}
	var invalid []string
	rows, err := pool.Query(ctx, `SELECT code || ': ' || ST_IsValidReason(g) FROM n WHERE NOT ST_IsValid(g)`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		invalid = append(invalid, s)
	}
	if rows.Err() != nil || len(invalid) > 0 {
		t.Fatalf("invalid polygons: %v %v", invalid, rows.Err())
	}
	var gapM2, overlapM2 float64
	err = pool.QueryRow(ctx, `
		SELECT coalesce(sum(ST_Area(ST_Difference(p.g, c.u)::geography)), 0)
		FROM n p JOIN (SELECT parent, ST_Union(g) u FROM n WHERE parent <> '' GROUP BY parent) c ON c.parent = p.code`).Scan(&gapM2)
	if err != nil {
		t.Fatal(err)
	}
	err = pool.QueryRow(ctx, `
		SELECT coalesce(sum(ST_Area(ST_Intersection(a.g, b.g)::geography)), 0)
		FROM n a JOIN n b ON a.parent = b.parent AND a.code < b.code AND ST_Intersects(a.g, b.g)`).Scan(&overlapM2)
	if err != nil {
		t.Fatal(err)
	}
	if gapM2 > 1 || overlapM2 > 1 {
		t.Fatalf("children do not tile parents: gaps %.3f m², overlaps %.3f m²", gapM2, overlapM2)
	}
	var countyHa float64
	if err := pool.QueryRow(ctx, `SELECT ST_Area(g::geography)/10000 FROM n WHERE code = $1`, demo.DemoCountyCode).Scan(&countyHa); err != nil {
		t.Fatal(err)
	}
	t.Logf("demo county %.0f ha", countyHa)
	if countyHa < 50000 || countyHa > 100000 {
		t.Fatalf("county area %.0f ha, want a county-sized 500–1000 km²", countyHa)
	}
}

func TestNationalTiling(t *testing.T) {
	nodes := demo.National(2000, 1)
	villages := 0
	for _, n := range nodes {
		if n.Level == demo.LevelVillage {
			villages++
		}
	}
	if villages < 2000 || villages > 2500 {
		t.Fatalf("%d villages, want 2000 rounded up to whole counties", villages)
	}
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
