package waters

import (
	"math"
	"sort"

	"github.com/twpayne/go-geom"
)

// Reach patrol defaults: a patrol counts for a reach when its track runs
// within DefaultBufferM of at least DefaultMinShare of the reach's length.
const (
	DefaultBufferM  = 50.0
	DefaultMinShare = 0.8
)

// CoverageResult is how much of a reach a track followed.
type CoverageResult struct {
	ReachLengthM float64 // the line's length (an area's shore)
	CoveredM     float64 // the part within the buffer of the track
	Share        float64 // CoveredM / ReachLengthM
}

// Counts reports whether the coverage reaches minShare (0: the default).
func (c CoverageResult) Counts(minShare float64) bool {
	if minShare <= 0 {
		minShare = DefaultMinShare
	}
	return c.ReachLengthM > 0 && c.Share >= minShare
}

// Coverage measures the length of a reach's line (a river reach; the shore
// of a reservoir or lake) lying within bufferM metres of a track of
// [latitude, longitude] points in WGS-84 order of recording. It is exact
// in a plane scaled to metres at the reach's latitude: for each segment of
// the reach, the part inside the buffer of each track segment (a capsule,
// convex, so one interval) is found in closed form and the intervals are
// merged. Checked against PostGIS's ST_Buffer/ST_Intersection on geography.
func Coverage(reach geom.T, track [][2]float64, bufferM float64) CoverageResult {
	if bufferM <= 0 {
		bufferM = DefaultBufferM
	}
	parts := lines(reach)
	var sumLat float64
	var n int
	for _, f := range parts {
		for k := 1; k < len(f); k += 2 {
			sumLat += f[k]
			n++
		}
	}
	if n == 0 {
		return CoverageResult{}
	}
	lat0 := sumLat / float64(n)
	kx, ky := metresPerDegree(lat0)
	lon0 := parts[0][0]
	// The track in metres, with each segment's box grown by the buffer.
	tx := make([]float64, len(track))
	ty := make([]float64, len(track))
	for i, p := range track {
		tx[i], ty[i] = (p[1]-lon0)*kx, (p[0]-lat0)*ky
	}
	r := bufferM
	cells := newSegmentGrid(tx, ty, r)
	var res CoverageResult
	var ivs []interval
	for _, f := range parts {
		for k := 0; k+3 < len(f); k += 2 {
			ax, ay := (f[k]-lon0)*kx, (f[k+1]-lat0)*ky
			bx, by := (f[k+2]-lon0)*kx, (f[k+3]-lat0)*ky
			l := math.Hypot(bx-ax, by-ay)
			if l == 0 {
				continue
			}
			res.ReachLengthM += l
			ivs = ivs[:0]
			cells.near(ax, ay, bx, by, func(i int) {
				j := i + 1
				if j == len(tx) {
					j = i // a single fix: its disk
				}
				if iv, ok := capsuleInterval(ax, ay, bx, by, tx[i], ty[i], tx[j], ty[j], r); ok {
					ivs = append(ivs, iv)
				}
			})
			res.CoveredM += l * unionLength(ivs)
		}
	}
	if res.ReachLengthM > 0 {
		res.Share = math.Min(1, res.CoveredM/res.ReachLengthM)
	}
	return res
}

type interval struct{ lo, hi float64 }

// unionLength is the length of the union of intervals within [0, 1].
func unionLength(ivs []interval) float64 {
	if len(ivs) == 0 {
		return 0
	}
	sort.Slice(ivs, func(i, j int) bool { return ivs[i].lo < ivs[j].lo })
	total, lo, hi := 0.0, ivs[0].lo, ivs[0].hi
	for _, iv := range ivs[1:] {
		if iv.lo > hi {
			total += hi - lo
			lo, hi = iv.lo, iv.hi
		} else if iv.hi > hi {
			hi = iv.hi
		}
	}
	return total + hi - lo
}

// capsuleInterval returns the parameters t in [0, 1] of the points
// A + t(B−A) within r of the segment PQ: the union of the parts inside the
// two end disks and the rectangle between them, one interval since the
// capsule is convex.
func capsuleInterval(ax, ay, bx, by, px, py, qx, qy, r float64) (interval, bool) {
	lo, hi := math.Inf(1), math.Inf(-1)
	merge := func(a, b float64) {
		a, b = math.Max(a, 0), math.Min(b, 1)
		if a <= b {
			lo, hi = math.Min(lo, a), math.Max(hi, b)
		}
	}
	dx, dy := bx-ax, by-ay
	disk := func(cx, cy float64) {
		fx, fy := ax-cx, ay-cy
		a := dx*dx + dy*dy
		b := 2 * (dx*fx + dy*fy)
		c := fx*fx + fy*fy - r*r
		disc := b*b - 4*a*c
		if disc < 0 {
			return
		}
		s := math.Sqrt(disc)
		merge((-b-s)/(2*a), (-b+s)/(2*a))
	}
	disk(px, py)
	ex, ey := qx-px, qy-py
	el := math.Hypot(ex, ey)
	if el > 0 {
		disk(qx, qy)
		ux, uy := ex/el, ey/el
		nx, ny := -uy, ux
		// Along u: 0 <= (A−P)·u + t d·u <= el; across: |(A−P)·n + t d·n| <= r.
		t0, t1 := 0.0, 1.0
		ok := clipParam(&t0, &t1, (ax-px)*ux+(ay-py)*uy, dx*ux+dy*uy, 0, el) &&
			clipParam(&t0, &t1, (ax-px)*nx+(ay-py)*ny, dx*nx+dy*ny, -r, r)
		if ok {
			merge(t0, t1)
		}
	}
	if lo > hi {
		return interval{}, false
	}
	return interval{lo, hi}, true
}

// clipParam narrows [t0, t1] to where lo <= alpha + beta t <= hi.
func clipParam(t0, t1 *float64, alpha, beta, lo, hi float64) bool {
	if math.Abs(beta) < 1e-12 {
		return alpha >= lo && alpha <= hi
	}
	a, b := (lo-alpha)/beta, (hi-alpha)/beta
	if a > b {
		a, b = b, a
	}
	*t0, *t1 = math.Max(*t0, a), math.Min(*t1, b)
	return *t0 <= *t1
}

// segmentGrid buckets the track's segments (each grown by the buffer) in
// square cells twice the buffer wide, so a reach segment meets only the
// track segments near it: a 2,000-point track against a 200-vertex reach
// costs thousands of capsule tests, not 400,000 box tests.
type segmentGrid struct {
	size  float64
	cells map[[2]int32][]int32
	long  []int32  // segments spanning too many cells (GPS jumps): always tested
	seen  []uint32 // stamp per segment: visited for the current query
	stamp uint32
}

func newSegmentGrid(tx, ty []float64, r float64) *segmentGrid {
	g := &segmentGrid{size: 2 * r, cells: map[[2]int32][]int32{}}
	n := len(tx) - 1
	if len(tx) == 1 {
		n = 1 // a single fix is "segment" 0 from the fix to itself
	}
	g.seen = make([]uint32, max(n, 0))
	for i := 0; i < n; i++ {
		j := min(i+1, len(tx)-1)
		x0, y0, x1, y1 := math.Min(tx[i], tx[j])-r, math.Min(ty[i], ty[j])-r, math.Max(tx[i], tx[j])+r, math.Max(ty[i], ty[j])+r
		if (x1-x0)*(y1-y0) > 64*g.size*g.size {
			g.long = append(g.long, int32(i))
			continue
		}
		g.each(x0, y0, x1, y1, func(c [2]int32) {
			g.cells[c] = append(g.cells[c], int32(i))
		})
	}
	return g
}

func (g *segmentGrid) cell(v float64) int32 {
	return int32(math.Max(math.MinInt32, math.Min(math.MaxInt32, math.Floor(v/g.size))))
}

func (g *segmentGrid) each(x0, y0, x1, y1 float64, fn func([2]int32)) {
	cx0, cy0, cx1, cy1 := g.cell(x0), g.cell(y0), g.cell(x1), g.cell(y1)
	for cx := cx0; cx <= cx1; cx++ {
		for cy := cy0; cy <= cy1; cy++ {
			fn([2]int32{cx, cy})
		}
	}
}

// near calls fn once for each track segment registered in a cell the
// segment a–b's box meets.
func (g *segmentGrid) near(ax, ay, bx, by float64, fn func(i int)) {
	g.stamp++
	for _, i := range g.long {
		g.seen[i] = g.stamp
		fn(int(i))
	}
	g.each(math.Min(ax, bx), math.Min(ay, by), math.Max(ax, bx), math.Max(ay, by), func(c [2]int32) {
		for _, i := range g.cells[c] {
			if g.seen[i] != g.stamp {
				g.seen[i] = g.stamp
				fn(int(i))
			}
		}
	})
}
