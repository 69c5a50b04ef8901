package coord

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Reference pairs published in the README of wandergis/coordtransform, the
// implementation most Chinese web and app code copies (input lon 116.404,
// lat 39.915, Tiananmen). The BD-09 and GCJ-02 → WGS-84 "published" values
// there are one-step approximations; they are checked to be within 1 m of
// ours below, and our own inversion is checked by its forward residual.
func TestPublishedReferencePairs(t *testing.T) {
	const lat, lon = 39.915, 116.404
	for _, tc := range []struct {
		name             string
		f                func(lat, lon float64) (float64, float64)
		wantLat, wantLon float64
	}{
		{"wgs84→gcj02", WGS84ToGCJ02, 39.91640428150164, 116.41024449916938},
		{"gcj02→bd09", GCJ02ToBD09, 39.92133699351021, 116.41036949371029},
		{"wgs84→bd09", WGS84ToBD09, 39.922699552216216, 116.41662724378733},
	} {
		gotLat, gotLon := tc.f(lat, lon)
		if math.Abs(gotLat-tc.wantLat) > 1e-9 || math.Abs(gotLon-tc.wantLon) > 1e-9 {
			t.Errorf("%s(%v, %v) = %.15f, %.15f; want %.15f, %.15f", tc.name, lat, lon, gotLat, gotLon, tc.wantLat, tc.wantLon)
		}
	}
	// The published one-step inverses; the exact inverse differs by less than a metre.
	for _, tc := range []struct {
		name             string
		f                func(lat, lon float64) (float64, float64)
		wantLat, wantLon float64
	}{
		{"gcj02→wgs84", GCJ02ToWGS84, 39.91359571849836, 116.39775550083061},
		{"bd09→gcj02", BD09ToGCJ02, 39.90865673957631, 116.39762729119315},
		{"bd09→wgs84", BD09ToWGS84, 39.907253214522164, 116.3913836995125},
	} {
		gotLat, gotLon := tc.f(lat, lon)
		if d := DistanceMeters(gotLat, gotLon, tc.wantLat, tc.wantLon); d > 1 || d == 0 {
			t.Errorf("%s: %.3f m from the published one-step value, want (0, 1]", tc.name, d)
		}
	}
}

// TestGCJ02InversionResidual states the inversion's error in metres: for
// random points all over mainland China, the forward image of the inverted
// point lands within 1 cm of the GCJ-02 input (the iteration stops at
// 1e-9°, about 0.1 mm), and a WGS-84 → GCJ-02 → WGS-84 round trip returns
// within 1 cm of the start.
func TestGCJ02InversionResidual(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var worstForward, worstRoundTrip float64
	for range 20000 {
		lat := 18 + r.Float64()*35 // Hainan to Heilongjiang
		lon := 74 + r.Float64()*60 // Xinjiang to Heilongjiang
		glat, glon := WGS84ToGCJ02(lat, lon)
		wlat, wlon := GCJ02ToWGS84(glat, glon)
		flat, flon := WGS84ToGCJ02(wlat, wlon)
		worstForward = math.Max(worstForward, DistanceMeters(flat, flon, glat, glon))
		worstRoundTrip = math.Max(worstRoundTrip, DistanceMeters(wlat, wlon, lat, lon))
		// BD-09 through both steps.
		blat, blon := WGS84ToBD09(lat, lon)
		b2lat, b2lon := BD09ToWGS84(blat, blon)
		if d := DistanceMeters(b2lat, b2lon, lat, lon); d > 0.01 {
			t.Fatalf("BD-09 round trip at %v,%v off by %.3f m", lat, lon, d)
		}
	}
	t.Logf("GCJ-02 → WGS-84 inversion over 20000 points in China: worst forward residual %.6f m, worst round trip %.6f m", worstForward, worstRoundTrip)
	if worstForward >= 0.01 || worstRoundTrip >= 0.01 {
		t.Fatalf("residual %.6f m / round trip %.6f m, want < 0.01 m", worstForward, worstRoundTrip)
	}
}

func TestShiftIsHundredsOfMetresInChinaAndZeroOutside(t *testing.T) {
	glat, glon := WGS84ToGCJ02(39.915, 116.404)
	if d := DistanceMeters(glat, glon, 39.915, 116.404); d < 100 || d > 1000 {
		t.Fatalf("GCJ-02 shift in Beijing %.1f m, want a few hundred metres", d)
	}
	for _, p := range [][2]float64{{51.5007, -0.1246}, {-33.86, 151.21}, {35.68, 139.76}} {
		for _, sys := range []System{WGS84, GCJ02} {
			lat, lon, err := ToWGS84(p[0], p[1], sys)
			if err != nil || lat != p[0] || lon != p[1] {
				t.Errorf("ToWGS84(%v, %v) = %v, %v, %v; want unchanged", p, sys, lat, lon, err)
			}
		}
	}
}

func TestToWGS84RejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		lat, lon float64
		sys      System
	}{
		{math.NaN(), 116, WGS84},
		{39, math.Inf(1), GCJ02},
		{91, 116, WGS84},
		{39, -180.5, BD09},
		{1e308, 1e308, GCJ02},
		{39, 116, Unspecified},
		{39, 116, System(9)},
	} {
		if _, _, err := ToWGS84(tc.lat, tc.lon, tc.sys); err == nil {
			t.Errorf("ToWGS84(%v, %v, %v) accepted", tc.lat, tc.lon, tc.sys)
		}
		if _, _, err := FromWGS84(tc.lat, tc.lon, tc.sys); err == nil {
			t.Errorf("FromWGS84(%v, %v, %v) accepted", tc.lat, tc.lon, tc.sys)
		}
	}
}

func TestToAndFromAreInverse(t *testing.T) {
	for _, sys := range []System{WGS84, GCJ02, BD09} {
		lat, lon, err := FromWGS84(38.05, 114.52, sys)
		if err != nil {
			t.Fatal(err)
		}
		blat, blon, err := ToWGS84(lat, lon, sys)
		if err != nil {
			t.Fatal(err)
		}
		if d := DistanceMeters(blat, blon, 38.05, 114.52); d > 0.01 {
			t.Errorf("%v: round trip off by %.4f m", sys, d)
		}
	}
	if WGS84.String() != "WGS-84" || GCJ02.String() != "GCJ-02" || BD09.String() != "BD-09" || System(7).Valid() {
		t.Error("System names")
	}
}

func FuzzToWGS84(f *testing.F) {
	f.Add(39.915, 116.404, 2)
	f.Add(0.8293, 72.004, 3)
	f.Add(math.NaN(), 0.0, 1)
	f.Add(55.8271, 137.8347, 2)
	f.Add(0.8293, 72.004, 2) // on the rectangle's corner: no exact preimage
	f.Fuzz(func(t *testing.T, lat, lon float64, sys int) {
		wlat, wlon, err := ToWGS84(lat, lon, System(sys))
		if err != nil {
			return
		}
		if CheckRange(wlat, wlon) != nil && !(math.Abs(wlat) < 91 && math.Abs(wlon) < 181) {
			t.Fatalf("ToWGS84(%v, %v, %d) = %v, %v: not finite", lat, lon, sys, wlat, wlon)
		}
		if math.IsNaN(wlat) || math.IsNaN(wlon) {
			t.Fatalf("NaN result for %v, %v", lat, lon)
		}
		// Any converted point lies within 2 km of its input (the shifts are
		// hundreds of metres).
		if d := DistanceMeters(lat, lon, wlat, wlon); d > 2000 {
			t.Fatalf("ToWGS84(%v, %v, %d) moved the point %.0f m", lat, lon, sys, d)
		}
		// Within 0.05° (several times the largest shift) of the China
		// rectangle's edge the forward map is discontinuous and a GCJ-02
		// input may have no exact preimage; inside it, one exists.
		if System(sys) == GCJ02 && InChina(lat-0.05, lon-0.05) && InChina(lat+0.05, lon+0.05) {
			flat, flon := WGS84ToGCJ02(wlat, wlon)
			if d := DistanceMeters(flat, flon, lat, lon); d > 0.01 {
				t.Fatalf("GCJ-02 inversion at %v, %v: residual %.4f m", lat, lon, d)
			}
		}
	})
}

func BenchmarkGCJ02ToWGS84(b *testing.B) {
	var worst float64
	r := rand.New(rand.NewPCG(3, 4))
	pts := make([][2]float64, 1024)
	for i := range pts {
		pts[i] = [2]float64{18 + r.Float64()*35, 74 + r.Float64()*60}
	}
	for i := 0; b.Loop(); i++ {
		p := pts[i%len(pts)]
		wlat, wlon := GCJ02ToWGS84(p[0], p[1])
		flat, flon := WGS84ToGCJ02(wlat, wlon)
		if d := DistanceMeters(flat, flon, p[0], p[1]); d > worst {
			worst = d
		}
	}
	b.ReportMetric(worst, "residual_m")
}
