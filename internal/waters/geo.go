package waters

import (
	"math"

	"github.com/twpayne/go-geom"
)

// WGS-84 ellipsoid.
const (
	wgs84A  = 6378137.0
	wgs84E2 = 0.00669437999014
)

// metresPerDegree returns the length of a degree of longitude and of
// latitude at lat on the WGS-84 ellipsoid (radii of curvature in the prime
// vertical and the meridian). Over the few kilometres of a reach or a
// buffer, a plane scaled by these is within a fraction of a per cent of
// PostGIS's geography (spheroid) lengths.
func metresPerDegree(lat float64) (kx, ky float64) {
	phi := lat * math.Pi / 180
	s := math.Sin(phi)
	w := 1 - wgs84E2*s*s
	n := wgs84A / math.Sqrt(w)
	m := wgs84A * (1 - wgs84E2) / (w * math.Sqrt(w))
	return n * math.Cos(phi) * math.Pi / 180, m * math.Pi / 180
}

// segmentDistance is the distance in metres from (px, py) to the segment
// (x0, y0)–(x1, y1), all in degrees, in the plane scaled by kx, ky.
func segmentDistance(px, py, x0, y0, x1, y1, kx, ky float64) float64 {
	ax, ay := (x0-px)*kx, (y0-py)*ky
	bx, by := (x1-px)*kx, (y1-py)*ky
	dx, dy := bx-ax, by-ay
	l2 := dx*dx + dy*dy
	t := 0.0
	if l2 > 0 {
		t = -(ax*dx + ay*dy) / l2
		t = math.Max(0, math.Min(1, t))
	}
	cx, cy := ax+t*dx, ay+t*dy
	return math.Sqrt(cx*cx + cy*cy)
}

// lines returns the lines a patrol follows along a reach: the reach's line
// parts, or the rings (shores) of an area.
func lines(g geom.T) [][]float64 {
	var out [][]float64
	switch t := g.(type) {
	case *geom.MultiLineString:
		for i := 0; i < t.NumLineStrings(); i++ {
			out = append(out, t.LineString(i).FlatCoords())
		}
	case *geom.MultiPolygon:
		for i := 0; i < t.NumPolygons(); i++ {
			p := t.Polygon(i)
			for j := 0; j < p.NumLinearRings(); j++ {
				out = append(out, p.LinearRing(j).FlatCoords())
			}
		}
	}
	return out
}

// ringContains reports whether (x, y) lies inside the polygon (even-odd
// over all rings: holes excluded).
func polygonContains(p *geom.Polygon, x, y float64) bool {
	in := false
	for j := 0; j < p.NumLinearRings(); j++ {
		f := p.LinearRing(j).FlatCoords()
		for k := 0; k+3 < len(f); k += 2 {
			x0, y0, x1, y1 := f[k], f[k+1], f[k+2], f[k+3]
			if (y0 > y) != (y1 > y) && x < x0+(y-y0)*(x1-x0)/(y1-y0) {
				in = !in
			}
		}
	}
	return in
}
