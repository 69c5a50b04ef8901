package zones

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tidwall/rtree"

	"ecogrid/internal/structerr"
)

// Index answers "which protected zones contain this point" from memory: an
// R-tree over the bounding box of every polygon of every zone version in
// force now or later, then an exact point-in-polygon test that respects
// holes. Zones overlap (a level-2 water zone around a level-1 one, a red
// line over both), so every containing zone is returned. The snapshot is
// immutable and swapped atomically, so ZonesAt takes no lock.
//
// Run keeps it in step with zones.zones by polling max(change_seq): zones
// change rarely and a county's whole layer reloads in milliseconds.
type Index struct {
	snap  atomic.Pointer[indexSnapshot]
	pool  *pgxpool.Pool
	log   *slog.Logger
	mu    sync.Mutex
	ready chan struct{}
	once  sync.Once
	// PollInterval is how often Run checks for changes (default 1 s).
	PollInterval time.Duration
	// now is the clock (tests move it).
	now func() time.Time
}

type indexSnapshot struct {
	seq   int64
	count int64
	tree  rtree.RTreeGN[float64, *polygon]
	zones []*Zone
}

// polygon is one polygon of a zone version, its rings flat [x0 y0 x1 y1 …]
// with ring end offsets.
type polygon struct {
	zone *Zone
	flat []float64
	ends []int
}

// NewIndex returns an empty index over pool; Load or Run fills it.
func NewIndex(pool *pgxpool.Pool, logger *slog.Logger) *Index {
	if logger == nil {
		logger = slog.Default()
	}
	ix := &Index{pool: pool, log: logger, PollInterval: time.Second, ready: make(chan struct{}), now: time.Now}
	ix.snap.Store(&indexSnapshot{})
	return ix
}

// Ready is closed after the first load.
func (ix *Index) Ready() <-chan struct{} { return ix.ready }

// Len is the number of zone versions indexed.
func (ix *Index) Len() int { return len(ix.snap.Load().zones) }

// ZonesAt returns the zones in force now whose area covers the WGS-84
// point (boundary included, as PostGIS ST_Covers), ordered by county and
// code. The zones share their geometry with the index.
func (ix *Index) ZonesAt(lat, lon float64) []Zone {
	return ix.snap.Load().zonesAt(lat, lon, ix.now())
}

func (s *indexSnapshot) zonesAt(lat, lon float64, now time.Time) []Zone {
	var out []Zone
	p := [2]float64{lon, lat}
	s.tree.Search(p, p, func(_, _ [2]float64, pg *polygon) bool {
		z := pg.zone
		if z.ValidFrom.After(now) || (!z.ValidTo.IsZero() && !z.ValidTo.After(now)) {
			return true
		}
		if !pg.covers(lon, lat) {
			return true
		}
		for _, o := range out { // a zone of several polygons counts once
			if o.Code == z.Code && o.CountyCode == z.CountyCode {
				return true
			}
		}
		out = append(out, *z)
		return true
	})
	if len(out) > 1 {
		slices.SortFunc(out, func(a, b Zone) int {
			if c := strings.Compare(a.CountyCode, b.CountyCode); c != 0 {
				return c
			}
			return strings.Compare(a.Code, b.Code)
		})
	}
	return out
}

// covers is the even-odd crossing test over every ring, holes included;
// a point on an edge is covered.
func (pg *polygon) covers(x, y float64) bool {
	in, on := false, false
	start := 0
	for _, end := range pg.ends {
		f := pg.flat[start:end]
		start = end
		for i := 0; i+3 < len(f); i += 2 {
			ax, ay, bx, by := f[i], f[i+1], f[i+2], f[i+3]
			if ay > by {
				ax, ay, bx, by = bx, by, ax, ay
			}
			if y < ay || y > by {
				continue
			}
			if ay == by {
				if y == ay && x >= min(ax, bx) && x <= max(ax, bx) {
					on = true
				}
				continue
			}
			cross := ax + (y-ay)*(bx-ax)/(by-ay)
			if cross == x {
				on = true
			}
			if y < by && x < cross {
				in = !in
			}
		}
	}
	return in || on
}

// Load replaces the index with the zone versions in force now or later.
func (ix *Index) Load(ctx context.Context) error {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	var seq, count int64
	if err := ix.pool.QueryRow(ctx, `SELECT coalesce(max(change_seq), 0), count(*) FROM zones.zones`).Scan(&seq, &count); err != nil {
		return fmt.Errorf("zone index: %w", err)
	}
	rows, err := ix.pool.Query(ctx, `SELECT `+zoneColumns+` FROM zones.zones
		WHERE valid_to IS NULL OR valid_to > now() ORDER BY county_code, code, version`)
	if err != nil {
		return fmt.Errorf("zone index: %w", err)
	}
	zs, err := scanZones(rows)
	if err != nil {
		return fmt.Errorf("zone index: %w", err)
	}
	s := &indexSnapshot{seq: seq, count: count}
	for i := range zs {
		z := &zs[i]
		s.add(z)
	}
	ix.snap.Store(s)
	ix.once.Do(func() { close(ix.ready) })
	return nil
}

// Replace loads zones given in memory (tests and benchmarks).
func (ix *Index) Replace(zs []Zone) {
	s := &indexSnapshot{}
	for i := range zs {
		z := zs[i]
		s.add(&z)
	}
	ix.snap.Store(s)
	ix.once.Do(func() { close(ix.ready) })
}

func (s *indexSnapshot) add(z *Zone) {
	s.zones = append(s.zones, z)
	mp := z.Geometry
	if mp == nil {
		return
	}
	stride := mp.Stride()
	for i := range mp.NumPolygons() {
		poly := mp.Polygon(i)
		src := poly.FlatCoords()
		pg := &polygon{zone: z, flat: make([]float64, 0, len(src)/stride*2)}
		for k := 0; k+1 < len(src); k += stride {
			pg.flat = append(pg.flat, src[k], src[k+1])
		}
		for _, e := range poly.Ends() {
			pg.ends = append(pg.ends, e/stride*2)
		}
		if len(pg.flat) < 2 {
			continue
		}
		lo := [2]float64{pg.flat[0], pg.flat[1]}
		hi := lo
		for k := 0; k+1 < len(pg.flat); k += 2 {
			lo[0], lo[1] = min(lo[0], pg.flat[k]), min(lo[1], pg.flat[k+1])
			hi[0], hi[1] = max(hi[0], pg.flat[k]), max(hi[1], pg.flat[k+1])
		}
		s.tree.Insert(lo, hi, pg)
	}
}

// Run loads the index and reloads it whenever zones.zones changes (or a
// version comes into or goes out of force is handled at lookup), until
// ctx ends. A failing database is retried; Run returns only ctx's error.
func (ix *Index) Run(ctx context.Context) error {
	poll := ix.PollInterval
	if poll <= 0 {
		poll = time.Second
	}
	for {
		if err := ix.refresh(ctx); err != nil && ctx.Err() == nil {
			ix.log.Warn("zone index refresh failed, retrying", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

func (ix *Index) refresh(ctx context.Context) error {
	old := ix.snap.Load()
	select {
	case <-ix.ready:
		var seq, count int64
		if err := ix.pool.QueryRow(ctx, `SELECT coalesce(max(change_seq), 0), count(*) FROM zones.zones`).Scan(&seq, &count); err != nil {
			return err
		}
		if seq == old.seq && count == old.count {
			return nil
		}
	default:
	}
	if err := ix.Load(ctx); err != nil {
		return err
	}
	ix.log.Info("zone index loaded", slog.Int("zones", ix.Len()))
	return nil
}

// ZonesAtNow is ZonesAt for callers that must not answer from an index
// that has not loaded yet: Unavailable until the first load.
func (ix *Index) ZonesAtNow(lat, lon float64) ([]Zone, error) {
	select {
	case <-ix.ready:
		return ix.ZonesAt(lat, lon), nil
	default:
		return nil, structerr.NewUnavailable("the zone index is still loading, retry")
	}
}

// Point is a WGS-84 position of a patrol track.
type Point struct{ Lat, Lon float64 }

// PatrolZones returns the zones (now in force) a patrol's track entered:
// those containing at least one of its points.
func (ix *Index) PatrolZones(track []Point) []Key {
	s, now := ix.snap.Load(), ix.now()
	seen := map[Key]bool{}
	var out []Key
	for _, p := range track {
		for _, z := range s.zonesAt(p.Lat, p.Lon, now) {
			if k := z.Key(); !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	slices.SortFunc(out, func(a, b Key) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// CountPatrols counts, per zone, the patrols whose track entered it (a
// patrol counts once per zone however many of its points lie inside).
func (ix *Index) CountPatrols(tracks [][]Point) map[Key]int {
	out := map[Key]int{}
	for _, t := range tracks {
		for _, k := range ix.PatrolZones(t) {
			out[k]++
		}
	}
	return out
}

// Quota is one zone's patrol quota for a period and how much of it is done.
type Quota struct {
	Zone     Key
	Kind     Kind
	Required int
	Done     int
}

// Short reports whether the quota is not met.
func (q Quota) Short() bool { return q.Done < q.Required }

// Quotas lists, for every zone whose kind's rule sets a patrol quota, the
// monthly requirement and the patrols counted (CountPatrols over the
// month's tracks), in zone order.
func Quotas(rules []Rule, zs []Zone, counts map[Key]int) []Quota {
	byKey := map[[2]string]Rule{}
	for _, r := range rules {
		byKey[[2]string{r.CountyCode, string(r.Kind)}] = r
	}
	var out []Quota
	seen := map[Key]bool{}
	for _, z := range zs {
		r, ok := byKey[[2]string{z.CountyCode, string(z.Kind)}]
		if !ok || r.PatrolsPerMonth == 0 || seen[z.Key()] {
			continue
		}
		seen[z.Key()] = true
		out = append(out, Quota{Zone: z.Key(), Kind: z.Kind, Required: r.PatrolsPerMonth, Done: counts[z.Key()]})
	}
	slices.SortFunc(out, func(a, b Quota) int { return strings.Compare(a.Zone.String(), b.Zone.String()) })
	return out
}

// InForce returns the zones of county in force now, in code order (all
// counties when county is ""), e.g. for Quotas over a month's patrols.
func (ix *Index) InForce(county string) []Zone {
	s, now := ix.snap.Load(), ix.now()
	var out []Zone
	for _, z := range s.zones {
		if (county == "" || z.CountyCode == county) && !z.ValidFrom.After(now) && (z.ValidTo.IsZero() || z.ValidTo.After(now)) {
			out = append(out, *z)
		}
	}
	slices.SortFunc(out, func(a, b Zone) int { return strings.Compare(a.Key().String(), b.Key().String()) })
	return out
}
