package grid

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/twpayne/go-geom"

	"ecogrid/internal/grid/demo"
)

func TestParseDemoCounty(t *testing.T) {
	fs, ps := ParseFeatureCollection(bytes.NewReader(demo.County()), ParseLimits{})
	if len(ps) != 0 {
		t.Fatalf("problems: %v", ps.Summary(5))
	}
	if len(fs) != 161 {
		t.Fatalf("%d features, want 161", len(fs))
	}
	v := fs[11]
	if v.Level != LevelVillage || v.ParentCode != v.Code[:9] || len(v.Tasks) != 2 || v.Geometry.NumPolygons() != 1 {
		t.Fatalf("village parsed as %+v", v)
	}
}

func featureJSON(props, geometry string) string {
	return fmt.Sprintf(`{"type":"Feature","properties":%s,"geometry":%s}`, props, geometry)
}

func collection(features ...string) string {
	return `{"type":"FeatureCollection","features":[` + strings.Join(features, ",") + `]}`
}

const square = `{"type":"Polygon","coordinates":[[[114.4,38.05],[114.5,38.05],[114.5,38.1],[114.4,38.1],[114.4,38.05]]]}`

func TestParseReportsEveryProblemNamingTheFeature(t *testing.T) {
	good := featureJSON(`{"code":"130123","name":"河源县","level":"county"}`, square)
	doc := collection(
		good,
		featureJSON(`{"code":"130123001001","name":"张庄村","level":"village"}`, `{"type":"Polygon","coordinates":[[[114.4,38.05],[114.5,38.05],[114.5,38.1],[114.4,38.1]]]}`),
		featureJSON(`{"code":"130123001002","name":"王庄村","level":"village"}`, `{"type":"Polygon","coordinates":[[[114.4,38.05],[114.5,38.05],[114.4,38.05]]]}`),
		featureJSON(`{"code":"130123001003","name":"李庄村","level":"village"}`, `{"type":"Polygon","coordinates":[[[114.4,38.05],[1e308,38.05],[114.5,38.1],[114.4,38.05]]]}`),
		featureJSON(`{"code":"13012300100","name":"赵庄村","level":"village"}`, square),
		featureJSON(`{"name":"无码村","level":"village"}`, square),
		featureJSON(`{"code":"130123001005","name":"","level":"village"}`, square),
		featureJSON(`{"code":"130123001006","name":"点村","level":"village"}`, `{"type":"Point","coordinates":[114.4,38.05]}`),
		featureJSON(`{"code":"130123001007","name":"父村","level":"village","parent_code":"130123002"}`, square),
		featureJSON(`{"code":"130123001008","name":"任务村","level":"village","tasks":[{"kind":"patrol","count":0,"period":"week"}]}`, square),
		featureJSON(`{"code":"130123001009","name":"纬度村","level":"village"}`, `{"type":"Polygon","coordinates":[[[114.4,91],[114.5,38.05],[114.5,38.1],[114.4,91]]]}`),
	)
	fs, ps := ParseFeatureCollection(strings.NewReader(doc), ParseLimits{})
	if len(fs) != 1 || fs[0].Code != "130123" {
		t.Fatalf("features %v, want only the county", fs)
	}
	want := map[int]string{
		1:  "ring 1 is not closed",
		2:  "ring 1 has 3 positions; a closed ring needs at least 4",
		3:  "position 2 [1e308, 38.05] is out of range",
		4:  "has 11 digits; a village code has 12",
		5:  `property "code" is missing`,
		6:  `property "name" is missing`,
		7:  "geometry is a Point",
		8:  "does not extend its parent's code 130123002",
		9:  "count 0 is not between 1 and 1000",
		10: "position 1 [114.4, 91] is out of range",
	}
	got := map[int]string{}
	for _, p := range ps {
		got[p.Feature] += p.String() + "|"
	}
	for i, w := range want {
		if !strings.Contains(got[i], w) {
			t.Errorf("feature %d: problems %q, want one containing %q", i, got[i], w)
		}
	}
	if !strings.Contains(got[1], "feature 1 (130123001001 张庄村)") {
		t.Errorf("problem does not name the feature: %q", got[1])
	}
}

func TestParseMalformedFiles(t *testing.T) {
	full := string(demo.County())
	for name, doc := range map[string]string{
		"empty":          "",
		"not json":       "hello",
		"array":          "[1,2]",
		"truncated":      full[:len(full)/2],
		"NaN literal":    collection(featureJSON(`{"code":"130123","name":"县","level":"county"}`, `{"type":"Polygon","coordinates":[[[NaN,38],[114,38],[114,39],[NaN,38]]]}`)),
		"wrong type":     `{"type":"Feature","features":[]}`,
		"no features":    `{"type":"FeatureCollection"}`,
		"trailing junk":  collection() + "{}",
		"features obj":   `{"type":"FeatureCollection","features":{}}`,
		"1e400 overflow": collection(featureJSON(`{"code":"130123","name":"县","level":"county"}`, `{"type":"Polygon","coordinates":[[[1e400,38],[114,38],[114,39],[1e400,38]]]}`)),
	} {
		fs, ps := ParseFeatureCollection(strings.NewReader(doc), ParseLimits{})
		if len(ps.Errors()) == 0 {
			t.Errorf("%s: accepted with %d features", name, len(fs))
			continue
		}
		t.Logf("%s: %s", name, ps.Summary(2))
	}
}

func TestParseRefusesHugeRingBeforeDecoding(t *testing.T) {
	const n = 1_000_000
	var b strings.Builder
	b.WriteString(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"130123","name":"县","level":"county"},"geometry":{"type":"Polygon","coordinates":[[`)
	for i := range n {
		a := 2 * math.Pi * float64(i) / n
		fmt.Fprintf(&b, "[%.7f,%.7f],", 114.5+0.1*math.Cos(a), 38.1+0.1*math.Sin(a))
	}
	b.WriteString(`[114.6,38.1]]]}}]}`)
	_, ps := ParseFeatureCollection(strings.NewReader(b.String()), ParseLimits{})
	if len(ps) != 1 || ps[0].Kind != ProblemTooLarge || !strings.Contains(ps[0].String(), "a ring has 1000001 vertices, over the limit of 100000") {
		t.Fatalf("problems %v", ps.Summary(3))
	}
	// A configurable limit.
	_, ps = ParseFeatureCollection(strings.NewReader(collection(featureJSON(`{"code":"130123","name":"县","level":"county"}`, square))), ParseLimits{MaxRingVertices: 4})
	if len(ps) != 1 || ps[0].Kind != ProblemTooLarge {
		t.Fatalf("limit 4 on a 5-position ring: %v", ps)
	}
}

func TestParseLevelFromFileOrCode(t *testing.T) {
	doc := collection(featureJSON(`{"code":"130123001","name":"城关镇"}`, square), featureJSON(`{"code":130123002,"name":"河西镇"}`, `{"type":"MultiPolygon","coordinates":[[[[114.4,38.05],[114.5,38.05],[114.5,38.1],[114.4,38.05]]],[[[115.4,38.05],[115.5,38.05],[115.5,38.1],[115.4,38.05]]]]}`))
	fs, ps := ParseFeatureCollection(strings.NewReader(doc), ParseLimits{})
	if len(ps) != 0 || len(fs) != 2 || fs[0].Level != LevelTownship || fs[1].Code != "130123002" || fs[1].Geometry.NumPolygons() != 2 {
		t.Fatalf("%v %+v", ps, fs)
	}
	_, ps = ParseFeatureCollection(strings.NewReader(doc), ParseLimits{DefaultLevel: LevelVillage})
	if len(ps) != 2 || ps[0].Kind != ProblemBadCode {
		t.Fatalf("township codes in a village file: %v", ps)
	}
}

func TestExportRoundTrip(t *testing.T) {
	fs, _ := ParseFeatureCollection(bytes.NewReader(demo.County()), ParseLimits{})
	var b bytes.Buffer
	b.WriteString(FeatureCollectionHeader)
	for i, f := range fs[:20] {
		if i > 0 {
			b.WriteString(",\n")
		}
		j, err := FeatureJSON(&Node{ID: newID(), Code: f.Code, Name: f.Name, Level: f.Level, Geometry: f.Geometry, Tasks: f.Tasks, Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
	}
	b.WriteString(FeatureCollectionFooter)
	back, ps := ParseFeatureCollection(&b, ParseLimits{})
	if len(ps) != 0 || len(back) != 20 {
		t.Fatalf("round trip: %v", ps.Summary(3))
	}
	for i := range back {
		a, z := fs[i].Geometry.FlatCoords(), back[i].Geometry.FlatCoords()
		if len(a) != len(z) || back[i].Code != fs[i].Code || back[i].Name != fs[i].Name || len(back[i].Tasks) != len(fs[i].Tasks) || back[i].ID.String() == "" {
			t.Fatalf("feature %d changed", i)
		}
		for k := range a {
			if a[k] != z[k] {
				t.Fatalf("feature %d coordinate %d: %v != %v", i, k, a[k], z[k])
			}
		}
	}
}

func FuzzParseFeatureCollection(f *testing.F) {
	f.Add([]byte(collection(featureJSON(`{"code":"130123","name":"河源县","level":"county"}`, square))))
	f.Add([]byte(collection(featureJSON(`{"code":"130123001","name":"镇","tasks":[{"kind":"patrol","count":2,"period":"week"}]}`, `{"type":"MultiPolygon","coordinates":[[[[1,2],[3,4],[5,6],[1,2]]]]}`))))
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature"`))
	f.Add([]byte(`{"features":[],"type":"FeatureCollection"}`))
	// National files (issue 15): padded codes, a county under its prefecture.
	f.Add([]byte(collection(featureJSON(`{"code":"360323000000","name":"芦溪县","parent_code":"360300000000"}`, square))))
	f.Add([]byte(collection(featureJSON(`{"code":"360323","name":"芦溪县","parent_code":"360300"}`, square))))
	f.Add([]byte(collection(featureJSON(`{"code":"360323100000","name":"宣风镇","parent_code":"360323000000"}`, square))))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, ps := ParseFeatureCollection(bytes.NewReader(data), ParseLimits{MaxFeatures: 50, MaxRingVertices: 500, MaxFeatureVertices: 2000})
		for _, p := range ps {
			if p.Message == "" || p.Kind == "" {
				t.Fatalf("empty problem %+v", p)
			}
		}
		for _, ft := range fs {
			if ft.Geometry == nil || ft.Code == "" || ft.Name == "" || !ft.Level.Valid() {
				t.Fatalf("accepted an incomplete feature %+v", ft)
			}
			if CheckCode(ft.Code, ft.Level) != nil {
				t.Fatalf("accepted bad code %q", ft.Code)
			}
			if ft.RegionCode != "" && (ft.Level != LevelCounty || CheckCountyRegion(ft.Code, ft.RegionCode) != nil) {
				t.Fatalf("accepted region %q above %s %s", ft.RegionCode, ft.Level, ft.Code)
			}
			if ft.Level != LevelCounty && ft.ParentCode != ParentCode(ft.Code) {
				t.Fatalf("%s %s has parent %q", ft.Level, ft.Code, ft.ParentCode)
			}
			flat := ft.Geometry.FlatCoords()
			for i := 0; i+1 < len(flat); i += 2 {
				if math.IsNaN(flat[i]) || math.Abs(flat[i]) > 180 || math.Abs(flat[i+1]) > 90 {
					t.Fatalf("accepted coordinate %v, %v", flat[i], flat[i+1])
				}
			}
			for p := range ft.Geometry.NumPolygons() {
				poly := ft.Geometry.Polygon(p)
				for r := range poly.NumLinearRings() {
					ring := poly.LinearRing(r)
					if ring.NumCoords() < 4 || !ring.Coord(0).Equal(geom.XY, ring.Coord(ring.NumCoords()-1)) {
						t.Fatalf("accepted an open or short ring")
					}
				}
			}
		}
	})
}
