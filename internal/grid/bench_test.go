package grid

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twpayne/go-geom"

	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/grid/demo"
)

// bulkLoad writes generated nodes straight into grid.nodes with COPY (no
// validation: the generator tiles exactly), for benchmarks at national
// scale where an import's checks are not what is measured.
func bulkLoad(tb testing.TB, pool *pgxpool.Pool, nodes []demo.Node) (vertices int) {
	tb.Helper()
	ids := make(map[string]uuid.UUID, len(nodes))
	rows := make([][]any, 0, len(nodes))
	now := time.Now()
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
		vertices += len(n.Ring)
		mp := geom.NewMultiPolygon(geom.XY).SetSRID(4326)
		_ = mp.Push(geom.NewPolygonFlat(geom.XY, flat, []int{len(flat)}))
		rows = append(rows, []any{id, n.Code[:6], n.Code, int16(n.Level), n.Name, parent, mp, 0.0, now})
	}
	ctx := context.Background()
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"grid", "nodes"},
		[]string{"id", "county_code", "code", "level", "name", "parent_id", "geom", "area_ha", "valid_from"}, pgx.CopyFromRows(rows))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE grid.nodes`); err != nil {
		tb.Fatal(err)
	}
	return vertices
}

// BenchmarkLocate compares LocatePoint through the in-memory index with the
// same question to PostGIS (ST_Covers on the GiST index, over pgx, one
// connection) on the same data: the demo county (150 villages) and a
// national-scale tiling (200,000 villages). It reports ns/op and the p99
// latency of single lookups, the index's heap bytes per polygon vertex and
// its load time from the database. Runs only under -bench:
//
//	go test -run '^$' -bench BenchmarkLocate -benchtime 2s ./internal/grid/
func BenchmarkLocate(b *testing.B) {
	for _, tc := range []struct {
		name  string
		nodes func() []demo.Node
	}{
		{"villages=150", demo.CountyNodes},
		{"villages=200000", func() []demo.Node { return demo.National(200_000, 2) }},
	} {
		pool := dbtest.NewPool(b)
		nodes := tc.nodes()
		vertices := bulkLoad(b, pool, nodes)
		minX, minY, maxX, maxY := bbox(nodes)
		s := NewStore(pool, Config{})

		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		ix := NewIndex(pool, nil)
		start := time.Now()
		if err := ix.Load(context.Background()); err != nil {
			b.Fatal(err)
		}
		load := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		bytesPerVertex := float64(after.HeapAlloc-before.HeapAlloc) / float64(vertices)
		b.Logf("%s: %d nodes, %d vertices, index load %v, %.1f heap bytes per vertex", tc.name, len(nodes), vertices, load, bytesPerVertex)

		r := rand.New(rand.NewPCG(1, 1))
		pts := make([][2]float64, 1<<16)
		for i := range pts {
			pts[i] = [2]float64{minY + r.Float64()*(maxY-minY), minX + r.Float64()*(maxX-minX)}
		}
		b.Run(tc.name+"/index", func(b *testing.B) {
			found := 0
			cpu0 := processCPU()
			n := 0
			for i := 0; b.Loop(); i++ {
				n++
				p := pts[i&(len(pts)-1)]
				if _, ok := ix.Locate(p[0], p[1]); ok {
					found++
				}
			}
			b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(n), "cpu_ns/op")
			if found == 0 {
				b.Fatal("no point located")
			}
			// Latency distribution of single lookups, outside the timed loop.
			lat := make([]time.Duration, 200_000)
			for i := range lat {
				p := pts[(i*7919)&(len(pts)-1)]
				t0 := time.Now()
				ix.Locate(p[0], p[1])
				lat[i] = time.Since(t0)
			}
			reportLatency(b, lat)
			b.ReportMetric(bytesPerVertex, "heapB/vertex")
			b.ReportMetric(load.Seconds(), "load_s")
		})
		b.Run(tc.name+"/postgis", func(b *testing.B) {
			conn, err := pool.Acquire(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Release()
			var backend int
			if err := conn.QueryRow(context.Background(), `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			cpu0, bcpu0 := processCPU(), backendCPU(backend)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := pts[i&(len(pts)-1)]
				t0 := time.Now()
				if _, _, err := s.LocateSQL(context.Background(), conn, p[0], p[1]); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			reportLatency(b, lat)
			// CPU of both ends: this process (pgx) and the PostgreSQL backend.
			cpu := (processCPU() - cpu0) + (backendCPU(backend) - bcpu0)
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu_ns/op")
		})
	}
}

// processCPU is the user+system CPU time of this process (all threads,
// GC included): with other work on the machine, CPU per lookup is the fair
// "lookups per second per core" measure.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU is the user+system CPU time of a local PostgreSQL backend
// from /proc (clock ticks of 10 ms; benchmarks run long enough).
func backendCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are 14 and 15.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50_ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99_ns")
}

func bbox(nodes []demo.Node) (minX, minY, maxX, maxY float64) {
	minX, minY, maxX, maxY = 180, 90, -180, -90
	for _, n := range nodes {
		for _, c := range n.Ring {
			minX, maxX = min(minX, c[0]), max(maxX, c[0])
			minY, maxY = min(minY, c[1]), max(maxY, c[1])
		}
	}
	return
}

// BenchmarkLocateParallel is the index under concurrent load (all cores),
// to show Locate takes no lock.
func BenchmarkLocateParallel(b *testing.B) {
	pool := dbtest.NewPool(b)
	nodes := demo.CountyNodes()
	bulkLoad(b, pool, nodes)
	ix := NewIndex(pool, nil)
	if err := ix.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	minX, minY, maxX, maxY := bbox(nodes)
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
		for pb.Next() {
			ix.Locate(minY+r.Float64()*(maxY-minY), minX+r.Float64()*(maxX-minX))
		}
	})
}
