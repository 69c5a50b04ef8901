package gis_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/demo"
)

// gisStack is a migrated database holding the demo county, one open case,
// one closed case, a report and a patrol, and a login role that is only a
// member of ecogrid_gis.
type gisStack struct {
	url     string // as the migrating superuser
	gisURL  string // as the GIS role
	pg      string // the same, as a GDAL "PG:" connection string
	nodes   int
	village string
}

func newGISStack(t *testing.T) gisStack {
	t.Helper()
	ctx := context.Background()
	u := dbtest.NewURL(t)
	pool, err := database.Open(ctx, database.Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := grid.NewStore(pool, grid.Config{}).ImportGeoJSON(ctx, bytes.NewReader(demo.County()), grid.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	s := gisStack{url: u, nodes: len(demo.CountyNodes()), village: "130123002004"}
	// Seed the tables behind the views the way the services leave them.
	seed := []string{
		`INSERT INTO field.reports (id, request_hash, reporter_id, county_code, township_code, village_code, cell_code,
			category, severity, description, observed_at, position, orig_lat, orig_lon, orig_system, violation, outside_area, photo_sha256)
		 SELECT gen_random_uuid(), '\x00', 'p-1', '130123', '130123002', code, code, 'dumping', 3, '倾倒建筑垃圾',
			now(), ST_PointOnSurface(geom), 0, 0, 1, true, false, ARRAY['aa','bb']
		 FROM grid.nodes WHERE code = '130123002004'`,
		`INSERT INTO cases.cases (id, report_id, violation_event_id, county_code, township_code, village_code, node_code,
			category, severity, location, reported_at, state, deadline)
		 SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), '130123', '130123002', code, code, 'dumping',
			'serious', ST_PointOnSurface(geom), now(), st, now() - interval '1 day'
		 FROM grid.nodes, (VALUES ('in_progress'), ('closed')) AS s(st) WHERE code = '130123002004'`,
		`INSERT INTO field.patrols (id, request_hash, inspector_id, county_code, started_at, ended_at, track, cell_codes)
		 SELECT gen_random_uuid(), '\x00', 'p-1', '130123', now() - interval '1 hour', now(),
			ST_MakeLine(ST_PointOnSurface(geom), ST_Centroid(geom)), ARRAY['130123002004']
		 FROM grid.nodes WHERE code = '130123002004'`,
	}
	for _, q := range seed {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("seeding: %v\n%s", err, q)
		}
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	role := "gis_test_" + hex.EncodeToString(rnd[:])
	if _, err := pool.Exec(ctx, `CREATE ROLE `+role+` LOGIN IN ROLE ecogrid_gis`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// The database is dropped after this (dbtest's cleanup runs later), so
		// the role owns nothing by then except grants inherited via membership.
		conn, err := pgx.Connect(ctx, dbtest.AdminURL())
		if err == nil {
			conn.Exec(ctx, `DROP ROLE IF EXISTS `+role) //nolint:errcheck
			conn.Close(ctx)
		}
	})
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	pu.User = url.User(role)
	s.gisURL = pu.String()
	port := pu.Port()
	if port == "" {
		port = "5432"
	}
	s.pg = "PG:host=" + pu.Hostname() + " port=" + port + " dbname=" + strings.TrimPrefix(pu.Path, "/") + " user=" + role
	return s
}

// TestGISRoleReadsViewsOnly: the role sees every view's rows and cannot
// write through them nor read a working table.
func TestGISRoleReadsViewsOnly(t *testing.T) {
	t.Parallel()
	s := newGISStack(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.gisURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	want := map[string]int{
		"gis.grid_current": s.nodes, "gis.grid_history": s.nodes, "gis.open_cases": 1,
		"gis.reports": 1, "gis.latest_patrols": 1, "gis.latest_track_points": 0,
	}
	for view, n := range want {
		var got int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+view).Scan(&got); err != nil {
			t.Fatalf("%s: %v", view, err)
		}
		if got != n {
			t.Errorf("%s: %d rows, want %d", view, got, n)
		}
	}
	var overdue bool
	var township, photos string
	if err := conn.QueryRow(ctx, `SELECT overdue, township_name FROM gis.open_cases`).Scan(&overdue, &township); err != nil {
		t.Fatal(err)
	}
	if !overdue || township == "" {
		t.Errorf("open case: overdue=%v township_name=%q, want an overdue case with its township's name", overdue, township)
	}
	if err := conn.QueryRow(ctx, `SELECT photos FROM gis.reports`).Scan(&photos); err != nil || photos != "aa,bb" {
		t.Errorf("report photos %q %v, want them as text", photos, err)
	}
	for _, q := range []string{
		`UPDATE gis.grid_history SET name = 'x'`,
		`DELETE FROM gis.reports`,
		`SELECT count(*) FROM grid.nodes`,
		`SELECT count(*) FROM auth.accounts`,
		`SELECT count(*) FROM ledger.records`,
	} {
		_, err := conn.Exec(ctx, q)
		var pgErr *pgconn.PgError
		// 42501: no privilege; 55000: a view over a join is not updatable at all.
		if !errors.As(err, &pgErr) || (pgErr.Code != "42501" && pgErr.Code != "55000") {
			t.Errorf("%s as the GIS role: %v, want it refused", q, err)
		}
	}
}

// TestGDALOpensViews opens every view with ogrinfo as QGIS would (GDAL's
// PostgreSQL driver) and copies two of them to a GeoPackage with ogr2ogr:
// each must have ogc_fid as its feature id, its geometry type and all rows.
func TestGDALOpensViews(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"ogrinfo", "ogr2ogr"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install Debian package gdal-bin (scripts/test.sh does)", tool)
		}
	}
	s := newGISStack(t)
	layers := []struct {
		name, geom string
		count      int
	}{
		{"gis.grid_current", "Multi Polygon", s.nodes},
		{"gis.grid_history", "Multi Polygon", s.nodes},
		{"gis.open_cases", "Point", 1},
		{"gis.reports", "Point", 1},
		{"gis.latest_patrols", "Line String", 1},
	}
	count := regexp.MustCompile(`Feature Count: (\d+)`)
	for _, l := range layers {
		out, err := exec.Command("ogrinfo", "-ro", "-so", s.pg, l.name).CombinedOutput()
		if err != nil {
			t.Fatalf("ogrinfo %s: %v\n%s", l.name, err, out)
		}
		text := string(out)
		m := count.FindStringSubmatch(text)
		if m == nil || m[1] != strconv.Itoa(l.count) {
			t.Errorf("%s: feature count %v, want %d\n%s", l.name, m, l.count, text)
		}
		if !strings.Contains(text, "FID Column = ogc_fid") {
			t.Errorf("%s: GDAL did not take ogc_fid as the feature id\n%s", l.name, text)
		}
		if !strings.Contains(text, "Geometry: "+l.geom) {
			t.Errorf("%s: want geometry %s\n%s", l.name, l.geom, text)
		}
		if !strings.Contains(text, "EPSG\",4326") && !strings.Contains(text, "EPSG:4326") && !strings.Contains(text, `ID["EPSG",4326]`) {
			t.Errorf("%s: no EPSG:4326 in the layer's SRS\n%s", l.name, text)
		}
	}
	gpkg := filepath.Join(t.TempDir(), "ecogrid.gpkg")
	for _, l := range []string{"gis.grid_current", "gis.reports"} {
		args := []string{"-f", "GPKG", gpkg, s.pg, l, "-nln", strings.TrimPrefix(l, "gis.")}
		if l != "gis.grid_current" {
			args = append([]string{"-update"}, args...)
		}
		if out, err := exec.Command("ogr2ogr", args...).CombinedOutput(); err != nil {
			t.Fatalf("ogr2ogr %s: %v\n%s", l, err, out)
		}
	}
	out, err := exec.Command("ogrinfo", "-ro", "-so", gpkg, "grid_current").CombinedOutput()
	if err != nil {
		t.Fatalf("ogrinfo gpkg: %v\n%s", err, out)
	}
	if m := count.FindStringSubmatch(string(out)); m == nil || m[1] != strconv.Itoa(s.nodes) {
		t.Errorf("GeoPackage grid_current: %v features, want %d\n%s", m, s.nodes, out)
	}
	out, err = exec.Command("ogrinfo", "-ro", "-al", gpkg, "reports").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "photos (String) = aa,bb") || !strings.Contains(string(out), "倾倒建筑垃圾") {
		t.Errorf("GeoPackage reports: %v\n%s", err, out)
	}
}
