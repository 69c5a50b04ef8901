package fieldsim

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/twpayne/go-geom"
	"github.com/twpayne/go-geom/encoding/geojson"
)

// area is a grid cell's boundary as rings of [lon, lat] (WGS-84), with
// what a walker inside it needs: a bounding box to sample from and a
// point-in-area test.
type area struct {
	polys                  [][][][2]float64 // polygon → ring (outer first) → vertex
	minLon, minLat, maxLon float64
	maxLat                 float64
}

func parseArea(geojsonGeometry string) (*area, error) {
	var g geom.T
	if err := geojson.Unmarshal([]byte(geojsonGeometry), &g); err != nil {
		return nil, fmt.Errorf("cell geometry: %w", err)
	}
	a := &area{minLon: math.Inf(1), minLat: math.Inf(1), maxLon: math.Inf(-1), maxLat: math.Inf(-1)}
	addPoly := func(p *geom.Polygon) {
		var rings [][][2]float64
		for i := range p.NumLinearRings() {
			flat := p.LinearRing(i).FlatCoords()
			stride := p.Stride()
			ring := make([][2]float64, 0, len(flat)/stride)
			for j := 0; j+1 < len(flat); j += stride {
				x, y := flat[j], flat[j+1]
				ring = append(ring, [2]float64{x, y})
				a.minLon, a.maxLon = math.Min(a.minLon, x), math.Max(a.maxLon, x)
				a.minLat, a.maxLat = math.Min(a.minLat, y), math.Max(a.maxLat, y)
			}
			rings = append(rings, ring)
		}
		a.polys = append(a.polys, rings)
	}
	switch t := g.(type) {
	case *geom.Polygon:
		addPoly(t)
	case *geom.MultiPolygon:
		for i := range t.NumPolygons() {
			addPoly(t.Polygon(i))
		}
	default:
		return nil, fmt.Errorf("cell geometry is a %T, want a polygon", g)
	}
	if len(a.polys) == 0 || math.IsInf(a.minLon, 0) {
		return nil, fmt.Errorf("cell geometry is empty")
	}
	return a, nil
}

// contains is the even-odd rule over every ring: inside an outer ring and
// outside its holes.
func (a *area) contains(lon, lat float64) bool {
	for _, poly := range a.polys {
		in := false
		for _, ring := range poly {
			for i, j := 0, len(ring)-1; i < len(ring); j, i = i, i+1 {
				xi, yi, xj, yj := ring[i][0], ring[i][1], ring[j][0], ring[j][1]
				if (yi > lat) != (yj > lat) && lon < (xj-xi)*(lat-yi)/(yj-yi)+xi {
					in = !in
				}
			}
		}
		if in {
			return true
		}
	}
	return false
}

// inset reports whether a point lies inside with a margin of about m
// metres in the four axis directions, so that coordinate conversion
// round-off never puts a fix on the boundary.
func (a *area) inset(lon, lat, m float64) bool {
	dLat := m / 111_320
	dLon := m / (111_320 * math.Cos(lat*math.Pi/180))
	return a.contains(lon, lat) && a.contains(lon+dLon, lat) && a.contains(lon-dLon, lat) &&
		a.contains(lon, lat+dLat) && a.contains(lon, lat-dLat)
}

// randomPoint returns a point well inside the area.
func (a *area) randomPoint(r *rand.Rand) (lon, lat float64) {
	for range 10000 {
		lon = a.minLon + r.Float64()*(a.maxLon-a.minLon)
		lat = a.minLat + r.Float64()*(a.maxLat-a.minLat)
		if a.inset(lon, lat, 30) {
			return lon, lat
		}
	}
	// A sliver: fall back to any interior point.
	for {
		lon = a.minLon + r.Float64()*(a.maxLon-a.minLon)
		lat = a.minLat + r.Float64()*(a.maxLat-a.minLat)
		if a.contains(lon, lat) {
			return lon, lat
		}
	}
}

// step walks about metres from a point in a random direction without
// leaving the area (turning back at the boundary, as a walker would).
func (a *area) step(r *rand.Rand, lon, lat, heading, metres float64) (float64, float64, float64) {
	for try := range 16 {
		h := heading + (r.Float64()-0.5)*0.8
		if try > 4 {
			h = r.Float64() * 2 * math.Pi
		}
		nlat := lat + metres*math.Cos(h)/111_320
		nlon := lon + metres*math.Sin(h)/(111_320*math.Cos(lat*math.Pi/180))
		if a.inset(nlon, nlat, 30) {
			return nlon, nlat, h
		}
	}
	return lon, lat, heading + math.Pi
}
