package monitoring

import (
	"math"
	"testing"
)

// The limits of GB 3838-2002 Table 1, written out again here from the
// standard (classes I, II, III, IV, V; mg/L unless stated), independently
// of Table1 in gb3838.go, so a typo in either fails the test.
var standard = []struct {
	code    string
	atLeast bool
	limits  [5]float64
	body    WaterBody
}{
	{"DO", true, [5]float64{7.5, 6, 5, 3, 2}, River}, // 饱和率90%(或7.5)
	{"COD_Mn", false, [5]float64{2, 4, 6, 10, 15}, River},
	{"COD", false, [5]float64{15, 15, 20, 30, 40}, River},
	{"BOD5", false, [5]float64{3, 3, 4, 6, 10}, River},
	{"NH3-N", false, [5]float64{0.15, 0.5, 1.0, 1.5, 2.0}, River},
	{"TP", false, [5]float64{0.02, 0.1, 0.2, 0.3, 0.4}, River},        // 总磷
	{"TP", false, [5]float64{0.01, 0.025, 0.05, 0.1, 0.2}, Lake},      // 湖、库
	{"TP", false, [5]float64{0.01, 0.025, 0.05, 0.1, 0.2}, Reservoir}, // 湖、库
	{"TN", false, [5]float64{0.2, 0.5, 1.0, 1.5, 2.0}, Lake},          // 湖、库,以N计
	{"TN", false, [5]float64{0.2, 0.5, 1.0, 1.5, 2.0}, Reservoir},
	{"Cu", false, [5]float64{0.01, 1.0, 1.0, 1.0, 1.0}, River},
	{"Zn", false, [5]float64{0.05, 1.0, 1.0, 2.0, 2.0}, River},
	{"F", false, [5]float64{1.0, 1.0, 1.0, 1.5, 1.5}, River},
	{"Se", false, [5]float64{0.01, 0.01, 0.01, 0.02, 0.02}, River},
	{"As", false, [5]float64{0.05, 0.05, 0.05, 0.1, 0.1}, River},
	{"Hg", false, [5]float64{0.00005, 0.00005, 0.0001, 0.001, 0.001}, River},
	{"Cd", false, [5]float64{0.001, 0.005, 0.005, 0.005, 0.01}, River},
	{"Cr6", false, [5]float64{0.01, 0.05, 0.05, 0.05, 0.1}, River},
	{"Pb", false, [5]float64{0.01, 0.01, 0.05, 0.05, 0.1}, River},
	{"CN", false, [5]float64{0.005, 0.05, 0.2, 0.2, 0.2}, River},
	{"phenol", false, [5]float64{0.002, 0.002, 0.005, 0.01, 0.1}, River},
	{"petroleum", false, [5]float64{0.05, 0.05, 0.05, 0.5, 1.0}, River},
	{"LAS", false, [5]float64{0.2, 0.2, 0.2, 0.3, 0.3}, River},
	{"S2", false, [5]float64{0.05, 0.1, 0.2, 0.5, 1.0}, River},
	{"fecal_coliform", false, [5]float64{200, 2000, 10000, 20000, 40000}, River}, // 个/L
}

// bestClass is the class a value exactly at limit i (0-based) gets: the
// first class with the same limit (COD is 15 for both I and II).
func bestClass(limits [5]float64, i int) Class {
	for j := 0; j <= i; j++ {
		if limits[j] == limits[i] {
			return Class(j + 1)
		}
	}
	return Class(i + 1)
}

// TestClassBoundaries: for every parameter and every class, a value at the
// limit is in the class (the best class sharing that limit), a value just
// past it is in the next worse class, and past class V is worse than V.
func TestClassBoundaries(t *testing.T) {
	for _, s := range standard {
		p, ok := LookupParameter(s.code)
		if !ok {
			t.Fatalf("%s missing from Table1", s.code)
		}
		if p.AtLeast != s.atLeast {
			t.Errorf("%s: AtLeast = %v", s.code, p.AtLeast)
		}
		for i, limit := range s.limits {
			past := math.Nextafter(limit, math.Inf(1))
			if s.atLeast {
				past = math.Nextafter(limit, math.Inf(-1))
			}
			if got, want := p.Classify(limit, s.body), bestClass(s.limits, i); got != want {
				t.Errorf("%s at body %d = %g: class %v, want %v", s.code, s.body, limit, got, want)
			}
			want := WorseThanV
			for j := i + 1; j < 5; j++ {
				if s.limits[j] != limit {
					want = Class(j + 1)
					break
				}
			}
			if i < 4 && s.limits[i+1] == limit {
				continue // the next class shares the limit: "just past" is tested at the last of them
			}
			if got := p.Classify(past, s.body); got != want {
				t.Errorf("%s at body %d just past the class %v limit %g: class %v, want %v", s.code, s.body, Class(i+1), limit, got, want)
			}
		}
	}
}

func TestPHAndWhereTheStandardSetsNoLimit(t *testing.T) {
	ph, _ := LookupParameter("pH")
	for v, want := range map[float64]Class{6: 1, 9: 1, 7.2: 1, 5.99: WorseThanV, 9.01: WorseThanV} {
		if got := ph.Classify(v, River); got != want {
			t.Errorf("pH %g: %v, want %v", v, got, want)
		}
	}
	tn, _ := LookupParameter("TN")
	if got := tn.Classify(5, River); got != 0 {
		t.Errorf("TN in a river: class %v; the standard sets TN for lakes and reservoirs only", got)
	}
	// TP: the same value is class II in a river and class IV in a lake.
	tp, _ := LookupParameter("总磷")
	if r, l := tp.Classify(0.08, River), tp.Classify(0.08, Lake); r != 2 || l != 4 {
		t.Errorf("TP 0.08: river %v lake %v; want II and IV", r, l)
	}
}

func TestUnits(t *testing.T) {
	hg, _ := LookupParameter("hg")
	v, err := hg.Normalize(0.05, "µg/L")
	if err != nil || math.Abs(v-0.00005) > 1e-15 || hg.Classify(v, River) != 1 {
		t.Fatalf("Hg 0.05 µg/L = %g mg/L (%v), class %v", v, err, hg.Classify(v, River))
	}
	if _, err := hg.Normalize(1, "g/L"); err == nil {
		t.Error("g/L accepted")
	}
	ph, _ := LookupParameter("pH")
	if _, err := ph.Normalize(7, "mg/L"); err == nil {
		t.Error("pH in mg/L accepted")
	}
}
