package waters_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"

	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/waters"
)

// syntheticReaches scatters n meandering river reaches of about 3 km (31
// vertices) over a 2° × 2° square (a prefecture's worth of rivers around
// 38°N), plus one reservoir in ten as a polygon.
func syntheticReaches(n int) []waters.Reach {
	r := rand.New(rand.NewPCG(7, 7))
	out := make([]waters.Reach, n)
	for i := range out {
		x, y := 113.5+r.Float64()*2, 37.0+r.Float64()*2
		var g geom.T
		if i%10 == 9 {
			w, h := 0.005+r.Float64()*0.01, 0.004+r.Float64()*0.008
			g = geom.NewMultiPolygonFlat(geom.XY, []float64{x, y, x + w, y, x + w, y + h, x, y + h, x, y}, [][]int{{10}}).SetSRID(4326)
		} else {
			heading := r.Float64() * 2 * math.Pi
			flat := make([]float64, 0, 62)
			for k := 0; k <= 30; k++ {
				flat = append(flat, x, y)
				heading += (r.Float64() - 0.5) * 0.6
				x += 0.0012 * math.Cos(heading)
				y += 0.0009 * math.Sin(heading)
			}
			g = geom.NewMultiLineStringFlat(geom.XY, flat, []int{62}).SetSRID(4326)
		}
		out[i] = waters.Reach{ID: uuid.New(), Code: fmt.Sprintf("R%05d", i), Name: "reach", BodyCode: "B", BodyKind: waters.KindRiver, Geometry: g, NodeCode: "130123", Version: 1}
	}
	return out
}

// processCPU is the user+system CPU time of this process (the benchmarks
// run on one goroutine, so it is the benchmark's CPU time despite others'
// load on the machine).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) }
	b.ReportMetric(q(0.5), "p50_ns")
	b.ReportMetric(q(0.99), "p99_ns")
	b.ReportMetric(q(0.999), "p999_ns")
}

// loadReaches writes the synthetic reaches straight into the table (the
// importer's checks are not what is measured).
func loadReaches(b *testing.B, reaches []waters.Reach) *env {
	pool := dbtest.NewPool(b)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO waters.bodies (code, county_code, kind, name) VALUES ('B', '130123', 'river', 'b')`); err != nil {
		b.Fatal(err)
	}
	batch := &pgx.Batch{}
	for _, r := range reaches {
		batch.Queue(`INSERT INTO waters.reaches (id, code, version, body_code, name, county_code, node_id, node_code, node_level, geom, valid_from)
			VALUES ($1, $2, 1, 'B', 'reach', '130123', $1, '130123', 1, $3, now())`, r.ID, r.Code, r.Geometry)
	}
	if err := pool.SendBatch(ctx, batch).Close(); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE waters.reaches`); err != nil {
		b.Fatal(err)
	}
	return &env{pool: pool}
}

// BenchmarkReachesNear: point → reaches within 50 m among 5,000 reaches,
// the index beside PostGIS (ST_DWithin on geography, GiST) in one run.
// Points are drawn half on or near a reach, half anywhere.
func BenchmarkReachesNear(b *testing.B) {
	reaches := syntheticReaches(5000)
	ix := waters.Build(reaches)
	r := rand.New(rand.NewPCG(1, 1))
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
	b.Run("reaches=5000/index", func(b *testing.B) {
		found, n, cpu0 := 0, 0, processCPU()
		for i := 0; b.Loop(); i++ {
			p := pts[i&(len(pts)-1)]
			found += len(ix.ReachesNear(p[0], p[1], 50))
			n++
		}
		b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(n), "cpu_ns/op")
		if found == 0 {
			b.Fatal("nothing found")
		}
		lat := make([]time.Duration, 100_000)
		for i := range lat {
			p := pts[(i*7919)&(len(pts)-1)]
			t0 := time.Now()
			ix.ReachesNear(p[0], p[1], 50)
			lat[i] = time.Since(t0)
		}
		reportLatency(b, lat)
	})
	e := loadReaches(b, reaches)
	b.Run("reaches=5000/postgis", func(b *testing.B) {
		ctx := context.Background()
		conn, err := e.pool.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Release()
		var lat []time.Duration
		for i := 0; b.Loop(); i++ {
			p := pts[i&(len(pts)-1)]
			t0 := time.Now()
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

func lines0(g geom.T) []float64 {
	switch t := g.(type) {
	case *geom.MultiLineString:
		return t.FlatCoords()
	case *geom.MultiPolygon:
		return t.FlatCoords()
	}
	return nil
}

// BenchmarkCoverage: a 2,000-point track (one fix per ~5 m, following a
// 10 km reach of 201 vertices at 20 m, with 10 m of GPS noise) against the
// reach, pure Go beside PostGIS (ST_Intersection with ST_Buffer of the
// track on geography).
func BenchmarkCoverage(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 5))
	var reach [][2]float64
	x, y, heading := 114.45, 38.15, 0.0
	for k := 0; k <= 200; k++ {
		reach = append(reach, [2]float64{x, y})
		heading += (r.Float64() - 0.5) * 0.4
		x += 0.00057 * math.Cos(heading)
		y += 0.00045 * math.Sin(heading)
	}
	ml := multiLine(reach)
	var track [][2]float64
	for len(track) < 2000 {
		i := len(track) / 10
		a, c := reach[i], reach[min(i+1, len(reach)-1)]
		f := float64(len(track)%10) / 10
		track = append(track, [2]float64{a[1] + f*(c[1]-a[1]) + (r.Float64()-0.5)*0.0002, a[0] + f*(c[0]-a[0]) + (r.Float64()-0.5)*0.00025})
	}
	var got waters.CoverageResult
	b.Run("points=2000/go", func(b *testing.B) {
		cpu0, n := processCPU(), 0
		for b.Loop() {
			got = waters.Coverage(ml, track, 50)
			n++
		}
		b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(n), "cpu_ns/op")
		b.ReportMetric(got.Share, "share")
	})
	pool := dbtest.NewPool(b)
	e := &env{pool: pool}
	b.Run("points=2000/postgis", func(b *testing.B) {
		var length, covered float64
		for b.Loop() {
			length, covered = e.postgisCoverage(&testing.T{}, ml, track, 50)
		}
		b.ReportMetric(covered/length, "share")
	})
}
