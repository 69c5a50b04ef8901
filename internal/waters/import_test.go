package waters_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/demo"
	"ecogrid/internal/waters"
)

// env is a fresh database with the demo county (130123: 114.40–114.76°E,
// 38.05–38.25°N, 10 townships, 150 villages) imported through grid.
type env struct {
	pool  *pgxpool.Pool
	grid  *grid.Store
	index *grid.Index
	store *waters.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	pool := dbtest.NewPool(t)
	gs := grid.NewStore(pool, grid.Config{})
	if _, err := gs.ImportGeoJSON(context.Background(), bytes.NewReader(demo.County()), grid.ImportOptions{}); err != nil {
		t.Fatalf("demo county: %v", err)
	}
	ix := grid.NewIndex(pool, nil)
	if err := ix.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &env{pool: pool, grid: gs, index: ix, store: waters.NewStore(pool, gs)}
}

// feature is one reach of a test file; coords are [lon, lat] pairs.
type feature struct {
	Code, Name, Body, BodyName, Kind, Node string
	Seq                                    int
	Type                                   string // LineString (default), Polygon
	Coords                                 [][2]float64
}

func (f feature) json() map[string]any {
	typ := f.Type
	if typ == "" {
		typ = "LineString"
	}
	var coords any = f.Coords
	if typ == "Polygon" {
		coords = [][][2]float64{f.Coords}
	}
	bodyName := f.BodyName
	if bodyName == "" {
		bodyName = "滹沱河"
	}
	kind := f.Kind
	if kind == "" {
		kind = "river"
	}
	return map[string]any{"type": "Feature",
		"properties": map[string]any{"code": f.Code, "name": f.Name, "body_code": f.Body, "body_name": bodyName, "body_kind": kind, "node_code": f.Node, "seq": f.Seq},
		"geometry":   map[string]any{"type": typ, "coordinates": coords}}
}

func collection(fs ...feature) []byte {
	var list []any
	for _, f := range fs {
		list = append(list, f.json())
	}
	b, _ := json.Marshal(map[string]any{"type": "FeatureCollection", "features": list})
	return b
}

// line runs along latitude lat from lon0 to lon1 with a vertex every step.
func line(lat, lon0, lon1 float64) [][2]float64 {
	var out [][2]float64
	const step = 0.004
	for x := lon0; x < lon1-step/2; x += step {
		out = append(out, [2]float64{x, lat})
	}
	return append(out, [2]float64{lon1, lat})
}

// river is the test river: three reaches along 38.153°N from 114.41°E to
// 114.65°E, owned by the village, township and county under their
// midpoints.
func (e *env) river(t *testing.T) []feature {
	t.Helper()
	const lat = 38.153
	cuts := []float64{114.41, 114.47, 114.55, 114.65}
	var fs []feature
	for i := 0; i+1 < len(cuts); i++ {
		loc, ok := e.index.Locate(lat, (cuts[i]+cuts[i+1])/2)
		if !ok {
			t.Fatal("river midpoint outside the demo county")
		}
		node := loc.CodeAt(grid.Level(3 - i)) // village, township, county reach
		fs = append(fs, feature{Code: fmt.Sprintf("HTH-%02d", i+1), Name: fmt.Sprintf("滹沱河第%d段", i+1), Body: "HTH", Node: node, Seq: i + 1, Coords: line(lat, cuts[i], cuts[i+1])})
	}
	return fs
}

func TestImportRiverAcrossVillagesAndTownships(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	fs := e.river(t)
	// The river crosses at least three villages and two townships.
	villages, townships := map[string]bool{}, map[string]bool{}
	for _, f := range fs {
		for _, c := range f.Coords {
			loc, _ := e.index.Locate(c[1], c[0])
			villages[loc.CodeAt(grid.LevelVillage)] = true
			townships[loc.CodeAt(grid.LevelTownship)] = true
		}
	}
	if len(villages) < 3 || len(townships) < 2 {
		t.Fatalf("the test river crosses %d villages and %d townships", len(villages), len(townships))
	}
	lake := feature{Code: "LK-1", Name: "岗南水库库区", Body: "GNSK", BodyName: "岗南水库", Kind: "reservoir", Node: "130123", Type: "Polygon",
		Coords: [][2]float64{{114.60, 38.20}, {114.64, 38.20}, {114.64, 38.23}, {114.60, 38.23}, {114.60, 38.20}}}
	res, err := e.store.ImportGeoJSON(ctx, collection(append(fs, lake)...), waters.ParseLimits{}, waters.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != 4 {
		t.Fatalf("created %d; want 4", res.Created)
	}
	r, err := e.store.ReachAt(ctx, "HTH-02", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r.NodeLevel != grid.LevelTownship || r.BodyKind != waters.KindRiver || r.LengthM < 6500 || r.LengthM > 7500 {
		t.Fatalf("reach 2: level %v kind %s length %.0f m", r.NodeLevel, r.BodyKind, r.LengthM)
	}
	// Export and re-import: nothing changes.
	out, n, err := e.store.ExportGeoJSON(ctx, "130123", time.Time{}, nil)
	if err != nil || n != 4 {
		t.Fatalf("export: %d reaches, %v", n, err)
	}
	again, err := e.store.ImportGeoJSON(ctx, out, waters.ParseLimits{}, waters.ImportOptions{})
	if err != nil || again.Unchanged != 4 || again.Created+again.Updated != 0 {
		t.Fatalf("re-import of the export: %+v, %v", again, err)
	}
	// QGIS: one geometry column, SRID 4326, typed views.
	var lines, areas int
	if err := e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM waters.river_reaches_current), (SELECT count(*) FROM waters.area_reaches_current)`).Scan(&lines, &areas); err != nil || lines != 3 || areas != 1 {
		t.Fatalf("views: %d lines, %d areas, %v", lines, areas, err)
	}
	var srid int
	if err := e.pool.QueryRow(ctx, `SELECT srid FROM geometry_columns WHERE f_table_schema = 'waters' AND f_table_name = 'reaches'`).Scan(&srid); err != nil || srid != 4326 {
		t.Fatalf("geometry_columns: srid %d, %v", srid, err)
	}
}

func TestImportVersionKeepsOldReach(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	fs := e.river(t)
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := e.store.ImportGeoJSON(ctx, collection(fs...), waters.ParseLimits{}, waters.ImportOptions{Effective: t0}); err != nil {
		t.Fatal(err)
	}
	// Reach 3 is redrawn (and shortened) from 2026; its old version stays.
	fs[2].Coords = line(38.153, 114.55, 114.60)
	fs[2].Node = "130123"
	t1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	res, err := e.store.ImportGeoJSON(ctx, collection(fs...), waters.ParseLimits{}, waters.ImportOptions{Effective: t1})
	if err != nil || res.Updated != 1 || res.Unchanged != 2 {
		t.Fatalf("second import: %+v, %v", res, err)
	}
	old, err := e.store.ReachAt(ctx, "HTH-03", time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || old.Version != 1 || old.LengthM < 8000 {
		t.Fatalf("the reach in 2025: %+v, %v", old, err)
	}
	cur, err := e.store.ReachAt(ctx, "HTH-03", time.Now())
	if err != nil || cur.Version != 2 || cur.LengthM > 5000 {
		t.Fatalf("the reach now: version %d length %.0f, %v", cur.Version, cur.LengthM, err)
	}
	// History cannot be rewritten.
	if _, err := e.pool.Exec(ctx, `DELETE FROM waters.reaches`); err == nil {
		t.Fatal("deleting reach versions succeeded")
	}
}

func TestImportListsEveryProblem(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	fs := e.river(t)
	village := fs[0].Node
	bad := []feature{
		fs[0],
		// Gap: reach 2 starts 1.7 km downstream of reach 1's end.
		{Code: "HTH-02", Name: "gap", Body: "HTH", Node: village, Seq: 2, Coords: line(38.153, 114.49, 114.55)},
		// Duplicate code.
		{Code: "HTH-02", Name: "dup", Body: "XX", Node: village, Coords: line(38.10, 114.45, 114.46)},
		// Self-crossing.
		{Code: "SELF", Name: "self", Body: "S", Node: village, Coords: [][2]float64{{114.45, 38.10}, {114.46, 38.11}, {114.46, 38.10}, {114.45, 38.11}}},
		// Outside the county.
		{Code: "FAR", Name: "far", Body: "F", Node: village, Coords: line(38.15, 115.50, 115.52)},
		// Unknown node.
		{Code: "NONODE", Name: "no node", Body: "N", Node: "130123999999", Coords: line(38.10, 114.45, 114.46)},
		// A river drawn as a polygon.
		{Code: "POLY", Name: "poly", Body: "P", Node: village, Type: "Polygon", Coords: [][2]float64{{114.45, 38.10}, {114.46, 38.10}, {114.46, 38.11}, {114.45, 38.10}}},
		// An invalid (bow-tie) reservoir.
		{Code: "BOW", Name: "bow", Body: "B", Kind: "lake", Node: village, Type: "Polygon", Coords: [][2]float64{{114.45, 38.10}, {114.46, 38.11}, {114.46, 38.10}, {114.45, 38.11}, {114.45, 38.10}}},
	}
	_, err := e.store.ImportGeoJSON(ctx, collection(bad...), waters.ParseLimits{}, waters.ImportOptions{})
	var rej *waters.RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("import: %v; want a rejection", err)
	}
	kinds := map[grid.ProblemKind]int{}
	for _, p := range rej.Problems {
		kinds[p.Kind]++
	}
	for _, want := range []grid.ProblemKind{waters.ProblemGap, grid.ProblemDuplicateCode, waters.ProblemSelfCrossing, waters.ProblemOutsideCounty,
		waters.ProblemUnknownNode, waters.ProblemGeometryKind, grid.ProblemInvalidGeom} {
		if kinds[want] == 0 {
			t.Errorf("no %s problem in %s", want, rej.Problems.Summary(20))
		}
	}
	if st := rej.GRPCStatus(); len(st.Message()) > 4000 || st.Code().String() != "InvalidArgument" {
		t.Errorf("status %v, %d bytes", st.Code(), len(st.Message()))
	}
	var n int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM waters.reaches`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d reaches written by a refused import (%v)", n, err)
	}
}

func TestParseRefusesMalformedFiles(t *testing.T) {
	t.Parallel()
	for name, text := range map[string]string{
		"not json":     `{`,
		"not a fc":     `{"type":"Feature"}`,
		"point":        `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"a","name":"a","body_code":"b","body_name":"b","body_kind":"river","node_code":"130123"},"geometry":{"type":"Point","coordinates":[1,2]}}]}`,
		"off globe":    `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"a","name":"a","body_code":"b","body_name":"b","body_kind":"river","node_code":"130123"},"geometry":{"type":"LineString","coordinates":[[1,2],[200,2]]}}]}`,
		"one point":    `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"a","name":"a","body_code":"b","body_name":"b","body_kind":"river","node_code":"130123"},"geometry":{"type":"LineString","coordinates":[[1,2],[1,2]]}}]}`,
		"missing code": `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"name":"a","body_code":"b","body_name":"b","body_kind":"river","node_code":"130123"},"geometry":{"type":"LineString","coordinates":[[1,2],[1,3]]}}]}`,
		"bad kind":     `{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"a","name":"a","body_code":"b","body_name":"b","body_kind":"sea","node_code":"130123"},"geometry":{"type":"LineString","coordinates":[[1,2],[1,3]]}}]}`,
	} {
		fs, ps := waters.ParseFeatureCollection([]byte(text), waters.ParseLimits{})
		if len(fs) != 0 || len(ps) == 0 {
			t.Errorf("%s: %d features, problems %v", name, len(fs), ps)
		}
	}
}
