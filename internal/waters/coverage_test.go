package waters_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/twpayne/go-geom"

	"ecogrid/internal/waters"
)

// offset returns points of the line moved north by metres (lat, lon order,
// as tracks are), with a fix every stepM metres along it.
func offsetTrack(coords [][2]float64, northM float64) [][2]float64 {
	const mPerDegLat = 111000.0
	var out [][2]float64
	for i := 0; i+1 < len(coords); i++ {
		a, b := coords[i], coords[i+1]
		for k := 0; k < 10; k++ {
			f := float64(k) / 10
			out = append(out, [2]float64{a[1] + f*(b[1]-a[1]) + northM/mPerDegLat, a[0] + f*(b[0]-a[0])})
		}
	}
	last := coords[len(coords)-1]
	return append(out, [2]float64{last[1] + northM/mPerDegLat, last[0]})
}

func multiLine(coords [][2]float64) *geom.MultiLineString {
	flat := make([]float64, 0, 2*len(coords))
	for _, c := range coords {
		flat = append(flat, c[0], c[1])
	}
	ml := geom.NewMultiLineString(geom.XY).SetSRID(4326)
	_ = ml.Push(geom.NewLineStringFlat(geom.XY, flat))
	return ml
}

func trackLine(track [][2]float64) *geom.LineString {
	flat := make([]float64, 0, 2*len(track))
	for _, p := range track {
		flat = append(flat, p[1], p[0])
	}
	return geom.NewLineStringFlat(geom.XY, flat).SetSRID(4326)
}

// postgisCoverage is the reference: the length on the spheroid of the
// reach inside the geography buffer of the track.
func (e *env) postgisCoverage(t *testing.T, reach geom.T, track [][2]float64, bufferM float64) (length, covered float64) {
	t.Helper()
	var tr geom.T = trackLine(track)
	if len(track) == 1 {
		tr = geom.NewPointFlat(geom.XY, []float64{track[0][1], track[0][0]}).SetSRID(4326)
	}
	err := e.pool.QueryRow(context.Background(), `SELECT ST_Length($1::geometry::geography),
		ST_Length(ST_Intersection($1::geometry, ST_Buffer($2::geometry::geography, $3, 'quad_segs=64')::geometry)::geography)`,
		reach, tr, bufferM).Scan(&length, &covered)
	if err != nil {
		t.Fatal(err)
	}
	return length, covered
}

func TestCoverageAgainstPostGIS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A meandering reach of ~6 km.
	var reach [][2]float64
	for i := 0; i <= 60; i++ {
		x := 114.45 + float64(i)*0.0011
		reach = append(reach, [2]float64{x, 38.15 + 0.002*math.Sin(float64(i)/5)})
	}
	ml := multiLine(reach)
	rng := rand.New(rand.NewPCG(1, 2))
	jitter := func(tr [][2]float64, m float64) [][2]float64 {
		out := make([][2]float64, len(tr))
		for i, p := range tr {
			out[i] = [2]float64{p[0] + (rng.Float64()-0.5)*2*m/111000, p[1] + (rng.Float64()-0.5)*2*m/88000}
		}
		return out
	}
	half := offsetTrack(reach[:31], 10)
	cases := []struct {
		name     string
		track    [][2]float64
		counts   bool
		minShare float64
		maxShare float64
	}{
		{"hugs", jitter(offsetTrack(reach, 0), 8), true, 0.97, 1},
		{"hugs 30 m north", offsetTrack(reach, 30), true, 0.9, 1},
		{"parallel 80 m away", offsetTrack(reach, 80), false, 0, 0.35},
		{"crosses", [][2]float64{{38.13, 114.48}, {38.17, 114.48}}, false, 0.005, 0.05},
		{"half of it", half, false, 0.45, 0.55},
		{"one fix", [][2]float64{{reach[30][1], reach[30][0]}}, false, 0.005, 0.03},
	}
	for _, c := range cases {
		got := waters.Coverage(ml, c.track, 50)
		length, covered := e.postgisCoverage(t, ml, c.track, 50)
		if math.Abs(got.ReachLengthM-length) > 0.003*length {
			t.Errorf("%s: length %.1f m; PostGIS %.1f m", c.name, got.ReachLengthM, length)
		}
		if math.Abs(got.CoveredM-covered) > 0.01*length+2 {
			t.Errorf("%s: covered %.1f m; PostGIS %.1f m (of %.0f)", c.name, got.CoveredM, covered, length)
		}
		if got.Counts(0) != c.counts || got.Share < c.minShare || got.Share > c.maxShare {
			t.Errorf("%s: share %.3f counts=%v; want [%.2f, %.2f] counts=%v", c.name, got.Share, got.Counts(0), c.minShare, c.maxShare, c.counts)
		}
	}
	// Random tracks against PostGIS.
	for i := 0; i < 20; i++ {
		var tr [][2]float64
		lat, lon := 38.15+(rng.Float64()-0.5)*0.006, 114.45+rng.Float64()*0.06
		for k := 0; k < 200; k++ {
			lat += (rng.Float64() - 0.5) * 0.0008
			lon += (rng.Float64() - 0.3) * 0.0008
			tr = append(tr, [2]float64{lat, lon})
		}
		got := waters.Coverage(ml, tr, 50)
		length, covered := e.postgisCoverage(t, ml, tr, 50)
		if math.Abs(got.CoveredM-covered) > 0.01*length+2 {
			t.Errorf("random track %d: covered %.1f m; PostGIS %.1f m", i, got.CoveredM, covered)
		}
	}
}

func TestReachesNearAgainstPostGIS(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	e.importRiver(t)
	lake := feature{Code: "LK-1", Name: "岗南水库库区", Body: "GNSK", BodyName: "岗南水库", Kind: "reservoir", Node: "130123", Type: "Polygon",
		Coords: [][2]float64{{114.60, 38.20}, {114.64, 38.20}, {114.64, 38.23}, {114.60, 38.23}, {114.60, 38.20}}}
	if _, err := e.store.ImportGeoJSON(ctx, collection(lake), waters.ParseLimits{}, waters.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	ix := waters.NewIndex(e.store, nil)
	if err := ix.Load(ctx); err != nil || ix.Len() != 4 {
		t.Fatalf("load: %d reaches, %v", ix.Len(), err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	agree, hits := 0, 0
	for i := 0; i < 400; i++ {
		var lat, lon float64
		if i%2 == 0 { // near the river
			lat, lon = 38.153+(rng.Float64()-0.5)*0.0015, 114.40+rng.Float64()*0.27
		} else { // around the lake's shore
			lat, lon = 38.195+rng.Float64()*0.04, 114.595+rng.Float64()*0.05
		}
		rows, err := e.pool.Query(ctx, `SELECT code, ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography)
			FROM waters.reaches WHERE valid_to IS NULL AND ST_DWithin(geom::geography, ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography, 60)`, lat, lon)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{}
		for rows.Next() {
			var code string
			var d float64
			if err := rows.Scan(&code, &d); err != nil {
				t.Fatal(err)
			}
			want[code] = d
		}
		rows.Close()
		got := map[string]float64{}
		for _, n := range ix.Near(lat, lon, 60) {
			got[n.Reach.Code] = n.DistanceM
		}
		ok := true
		for code, d := range want {
			if d < 59.5 && (got[code] == 0 && d > 0.5 || math.Abs(got[code]-d) > 0.5) {
				if _, present := got[code]; !present || math.Abs(got[code]-d) > 0.5 {
					ok = false
					t.Errorf("(%f, %f): %s at %.2f m by PostGIS; index %v", lat, lon, code, d, got)
				}
			}
		}
		for code, d := range got {
			if _, in := want[code]; !in && d < 59.5 {
				ok = false
				t.Errorf("(%f, %f): index finds %s at %.2f m; PostGIS does not", lat, lon, code, d)
			}
		}
		if ok {
			agree++
		}
		if len(want) > 0 {
			hits++
		}
	}
	if hits < 100 {
		t.Errorf("only %d of 400 points near a reach; the test is not testing", hits)
	}
	// ReachesNear: nearest first; inside the lake is 0 m.
	if rs := ix.ReachesNear(38.215, 114.62, 50); len(rs) != 1 || rs[0].Code != "LK-1" {
		t.Errorf("inside the lake: %v", rs)
	}
}
