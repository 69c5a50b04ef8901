package zones

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom"

	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/demo"
)

// syntheticZones makes n zones over the box: wiggled rings of 16 to 64
// vertices, 2 to 20 km across, every tenth with a hole (a level-1 zone
// cut out of a level-2 one), kinds in turn.
func syntheticZones(n int, minX, minY, maxX, maxY float64) []Zone {
	r := rand.New(rand.NewPCG(18, 18))
	out := make([]Zone, 0, n)
	from := time.Now().Add(-time.Hour)
	for i := range n {
		cx, cy := minX+r.Float64()*(maxX-minX), minY+r.Float64()*(maxY-minY)
		rad := 0.01 + r.Float64()*0.09
		outer := ring(cx, cy, rad, 16+r.IntN(49), uint64(i))
		flat := make([]float64, 0, 2*len(outer))
		for _, p := range outer {
			flat = append(flat, p[0], p[1])
		}
		ends := []int{len(flat)}
		if i%10 == 0 {
			for _, p := range reverse(ring(cx, cy, rad/3, 12, uint64(i)+1e6)) {
				flat = append(flat, p[0], p[1])
			}
			ends = append(ends, len(flat))
		}
		mp := geom.NewMultiPolygon(geom.XY).SetSRID(4326)
		_ = mp.Push(geom.NewPolygonFlat(geom.XY, flat, ends))
		out = append(out, Zone{CountyCode: "130123", Code: fmt.Sprintf("Z-%05d", i), Version: 1, Kind: BuiltinKinds[i%len(BuiltinKinds)].Kind,
			Name: fmt.Sprintf("zone %d", i), Geometry: mp, ValidFrom: from})
	}
	return out
}

func copyZones(tb testing.TB, pool *pgxpool.Pool, zs []Zone) {
	tb.Helper()
	rows := make([][]any, 0, len(zs))
	for _, z := range zs {
		rows = append(rows, []any{z.CountyCode, z.Code, int32(z.Version), string(z.Kind), z.Name, "", z.Geometry, z.ValidFrom})
	}
	ctx := context.Background()
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"zones", "zones"}, []string{"county_code", "code", "version", "kind", "name", "legal_basis", "geom", "valid_from"}, pgx.CopyFromRows(rows)); err != nil {
		tb.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE zones.zones`); err != nil {
		tb.Fatal(err)
	}
}

// copyVillages writes a synthetic national grid straight into grid.nodes
// (test support only: the grid's own benchmark does the same), so that the
// cell lookup runs beside the zones on the same data.
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

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50_ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99_ns")
	b.ReportMetric(float64(lat[len(lat)*999/1000].Nanoseconds()), "p999_ns")
}

// BenchmarkZonesAt answers "which zones contain this point" (and "which
// cell and which zones", the question a report asks) from the in-memory
// indexes and from PostGIS (ST_Covers on the GiST indexes, one pgx
// connection) on the same data: 20,000 zones over China and the grid's
// synthetic 200,000 villages. p99 is of single lookups timed one by one.
// Run on one core:
//
//	go test -run '^$' -bench BenchmarkZonesAt -cpu 1 -benchtime 2s ./internal/zones/
func BenchmarkZonesAt(b *testing.B) {
	ctx := context.Background()
	pool := dbtest.NewPool(b)
	villages := demo.National(200_000, 2)
	minX, minY, maxX, maxY := 180.0, 90.0, -180.0, -90.0
	for _, n := range villages {
		for _, c := range n.Ring {
			minX, maxX, minY, maxY = min(minX, c[0]), max(maxX, c[0]), min(minY, c[1]), max(maxY, c[1])
		}
	}
	copyVillages(b, pool, villages)
	zs := syntheticZones(20_000, minX, minY, maxX, maxY)
	copyZones(b, pool, zs)
	gix := grid.NewIndex(pool, nil)
	if err := gix.Load(ctx); err != nil {
		b.Fatal(err)
	}
	zix := NewIndex(pool, nil)
	start := time.Now()
	if err := zix.Load(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d villages, %d zones over %.0f–%.0f°E %.0f–%.0f°N; zone index load %v", len(villages), zix.Len(), minX, maxX, minY, maxY, time.Since(start))
	gridStore := grid.NewStore(pool, grid.Config{})
	r := rand.New(rand.NewPCG(1, 1))
	pts := make([][2]float64, 1<<16)
	for i := range pts {
		pts[i] = [2]float64{minY + r.Float64()*(maxY-minY), minX + r.Float64()*(maxX-minX)}
	}
	now := time.Now()
	inZone := 0
	for _, p := range pts[:2000] { // the index answers what PostGIS answers
		got := codesOf(zix.ZonesAt(p[0], p[1]))
		ref, err := ZonesAtSQL(ctx, pool, p[0], p[1], now)
		if err != nil {
			b.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(codesOf(ref)) {
			b.Fatalf("at %v: index %v, PostGIS %v", p, got, codesOf(ref))
		}
		if len(got) > 0 {
			inZone++
		}
	}
	b.Logf("%d of 2000 random points lie in a zone; index and PostGIS agree on all", inZone)
	timed := func(b *testing.B, lookup func(p [2]float64)) {
		runtime.GC()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			lookup(pts[i&(len(pts)-1)])
		}
		b.StopTimer()
		lat := make([]time.Duration, 100_000)
		for i := range lat {
			p := pts[(i*7919)&(len(pts)-1)]
			t0 := time.Now()
			lookup(p)
			lat[i] = time.Since(t0)
		}
		reportLatency(b, lat)
	}
	b.Run("zones/index", func(b *testing.B) { timed(b, func(p [2]float64) { zix.ZonesAt(p[0], p[1]) }) })
	b.Run("cell+zones/index", func(b *testing.B) {
		timed(b, func(p [2]float64) {
			gix.Locate(p[0], p[1])
			zix.ZonesAt(p[0], p[1])
		})
	})
	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	sqlTimed := func(b *testing.B, lookup func(p [2]float64) error) {
		lat := make([]time.Duration, 0, 1024)
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			t0 := time.Now()
			if err := lookup(pts[i&(len(pts)-1)]); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(t0))
		}
		b.StopTimer()
		reportLatency(b, lat)
	}
	b.Run("zones/postgis", func(b *testing.B) {
		sqlTimed(b, func(p [2]float64) error { _, err := ZonesAtSQL(ctx, conn, p[0], p[1], now); return err })
	})
	b.Run("cell+zones/postgis", func(b *testing.B) {
		sqlTimed(b, func(p [2]float64) error {
			if _, _, err := gridStore.LocateSQL(ctx, conn, p[0], p[1]); err != nil {
				return err
			}
			_, err := ZonesAtSQL(ctx, conn, p[0], p[1], now)
			return err
		})
	})
}
