package grid

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"ecogrid/internal/grid/demo"
)

func TestNormalizeCodeAndRegions(t *testing.T) {
	for in, want := range map[string]string{
		"360323000000": "360323", "360323100000": "360323100", "360323100201": "360323100201",
		"360300000000": "360300", "360323": "360323", "360323100": "360323100", "": "",
	} {
		if got := NormalizeCode(in); got != want {
			t.Errorf("NormalizeCode(%s) = %s, want %s", in, got, want)
		}
	}
	for _, c := range []struct {
		county, region string
		ok             bool
	}{
		{"360323", "360300", true},  // 芦溪县 under 萍乡市
		{"360323", "360000", true},  // under 江西省 directly
		{"429004", "429000", true},  // 仙桃市, a county-level city the province administers
		{"360323", "360400", false}, // another prefecture
		{"360323", "430300", false}, // another province
		{"360323", "360323", false}, // itself
		{"360323", "3603", false},
		{"360323", "000000", false},
	} {
		if err := CheckCountyRegion(c.county, c.region); (err == nil) != c.ok {
			t.Errorf("CheckCountyRegion(%s, %s) = %v", c.county, c.region, err)
		}
	}
	if err := CheckCode("360300", LevelCounty); err == nil {
		t.Error("a prefecture code accepted as a county's")
	}
}

// paddedDemo is the demo county as a national file gives it: every code
// padded to twelve digits, no level property, the county naming its
// prefecture (正定县 130123 in 石家庄市 130100) as parent_code.
func paddedDemo(parent string) []byte {
	var nodes []demo.Node
	for _, n := range demo.CountyNodes() {
		n.Code += strings.Repeat("0", 12-len(n.Code))
		nodes = append(nodes, n)
	}
	data := demo.FeatureCollection(nodes)
	for _, l := range []string{"county", "township", "village"} {
		data = bytes.ReplaceAll(data, []byte(`"level":"`+l+`",`), nil)
	}
	if parent != "" {
		data = bytes.Replace(data, []byte(`"code":"130123000000",`), []byte(`"code":"130123000000","parent_code":"`+parent+`",`), 1)
	}
	return data
}

func TestParseNationalFile(t *testing.T) {
	fs, ps := ParseFeatureCollection(bytes.NewReader(paddedDemo("130100000000")), ParseLimits{})
	if len(ps) != 0 || len(fs) != 161 {
		t.Fatalf("%d features, problems %v", len(fs), ps)
	}
	levels := map[Level]int{}
	for _, f := range fs {
		levels[f.Level]++
		if f.Level == LevelCounty && (f.Code != "130123" || f.RegionCode != "130100" || f.ParentCode != "") {
			t.Fatalf("county %+v", f)
		}
		if f.Level > LevelCounty && (f.RegionCode != "" || !strings.HasPrefix(f.Code, f.ParentCode) || len(f.Code) != f.Level.CodeLen()) {
			t.Fatalf("%s: code %s parent %s region %q", f.Level, f.Code, f.ParentCode, f.RegionCode)
		}
	}
	if levels[LevelCounty] != 1 || levels[LevelTownship] != 10 || levels[LevelVillage] != 150 {
		t.Fatalf("levels %v", levels)
	}
	// Bad files: a parent that is not the county's region, a county coded
	// as a prefecture, a padded township under a padded parent of another
	// county.
	for name, doc := range map[string]string{
		"other prefecture":  collection(featureJSON(`{"code":"360323","name":"芦溪县","parent_code":"360400"}`, square)),
		"other province":    collection(featureJSON(`{"code":"360323000000","name":"芦溪县","parent_code":"430000000000"}`, square)),
		"not a region":      collection(featureJSON(`{"code":"360323","name":"芦溪县","parent_code":"360322"}`, square)),
		"prefecture code":   collection(featureJSON(`{"code":"360300","name":"萍乡市","level":"county"}`, square)),
		"wrong parent":      collection(featureJSON(`{"code":"360323100000","name":"宣风镇","parent_code":"360322000000"}`, square)),
		"padded as village": collection(featureJSON(`{"code":"360323000000","name":"芦溪县","level":"village"}`, square)),
	} {
		_, ps := ParseFeatureCollection(strings.NewReader(doc), ParseLimits{})
		if len(ps) != 1 || (ps[0].Kind != ProblemCodeParent && ps[0].Kind != ProblemBadCode) || ps[0].Message == "" {
			t.Errorf("%s: %v", name, ps)
		}
	}
}

func TestImportNationalFileKeepsCountyAsShardRoot(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	res, err := s.ImportGeoJSON(ctx, bytes.NewReader(paddedDemo("130100000000")), ImportOptions{})
	if err != nil || res.Created != 161 {
		t.Fatalf("%+v %v", res, err)
	}
	county, err := s.NodeByCode(ctx, "130123")
	if err != nil || county.Level != LevelCounty || county.ParentID.String() != "00000000-0000-0000-0000-000000000000" {
		t.Fatalf("county %+v %v", county, err)
	}
	if regions, err := s.RegionsAbove(ctx, "130123"); err != nil || !slices.Equal(regions, []string{"130000", "130100"}) {
		t.Fatalf("regions %v %v", regions, err)
	}
	var bad int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM grid.nodes WHERE county_code <> '130123' OR length(code) NOT IN (6, 9, 12)`).Scan(&bad); err != nil || bad != 0 {
		t.Fatalf("%d nodes outside the county's shard or with padded codes (%v)", bad, err)
	}
	// The same file again, and the plain demo file (no parent): unchanged,
	// the region kept.
	if again, err := s.ImportGeoJSON(ctx, bytes.NewReader(paddedDemo("130100000000")), ImportOptions{}); err != nil || again.Unchanged != 161 {
		t.Fatalf("re-import %+v %v", again, err)
	}
	importDemo(t, s)
	if regions, _ := s.RegionsAbove(ctx, "130123"); len(regions) != 2 {
		t.Fatalf("regions after a file without parent: %v", regions)
	}
	// The province directly (a county the province administers).
	if _, err := s.ImportGeoJSON(ctx, bytes.NewReader(paddedDemo("130000")), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if regions, _ := s.RegionsAbove(ctx, "130123"); !slices.Equal(regions, []string{"130000"}) {
		t.Fatalf("regions %v", regions)
	}
	// Another prefecture's code is refused whole, naming the feature.
	_, err = s.ImportGeoJSON(ctx, bytes.NewReader(paddedDemo("130200000000")), ImportOptions{})
	if st, _ := rejection(t, err); !strings.Contains(st.Message(), "130200") {
		t.Fatalf("rejection %q does not name the parent", st.Message())
	}
	if _, err := s.RegionsAbove(ctx, "999999"); err == nil {
		t.Fatal("regions of an unknown county")
	}
}
