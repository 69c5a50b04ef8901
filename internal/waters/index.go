package waters

import (
	"context"
	"log/slog"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/rtree"
	"github.com/twpayne/go-geom"
)

// Index answers "which current reaches are within d metres of this point"
// from memory: every segment of every reach line and shore sits in an
// R-tree, areas too for "inside the reservoir". A snapshot is replaced
// whole on reload, so lookups never lock. PostGIS (ST_DWithin on
// geography) is the reference in the tests.
type Index struct {
	store    *Store
	log      *slog.Logger
	interval time.Duration
	snap     atomic.Pointer[reachSnapshot]
	mu       sync.Mutex // serialises loads
	ready    chan struct{}
	once     sync.Once
}

type reachSnapshot struct {
	reaches  []Reach
	segs     rtree.RTreeGN[float64, int32] // segment boxes → index into segments
	segments []segment
	areas    rtree.RTreeGN[float64, int32] // polygon boxes → index into polys
	polys    []areaPart
	version  string
}

type segment struct {
	reach          int32
	x0, y0, x1, y1 float64
}

type areaPart struct {
	reach int32
	poly  *geom.Polygon
}

// NewIndex returns an empty index over the store's current reaches; Load
// fills it, Run keeps it current.
func NewIndex(store *Store, logger *slog.Logger) *Index {
	if logger == nil {
		logger = slog.Default()
	}
	ix := &Index{store: store, log: logger, interval: 30 * time.Second, ready: make(chan struct{})}
	ix.snap.Store(&reachSnapshot{})
	return ix
}

// Len is the number of reaches indexed.
func (ix *Index) Len() int { return len(ix.snap.Load().reaches) }

// Ready is closed after the first load.
func (ix *Index) Ready() <-chan struct{} { return ix.ready }

// Load replaces the index with the current reaches.
func (ix *Index) Load(ctx context.Context) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	version, err := ix.store.reachesVersion(ctx)
	if err != nil {
		return err
	}
	reaches, err := ix.store.CurrentReaches(ctx, "")
	if err != nil {
		return err
	}
	s := buildSnapshot(reaches)
	s.version = version
	ix.snap.Store(s)
	ix.once.Do(func() { close(ix.ready) })
	return nil
}

// Build returns an index over the given reaches, without a store (tests,
// benchmarks, tools).
func Build(reaches []Reach) *Index {
	ix := NewIndex(nil, nil)
	ix.snap.Store(buildSnapshot(reaches))
	ix.once.Do(func() { close(ix.ready) })
	return ix
}

func buildSnapshot(reaches []Reach) *reachSnapshot {
	s := &reachSnapshot{reaches: reaches}
	for i, r := range reaches {
		for _, f := range lines(r.Geometry) {
			for k := 0; k+3 < len(f); k += 2 {
				sg := segment{reach: int32(i), x0: f[k], y0: f[k+1], x1: f[k+2], y1: f[k+3]}
				s.segments = append(s.segments, sg)
				s.segs.Insert([2]float64{math.Min(sg.x0, sg.x1), math.Min(sg.y0, sg.y1)}, [2]float64{math.Max(sg.x0, sg.x1), math.Max(sg.y0, sg.y1)}, int32(len(s.segments)-1))
			}
		}
		if mp, ok := r.Geometry.(*geom.MultiPolygon); ok {
			for j := 0; j < mp.NumPolygons(); j++ {
				p := mp.Polygon(j)
				b := p.Bounds()
				s.polys = append(s.polys, areaPart{reach: int32(i), poly: p})
				s.areas.Insert([2]float64{b.Min(0), b.Min(1)}, [2]float64{b.Max(0), b.Max(1)}, int32(len(s.polys)-1))
			}
		}
	}
	return s
}

// Run reloads the index when the reaches change (another replica
// imported), checking every interval, until ctx ends.
func (ix *Index) Run(ctx context.Context) error {
	if err := ix.Load(ctx); err != nil {
		return err
	}
	t := time.NewTicker(ix.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		v, err := ix.store.reachesVersion(ctx)
		if err != nil {
			ix.log.Warn("reach index: checking for changes failed", "error", err)
			continue
		}
		if v != ix.snap.Load().version {
			if err := ix.Load(ctx); err != nil {
				ix.log.Warn("reach index: reload failed", "error", err)
			}
		}
	}
}

// reachesVersion changes whenever a reach version is added or ended.
func (s *Store) reachesVersion(ctx context.Context) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `SELECT count(*)::text || '/' || coalesce(max(created_at)::text, '') || '/' || count(valid_to)::text FROM waters.reaches`).Scan(&v)
	return v, err
}

// NearReach is a reach and its distance from the point asked about.
type NearReach struct {
	Reach     Reach
	DistanceM float64
}

// ReachesNear returns the current reaches within meters of a WGS-84 point,
// nearest first (0 m: on the line or inside the area). Field attaches a
// report to the first.
func (ix *Index) ReachesNear(lat, lon, meters float64) []Reach {
	near := ix.Near(lat, lon, meters)
	if len(near) == 0 {
		return nil
	}
	out := make([]Reach, len(near))
	for i, n := range near {
		out[i] = n.Reach
	}
	return out
}

// Near is ReachesNear with the distances.
func (ix *Index) Near(lat, lon, meters float64) []NearReach {
	s := ix.snap.Load()
	kx, ky := metresPerDegree(lat)
	dx, dy := meters/kx, meters/ky
	var buf [8]struct {
		reach int32
		d     float64
	}
	hits := buf[:0]
	add := func(reach int32, d float64) {
		for i := range hits {
			if hits[i].reach == reach {
				hits[i].d = math.Min(hits[i].d, d)
				return
			}
		}
		hits = append(hits, struct {
			reach int32
			d     float64
		}{reach, d})
	}
	s.segs.Search([2]float64{lon - dx, lat - dy}, [2]float64{lon + dx, lat + dy}, func(_, _ [2]float64, i int32) bool {
		sg := &s.segments[i]
		if d := segmentDistance(lon, lat, sg.x0, sg.y0, sg.x1, sg.y1, kx, ky); d <= meters {
			add(sg.reach, d)
		}
		return true
	})
	if len(s.polys) > 0 {
		s.areas.Search([2]float64{lon, lat}, [2]float64{lon, lat}, func(_, _ [2]float64, i int32) bool {
			if polygonContains(s.polys[i].poly, lon, lat) {
				add(s.polys[i].reach, 0)
			}
			return true
		})
	}
	if len(hits) == 0 {
		return nil
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].d < hits[j].d })
	out := make([]NearReach, len(hits))
	for i, h := range hits {
		out[i] = NearReach{Reach: s.reaches[h.reach], DistanceM: h.d}
	}
	return out
}
