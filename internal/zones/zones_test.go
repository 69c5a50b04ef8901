package zones

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/twpayne/go-geom"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database/dbtest"
)

const testCounty = "130123"

// ring is a closed polygon ring around (lon, lat) with n vertices and
// radius r degrees, wiggled so that edges are not axis-aligned.
func ring(lon, lat, r float64, n int, seed uint64) [][2]float64 {
	rnd := rand.New(rand.NewPCG(seed, 7))
	out := make([][2]float64, 0, n+1)
	for i := range n {
		a := 2 * math.Pi * float64(i) / float64(n)
		rr := r * (0.8 + 0.4*rnd.Float64())
		out = append(out, [2]float64{round7(lon + rr*math.Cos(a)), round7(lat + rr*math.Sin(a))})
	}
	return append(out, out[0])
}

func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }

func polygonJSON(rings ...[][2]float64) string {
	var parts []string
	for _, r := range rings {
		var pts []string
		for _, p := range r {
			pts = append(pts, fmt.Sprintf("[%v,%v]", p[0], p[1]))
		}
		parts = append(parts, "["+strings.Join(pts, ",")+"]")
	}
	return `{"type":"Polygon","coordinates":[` + strings.Join(parts, ",") + `]}`
}

type testZone struct {
	code, kind, name string
	rings            [][][2]float64
}

func collection(zs ...testZone) []byte {
	var fs []string
	for _, z := range zs {
		fs = append(fs, fmt.Sprintf(`{"type":"Feature","properties":{"code":%q,"kind":%q,"name":%q,"legal_basis":"冀政字〔2020〕1号"},"geometry":%s}`,
			z.code, z.kind, z.name, polygonJSON(z.rings...)))
	}
	return []byte(`{"type":"FeatureCollection","features":[` + strings.Join(fs, ",\n") + `]}`)
}

// waterZones: a level-1 water source zone inside a level-2 one (with the
// level-1 area cut out as a hole of the level-2 polygon), under a red
// line that covers both.
func waterZones() []testZone {
	l1 := [][2]float64{{114.50, 38.10}, {114.52, 38.10}, {114.52, 38.12}, {114.50, 38.12}, {114.50, 38.10}}
	l2 := [][2]float64{{114.48, 38.08}, {114.54, 38.08}, {114.54, 38.14}, {114.48, 38.14}, {114.48, 38.08}}
	red := ring(114.51, 38.11, 0.08, 40, 1)
	return []testZone{
		{"SY-1", string(KindDrinkingWater1), "岗南水库一级保护区", [][][2]float64{l1}},
		{"SY-2", string(KindDrinkingWater2), "岗南水库二级保护区", [][][2]float64{l2, reverse(l1)}},
		{"HX-1", string(KindEcologicalRedLine), "太行山生态保护红线", [][][2]float64{red}},
	}
}

func reverse(r [][2]float64) [][2]float64 {
	out := make([][2]float64, len(r))
	for i := range r {
		out[i] = r[len(r)-1-i]
	}
	return out
}

func codesOf(zs []Zone) []string {
	var out []string
	for _, z := range zs {
		out = append(out, z.Code)
	}
	return out
}

func TestImportLocateAndApply(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	s := NewStore(pool)
	res, err := s.ImportGeoJSON(ctx, testCounty, bytes.NewReader(collection(waterZones()...)), ImportOptions{EffectiveFrom: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Created != 3 {
		t.Fatalf("created %d, want 3", res.Created)
	}
	ix := NewIndex(pool, nil)
	if err := ix.Load(ctx); err != nil {
		t.Fatal(err)
	}
	rules, err := RulesFor(ctx, pool, testCounty)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		lat, lon float64
		want     string
		escalate bool
		severity ecogridv1.Severity
	}{
		{"inside level 1", 38.11, 114.51, "HX-1,SY-1", true, ecogridv1.Severity_SEVERITY_CRITICAL},
		{"on the level-1 edge", 38.11, 114.50, "HX-1,SY-1,SY-2", true, ecogridv1.Severity_SEVERITY_CRITICAL},
		{"just outside level 1", 38.11, 114.4999, "HX-1,SY-2", false, ecogridv1.Severity_SEVERITY_SERIOUS},
		{"red line only", 38.11, 114.455, "HX-1", false, ecogridv1.Severity_SEVERITY_SERIOUS},
		{"outside every zone", 38.30, 114.51, "", false, ecogridv1.Severity_SEVERITY_MINOR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ix.ZonesAt(tc.lat, tc.lon)
			ref, err := ZonesAtSQL(ctx, pool, tc.lat, tc.lon, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if g, r := strings.Join(codesOf(got), ","), strings.Join(codesOf(ref), ","); g != tc.want || r != tc.want {
				t.Fatalf("zones at %v,%v: index %q, PostGIS %q; want %q", tc.lat, tc.lon, g, r, tc.want)
			}
			d := Apply(rules, got, ecogridv1.Severity_SEVERITY_MINOR)
			if d.EscalateNow != tc.escalate || d.MinSeverity != tc.severity {
				t.Errorf("Apply = %+v; want escalate %v, severity %v", d, tc.escalate, tc.severity)
			}
			if tc.escalate && (d.Deadline != 24*time.Hour || !strings.Contains(d.Reason, "SY-1") || !strings.Contains(d.Reason, "escalated")) {
				t.Errorf("Apply in level 1 = %+v; want a 24h deadline and a reason naming SY-1", d)
			}
		})
	}
}

func TestIndexAgreesWithPostGIS(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	s := NewStore(pool)
	var zs []testZone
	for i := range 300 {
		r := rand.New(rand.NewPCG(uint64(i), 3))
		zs = append(zs, testZone{fmt.Sprintf("Z-%d", i), string(BuiltinKinds[i%len(BuiltinKinds)].Kind), fmt.Sprintf("zone %d", i),
			[][][2]float64{ring(114.4+r.Float64()*0.4, 38.0+r.Float64()*0.3, 0.005+r.Float64()*0.03, 8+i%30, uint64(i))}})
	}
	if _, err := s.ImportGeoJSON(ctx, testCounty, bytes.NewReader(collection(zs...)), ImportOptions{EffectiveFrom: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ix := NewIndex(pool, nil)
	if err := ix.Load(ctx); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 9))
	hits := 0
	for range 2000 {
		lat, lon := 38.0+r.Float64()*0.3, 114.4+r.Float64()*0.4
		got := strings.Join(codesOf(ix.ZonesAt(lat, lon)), ",")
		ref, err := ZonesAtSQL(ctx, pool, lat, lon, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.Join(codesOf(ref), ","); got != want {
			t.Fatalf("zones at %v,%v: index %q, PostGIS %q", lat, lon, got, want)
		}
		if got != "" {
			hits++
		}
	}
	if hits < 200 {
		t.Fatalf("only %d of 2000 points in a zone; the test says little", hits)
	}
}

func TestVersionsAndExportRoundTrip(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	s := NewStore(pool)
	t0 := time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
	if _, err := s.ImportGeoJSON(ctx, testCounty, bytes.NewReader(collection(waterZones()...)), ImportOptions{EffectiveFrom: t0}); err != nil {
		t.Fatal(err)
	}
	var exported bytes.Buffer
	if err := s.ExportGeoJSON(ctx, testCounty, &exported); err != nil {
		t.Fatal(err)
	}
	res, err := s.ImportGeoJSON(ctx, testCounty, bytes.NewReader(exported.Bytes()), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Unchanged != 3 || res.Created+res.Updated != 0 {
		t.Fatalf("re-importing the export: %+v; want 3 unchanged", res)
	}
	// Move the level-1 zone east: version 2 from t1; at t0+1h the old one answers.
	zs := waterZones()
	zs[0].rings = [][][2]float64{{{114.60, 38.10}, {114.62, 38.10}, {114.62, 38.12}, {114.60, 38.12}, {114.60, 38.10}}}
	t1 := time.Now().Add(-24 * time.Hour)
	res, err = s.ImportGeoJSON(ctx, testCounty, bytes.NewReader(collection(zs[0])), ImportOptions{EffectiveFrom: t1, ReplaceAll: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Updated != 1 || res.Ended != 2 {
		t.Fatalf("moving SY-1 and dropping the others: %+v", res)
	}
	old, err := ZonesAtSQL(ctx, pool, 38.11, 114.51, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(codesOf(old), ","); got != "HX-1,SY-1" || old[1].Version != 1 {
		t.Fatalf("zones at the old place two days ago = %q (%+v)", got, old)
	}
	ix := NewIndex(pool, nil)
	if err := ix.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ix.ZonesAt(38.11, 114.51); len(got) != 0 {
		t.Fatalf("zones at the old place now = %v; want none", codesOf(got))
	}
	if got := ix.ZonesAt(38.11, 114.61); len(got) != 1 || got[0].Version != 2 {
		t.Fatalf("zones at the new place = %+v; want SY-1 version 2", got)
	}
}

func TestImportListsEveryProblemAndWritesNothing(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	s := NewStore(pool)
	bowtie := [][2]float64{{114.5, 38.1}, {114.6, 38.2}, {114.6, 38.1}, {114.5, 38.2}, {114.5, 38.1}}
	zs := append(waterZones(),
		testZone{"BAD-1", "wetland_park", "undefined kind", [][][2]float64{ring(114.7, 38.1, 0.01, 8, 2)}},
		testZone{"BAD-2", string(KindNoBuild), "bow tie", [][][2]float64{bowtie}},
		testZone{"SY-1", string(KindNoBuild), "duplicate", [][][2]float64{ring(114.8, 38.1, 0.01, 8, 3)}},
		testZone{"bad code!", string(KindNoBuild), "", [][][2]float64{ring(114.9, 38.1, 0.01, 8, 4)}},
	)
	_, err := s.ImportGeoJSON(ctx, testCounty, bytes.NewReader(collection(zs...)), ImportOptions{})
	st, _ := status.FromError(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("import = %v; want InvalidArgument", err)
	}
	if len(st.Message()) > 400 {
		t.Errorf("message is %d bytes; capped at 400", len(st.Message()))
	}
	rej, ok := err.(*RejectedError)
	if !ok {
		t.Fatalf("error %T is not a *RejectedError", err)
	}
	var all []string
	for _, p := range rej.Problems {
		all = append(all, p.String())
	}
	joined := strings.Join(all, "\n")
	for _, want := range []string{"feature 3 (BAD-1): kind wetland_park", "feature 4 (BAD-2): invalid polygon", "feature 5 (SY-1): code SY-1 appears twice", "feature 6 (bad code!)", "properties.name is missing"} {
		if !strings.Contains(joined, want) {
			t.Errorf("problems lack %q:\n%s", want, joined)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM zones.zones`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d zones written (%v); want none", n, err)
	}
	// Defined, the county's own kind imports.
	if err := s.DefineKind(ctx, testCounty, "wetland_park", "湿地公园", [16]byte{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportGeoJSON(ctx, testCounty, bytes.NewReader(collection(zs[3])), ImportOptions{}); err != nil {
		t.Fatalf("import of a defined county kind: %v", err)
	}
}

func TestApplyIsPureAndOrderFree(t *testing.T) {
	rules := DefaultRules(testCounty)
	z := func(code string, k Kind) Zone { return Zone{CountyCode: testCounty, Code: code, Kind: k, Name: code} }
	a := Apply(rules, []Zone{z("A", KindReserveBuffer), z("B", KindDrinkingWater1), z("C", "unknown")}, ecogridv1.Severity_SEVERITY_NORMAL)
	b := Apply(rules, []Zone{z("C", "unknown"), z("B", KindDrinkingWater1), z("A", KindReserveBuffer)}, ecogridv1.Severity_SEVERITY_NORMAL)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("order changes the decision:\n%+v\n%+v", a, b)
	}
	if !a.EscalateNow || a.MinSeverity != ecogridv1.Severity_SEVERITY_CRITICAL || a.Deadline != 24*time.Hour ||
		strings.Join(a.ZoneCodes, ",") != "130123/A,130123/B,130123/C" {
		t.Fatalf("Apply = %+v", a)
	}
	if d := Apply(rules, nil, ecogridv1.Severity_SEVERITY_SERIOUS); d.MinSeverity != ecogridv1.Severity_SEVERITY_SERIOUS || d.EscalateNow || d.Reason != "" {
		t.Fatalf("Apply without zones = %+v", d)
	}
	// A county's own rule replaces the default; a severity above the minimum stays.
	own := []Rule{{CountyCode: testCounty, Kind: KindDrinkingWater1, MinSeverity: ecogridv1.Severity_SEVERITY_NORMAL, Deadline: 12 * time.Hour}}
	d := Apply(own, []Zone{z("B", KindDrinkingWater1)}, ecogridv1.Severity_SEVERITY_SERIOUS)
	if d.EscalateNow || d.MinSeverity != ecogridv1.Severity_SEVERITY_SERIOUS || d.Deadline != 12*time.Hour {
		t.Fatalf("Apply with the county's rule = %+v", d)
	}
	// Another county's rule does not apply.
	if d := Apply(own, []Zone{{CountyCode: "130124", Code: "B", Kind: KindDrinkingWater1}}, 0); d.Deadline != 0 || d.Reason != "" {
		t.Fatalf("another county's rule applied: %+v", d)
	}
}

func TestPatrolQuotas(t *testing.T) {
	ix := NewIndex(nil, nil)
	sq := func(x0, y0 float64) *geom.MultiPolygon {
		mp := geom.NewMultiPolygon(geom.XY)
		_ = mp.Push(geom.NewPolygonFlat(geom.XY, []float64{x0, y0, x0 + 1, y0, x0 + 1, y0 + 1, x0, y0 + 1, x0, y0}, []int{10}))
		return mp
	}
	zs := []Zone{
		{CountyCode: testCounty, Code: "SY-1", Kind: KindDrinkingWater1, Geometry: sq(0, 0), ValidFrom: time.Now().Add(-time.Hour)},
		{CountyCode: testCounty, Code: "NB-1", Kind: KindNoBuild, Geometry: sq(5, 0), ValidFrom: time.Now().Add(-time.Hour)},
		{CountyCode: testCounty, Code: "XX-1", Kind: "custom", Geometry: sq(9, 0), ValidFrom: time.Now().Add(-time.Hour)},
	}
	ix.Replace(zs)
	tracks := [][]Point{
		{{0.5, 0.5}, {0.6, 0.6}, {0.5, 5.5}}, // SY-1 (twice: counts once) and NB-1
		{{0.5, 0.4}},                         // SY-1
		{{3, 3}},                             // nowhere
	}
	counts := ix.CountPatrols(tracks)
	if counts[Key{testCounty, "SY-1"}] != 2 || counts[Key{testCounty, "NB-1"}] != 1 || len(counts) != 2 {
		t.Fatalf("counts = %v", counts)
	}
	if got := ix.InForce(testCounty); len(got) != 3 || got[0].Code != "NB-1" {
		t.Fatalf("InForce = %v", codesOf(got))
	}
	q := Quotas(DefaultRules(testCounty), ix.InForce(testCounty), counts)
	if len(q) != 2 || q[0].Zone.Code != "NB-1" || q[0].Required != 2 || q[0].Done != 1 || !q[0].Short() ||
		q[1].Zone.Code != "SY-1" || q[1].Required != 30 || q[1].Done != 2 {
		t.Fatalf("quotas = %+v", q)
	}
}
