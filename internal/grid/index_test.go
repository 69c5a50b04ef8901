package grid

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twpayne/go-geom"

	"ecogrid/internal/database"
	"ecogrid/internal/grid/demo"
	"ecogrid/migrations"
)

func loadedIndex(t testing.TB, s *Store) *Index {
	t.Helper()
	ix := NewIndex(s.pool, nil)
	if err := ix.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return ix
}

// TestIndexAgreesWithPostGIS compares Locate with ST_Covers on 20,000
// random points over and around the demo county.
func TestIndexAgreesWithPostGIS(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	importDemo(t, s)
	ix := loadedIndex(t, s)
	if ix.Len() != 161 {
		t.Fatalf("index has %d nodes", ix.Len())
	}
	reg := prometheus.NewRegistry()
	if err := ix.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		m := f.GetMetric()[0]
		got[f.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	if got["ecogrid_grid_index_nodes"] != 161 || got["ecogrid_grid_index_change_seq"] != float64(ix.Seq()) || got["ecogrid_grid_index_full_loads_total"] != 1 ||
		got["ecogrid_grid_index_staleness_seconds"] < 0 || got["ecogrid_grid_index_staleness_seconds"] > 60 {
		t.Fatalf("metrics %v", got)
	}
	r := rand.New(rand.NewPCG(7, 8))
	const n = 20000
	lats, lons := make([]float64, n), make([]float64, n)
	for i := range n {
		lons[i] = 114.38 + r.Float64()*0.40 // the county spans ~114.40–114.76
		lats[i] = 38.03 + r.Float64()*0.24  // and ~38.05–38.25
	}
	rows, err := s.pool.Query(context.Background(), `
		SELECT DISTINCT ON (p.i) p.i, n.code
		FROM unnest($1::float8[], $2::float8[]) WITH ORDINALITY AS p(lon, lat, i)
		JOIN grid.nodes n ON ST_Covers(n.geom, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326))
		ORDER BY p.i, n.level DESC, n.code`, lons, lats)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, n)
	for rows.Next() {
		var i int
		var code string
		if err := rows.Scan(&i, &code); err != nil {
			t.Fatal(err)
		}
		want[i-1] = code
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	inside := 0
	for i := range n {
		loc, ok := ix.Locate(lats[i], lons[i])
		got := ""
		if ok {
			got = loc.Cell.Code
			inside++
			if len(loc.Path) != 3 || loc.Path[0].Code != "130123" || loc.Path[1].Code != got[:9] || loc.Path[2] != loc.Cell {
				t.Fatalf("point %d: path %+v", i, loc.Path)
			}
		}
		if got != want[i] {
			t.Fatalf("point %d (%v, %v): index %q, PostGIS %q", i, lats[i], lons[i], got, want[i])
		}
	}
	if inside < n/2 || inside == n {
		t.Fatalf("%d of %d points inside: the sample does not straddle the county edge", inside, n)
	}
	t.Logf("%d points, %d inside the county, index and ST_Covers agree on all", n, inside)
}

// TestSharedEdgesResolveToOneCell: every vertex of every village (shared by
// up to four villages) is claimed by the half-open test of at most one
// village, Locate answers the same village every time, and ST_Covers
// agrees that village covers it.
func TestSharedEdgesResolveToOneCell(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	importDemo(t, s)
	ix := loadedIndex(t, s)
	snap := ix.snap.Load()
	var villages []*polyEntry
	snap.trees[LevelVillage].Scan(func(_, _ [2]float32, p *polyEntry) bool {
		villages = append(villages, p)
		return true
	})
	seen := map[[2]float64]bool{}
	checked := 0
	for _, v := range villages {
		for k := 0; k+1 < len(v.flat); k += 2 {
			x, y := v.flat[k], v.flat[k+1]
			if seen[[2]float64{x, y}] {
				continue
			}
			seen[[2]float64{x, y}] = true
			claims := 0
			for _, w := range villages {
				if in, _ := w.contains(x, y); in {
					claims++
				}
			}
			if claims > 1 {
				t.Fatalf("vertex %v,%v is inside %d villages", x, y, claims)
			}
			a, ok1 := ix.Locate(y, x)
			b, ok2 := ix.Locate(y, x)
			if !ok1 || !ok2 || a.Cell != b.Cell || a.Cell.Level != LevelVillage {
				t.Fatalf("vertex %v,%v: %v %v / %v", x, y, ok1, a.Cell, b.Cell)
			}
			if checked%50 == 0 { // ST_Covers and LocateAt on a sample, to keep the test quick
				past, ok, err := s.LocateAt(context.Background(), y, x, time.Now())
				if err != nil || !ok || past.Cell != a.Cell {
					t.Fatalf("vertex %v,%v: LocateAt(now) %v, index %v (%v)", x, y, past.Cell, a.Cell, err)
				}
				var covers bool
				if err := s.pool.QueryRow(context.Background(), `SELECT ST_Covers(geom, ST_SetSRID(ST_MakePoint($1, $2), 4326)) FROM grid.nodes WHERE id = $3`, x, y, a.Cell.ID).Scan(&covers); err != nil || !covers {
					t.Fatalf("vertex %v,%v: ST_Covers(%s) = %v %v", x, y, a.Cell.Code, covers, err)
				}
			}
			checked++
		}
	}
	t.Logf("%d distinct vertices each resolved to exactly one village", checked)
}

func TestHolesAreRespected(t *testing.T) {
	s := &snapshot{trees: map[Level]*boxTree{}, nodes: map[uuid.UUID]*indexNode{}}
	county, village := uuid.New(), uuid.New()
	square := func(x0, y0, x1, y1 float64) []float64 {
		return []float64{x0, y0, x1, y0, x1, y1, x0, y1, x0, y0}
	}
	outer := geom.NewMultiPolygon(geom.XY)
	_ = outer.Push(geom.NewPolygonFlat(geom.XY, square(0, 0, 10, 10), []int{10}))
	s.insert(Ref{ID: county, Code: "130123", Level: LevelCounty}, uuid.Nil, outer)
	// A village shaped like a frame: a hole in the middle, and a second
	// polygon (an exclave) inside the hole's hole-free neighbour.
	frame := geom.NewMultiPolygon(geom.XY)
	_ = frame.Push(geom.NewPolygonFlat(geom.XY, append(square(1, 1, 5, 5), square(2, 2, 4, 4)...), []int{10, 20}))
	_ = frame.Push(geom.NewPolygonFlat(geom.XY, square(7, 7, 8, 8), []int{10}))
	s.insert(Ref{ID: village, Code: "130123001001", Level: LevelVillage}, county, frame)
	s.setLevels()
	ix := &Index{}
	ix.snap.Store(s)
	for _, tc := range []struct {
		lat, lon float64
		want     string
	}{
		{1.5, 1.5, "130123001001"}, // in the frame
		{3, 3, "130123"},           // in the hole: only the county
		{7.5, 7.5, "130123001001"}, // in the exclave
		{9, 9, "130123"},
		{2, 3, "130123001001"}, // on the hole's south edge: owned by the frame (half-open)
		{11, 11, ""},
	} {
		loc, ok := ix.Locate(tc.lat, tc.lon)
		if got := loc.Cell.Code; got != tc.want || ok != (tc.want != "") {
			t.Errorf("Locate(%v, %v) = %q, want %q", tc.lat, tc.lon, got, tc.want)
		}
	}
	// Points on the county's outer boundary are located (edge fallback).
	if loc, ok := ix.Locate(10, 5); !ok || loc.Cell.Code != "130123" {
		t.Errorf("point on the north border: %v %v", loc, ok)
	}
}

// TestReplicasSeeChanges: two indexes on separate pools (two gridd
// replicas) see a write through a third pool via LISTEN/NOTIFY alone (the
// poll fallback is set to an hour).
func TestReplicasSeeChanges(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var replicas []*Index
	for range 2 {
		pool, err := database.Open(ctx, database.Config{URL: s.pool.Config().ConnString()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		ix := NewIndex(pool, nil)
		ix.PollInterval = time.Hour
		done := make(chan struct{})
		go func() { defer close(done); _ = ix.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		replicas = append(replicas, ix)
	}
	waitFor := func(what string, cond func(*Index) bool) {
		t.Helper()
		start := time.Now()
		for _, ix := range replicas {
			for !cond(ix) {
				if time.Since(start) > 15*time.Second {
					t.Fatalf("replica did not see %s", what)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		t.Logf("%s seen by both replicas after %v", what, time.Since(start))
	}
	for _, ix := range replicas {
		<-ix.Ready() // loaded, after LISTEN
	}
	importDemo(t, s)
	waitFor("the import", func(ix *Index) bool { return ix.Len() == 161 })
	nodes := demo.CountyNodes()
	nodes[find(nodes, "130123001001")].Name = "新名村"
	if _, err := s.ImportGeoJSON(ctx, bytes.NewReader(demo.FeatureCollection(nodes)), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	v, _ := s.NodeByCode(ctx, "130123001001")
	waitFor("the rename", func(ix *Index) bool { r, ok := ix.Node(v.ID); return ok && r.Name == "新名村" })
	// Locate reflects it.
	var probe [2]float64
	for _, n := range nodes {
		if n.Code == "130123001001" {
			probe = [2]float64{(n.Ring[0][0] + n.Ring[len(n.Ring)/2][0]) / 2, (n.Ring[0][1] + n.Ring[len(n.Ring)/2][1]) / 2}
		}
	}
	if loc, ok := replicas[1].Locate(probe[1], probe[0]); !ok || loc.Cell.Name != "新名村" || loc.Path[2].Name != "新名村" {
		t.Fatalf("locate after rename: %+v", loc)
	}
	// The listeners' connections are cut (a database restart, a proxy
	// timeout): the replicas reconnect and catch up.
	tag, err := s.pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`)
	if err != nil || tag.RowsAffected() != 2 {
		t.Fatalf("terminating listeners: %v rows, %v", tag.RowsAffected(), err)
	}
	// Renaming a township rebuilds the paths of its villages.
	nodes[find(nodes, "130123001")].Name = "新城镇"
	if _, err := s.ImportGeoJSON(ctx, bytes.NewReader(demo.FeatureCollection(nodes)), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("the township rename", func(ix *Index) bool {
		loc, ok := ix.Locate(probe[1], probe[0])
		return ok && loc.Path[1].Name == "新城镇" && loc.Cell.Name == "新名村"
	})
}

// TestWriteLockKeyMatchesTrigger: the store and the grid.nodes trigger
// serialise writers on the same advisory lock.
func TestWriteLockKeyMatchesTrigger(t *testing.T) {
	b, err := fs.ReadFile(migrations.FS, "00012_grid_change_order.sql")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), fmt.Sprintf("pg_advisory_xact_lock(%d)", int64(writeLockKey))) {
		t.Fatalf("the trigger's lock key is not %d", int64(writeLockKey))
	}
}

// TestChangeSeqFollowsCommitOrder: a writer that bypasses the store (plain
// SQL) still waits for a concurrent grid write, so a change_seq taken
// earlier is never committed after a later one.
func TestChangeSeqFollowsCommitOrder(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	importDemo(t, s)
	a, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Rollback(ctx)
	if _, err := a.Exec(ctx, `UPDATE grid.nodes SET tasks = '[]' WHERE code = '130123001001'`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.pool.Exec(ctx, `UPDATE grid.nodes SET tasks = '[]' WHERE code = '130123002001'`)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a second writer went ahead while the first was open: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var first, second int64
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT change_seq FROM grid.nodes WHERE code = '130123001001'), (SELECT change_seq FROM grid.nodes WHERE code = '130123002001')`).Scan(&first, &second); err != nil {
		t.Fatal(err)
	}
	if first >= second {
		t.Fatalf("change_seq %d committed first, %d second", first, second)
	}
}

// TestFloat32BoxesNeverLoseACandidate: the R-tree's float32 boxes are
// rounded outwards, so a box containing a point in float64 always
// intersects the point's float32 box.
func TestFloat32BoxesNeverLoseACandidate(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 200_000 {
		x := 73 + r.Float64()*62
		y := 18 + r.Float64()*36
		if d, u := down32(x), up32(x); float64(d) > x || float64(u) < x {
			t.Fatalf("%v rounds to [%v, %v]", x, d, u)
		}
		// A box whose edge is exactly at the point, or within an ulp.
		minB := [2]float64{x - r.Float64()*1e-9, y}
		maxB := [2]float64{x, y + r.Float64()*1e-9}
		lo, hi := outerBox(minB, maxB)
		plo, phi := pointBox(x, y)
		if lo[0] > phi[0] || hi[0] < plo[0] || lo[1] > phi[1] || hi[1] < plo[1] {
			t.Fatalf("box %v-%v containing %v,%v lost: %v-%v vs %v-%v", minB, maxB, x, y, lo, hi, plo, phi)
		}
	}
}
