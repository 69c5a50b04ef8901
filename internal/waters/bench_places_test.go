package waters_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom"

	"ecogrid/internal/grid"
	"ecogrid/internal/grid/demo"
	"ecogrid/internal/waters"
)

// copyVillages writes a synthetic national grid straight into grid.nodes
// (test support only, as the grid's and the zones' benchmarks do), so the
// cell lookup runs beside the reaches on the same data.
func copyVillages(tb testing.TB, pool *pgxpool.Pool, nodes []demo.Node) {
	tb.Helper()
	ids := make(map[string]uuid.UUID, len(nodes))
	rows := make([][]any, 0, len(nodes))
	now := time.Now().Add(-time.Hour)
	for _, n := range nodes {
		id := uuid.New()
		ids[n.Code] = id
		var parent *uuid.UUID
		if n.Level > 1 {
			p := ids[n.Code[:len(n.Code)-3]]
			parent = &p
		}
		flat := make([]float64, 0, 2*len(n.Ring))
		for _, c := range n.Ring {
			flat = append(flat, c[0], c[1])
		}
		mp := geom.NewMultiPolygon(geom.XY).SetSRID(4326)
		_ = mp.Push(geom.NewPolygonFlat(geom.XY, flat, []int{len(flat)}))
		rows = append(rows, []any{id, n.Code[:6], n.Code, int16(n.Level), n.Name, parent, mp, 0.0, now})
	}
	ctx := context.Background()
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"grid", "nodes"},
		[]string{"id", "county_code", "code", "level", "name", "parent_id", "geom", "area_ha", "valid_from"}, pgx.CopyFromRows(rows)); err != nil {
		tb.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE grid.nodes`); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkCellAndReachesNear is the lookup a report makes (issue 17):
// point → grid cell + the reaches within 50 m, among 200,000 villages (the
// grid's synthetic national tiling) and 5,000 reaches, from the in-memory
// grid and reach indexes beside PostGIS (the grid's ST_Covers lookup and
// ST_DWithin on geography, one connection) in the same run. Points are
// drawn half on or near a reach, half anywhere in the reaches' square;
// p99 is of single lookups timed one by one. Run on one core:
//
//	go test -run '^$' -bench BenchmarkCellAndReachesNear -cpu 1 -benchtime 2s ./internal/waters/
func BenchmarkCellAndReachesNear(b *testing.B) {
	ctx := context.Background()
	reaches := syntheticReaches(5000)
	e := loadReaches(b, reaches)
	villages := demo.National(200_000, 2)
	copyVillages(b, e.pool, villages)
	gix := grid.NewIndex(e.pool, nil)
	if err := gix.Load(ctx); err != nil {
		b.Fatal(err)
	}
	rix := waters.Build(reaches)
	gridStore := grid.NewStore(e.pool, grid.Config{})
	r := rand.New(rand.NewPCG(3, 3))
	pts := make([][2]float64, 1<<14)
	for i := range pts {
		if i%2 == 0 {
			f := lines0(reaches[r.IntN(len(reaches))].Geometry)
			k := 2 * r.IntN(len(f)/2)
			pts[i] = [2]float64{f[k+1] + (r.Float64()-0.5)*0.001, f[k] + (r.Float64()-0.5)*0.001}
		} else {
			pts[i] = [2]float64{37.0 + r.Float64()*2, 113.5 + r.Float64()*2}
		}
	}
	cells, near := 0, 0
	for _, p := range pts[:2000] {
		if _, ok := gix.Locate(p[0], p[1]); ok {
			cells++
		}
		if len(rix.ReachesNear(p[0], p[1], 50)) > 0 {
			near++
		}
	}
	b.Logf("%d grid nodes (200,000 villages), %d reaches; of 2000 points %d lie in a village, %d within 50 m of a reach", len(villages), len(reaches), cells, near)
	if cells != 2000 || near == 0 {
		b.Fatal("the points miss the grid or the reaches")
	}
	b.Run("cell+reaches/index", func(b *testing.B) {
		runtime.GC()
		n, cpu0 := 0, processCPU()
		for i := 0; b.Loop(); i++ {
			p := pts[i&(len(pts)-1)]
			gix.Locate(p[0], p[1])
			rix.ReachesNear(p[0], p[1], 50)
			n++
		}
		b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(n), "cpu_ns/op")
		b.StopTimer()
		lat := make([]time.Duration, 100_000)
		for i := range lat {
			p := pts[(i*7919)&(len(pts)-1)]
			t0 := time.Now()
			gix.Locate(p[0], p[1])
			rix.ReachesNear(p[0], p[1], 50)
			lat[i] = time.Since(t0)
		}
		reportLatency(b, lat)
	})
	b.Run("cell+reaches/postgis", func(b *testing.B) {
		conn, err := e.pool.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Release()
		var lat []time.Duration
		for i := 0; b.Loop(); i++ {
			p := pts[i&(len(pts)-1)]
			t0 := time.Now()
			if _, _, err := gridStore.LocateSQL(ctx, conn, p[0], p[1]); err != nil {
				b.Fatal(err)
			}
			rows, err := conn.Query(ctx, `SELECT code FROM waters.reaches
				WHERE valid_to IS NULL AND geom && ST_Expand(ST_SetSRID(ST_MakePoint($2, $1), 4326), 0.001)
				  AND ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography, 50)`, p[0], p[1])
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
			}
			rows.Close()
			lat = append(lat, time.Since(t0))
		}
		reportLatency(b, lat)
	})
}
