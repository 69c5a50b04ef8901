package departments

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/structerr"
)

const county = "130123"

func open(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := database.Open(context.Background(), database.Config{URL: dbtest.NewURL(t), MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func person(t *testing.T, pool *pgxpool.Pool, county, name string) string {
	t.Helper()
	id := uuid.NewString()
	if _, err := pool.Exec(context.Background(), `INSERT INTO people.persons (id, county_code, name) VALUES ($1, $2, $3)`, id, county, name); err != nil {
		t.Fatal(err)
	}
	return id
}

func dept(t *testing.T, pool *pgxpool.Pool, code, zh string, covers ...string) Department {
	t.Helper()
	ctx := context.Background()
	d, err := Create(ctx, pool, Department{ID: uuid.NewString(), CountyCode: county, Code: code, NameZh: zh})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range covers {
		if err := Cover(ctx, pool, d.ID, n, time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestTaxonomyChineseFirstAndCountyOwn(t *testing.T) {
	ctx := context.Background()
	pool := open(t)
	cats, err := Categories(ctx, pool, county)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"illegal_dumping": "非法倾倒", "illegal_sand_mining": "非法采砂", "open_burning": "露天焚烧",
		"sewage_discharge": "偷排漏排", "livestock_pollution": "畜禽养殖污染", "illegal_logging": "滥伐林木",
		"illegal_land_occupation": "违法占地", "black_odorous_water": "黑臭水体"}
	if len(cats) != len(want) {
		t.Fatalf("%d categories, want %d: %+v", len(cats), len(want), cats)
	}
	for _, c := range cats {
		if want[c.Code] != c.NameZh || c.NameEn == "" {
			t.Errorf("category %+v", c)
		}
	}
	if err := AddCategory(ctx, pool, Category{CountyCode: county, Code: "straw_burning", NameZh: "秸秆焚烧", NameEn: "straw burning"}); err != nil {
		t.Fatal(err)
	}
	mine, _ := Categories(ctx, pool, county)
	other, _ := Categories(ctx, pool, "130124")
	if len(mine) != 9 || len(other) != 8 {
		t.Fatalf("after a county's own category: %d here, %d in the next county", len(mine), len(other))
	}
	if err := AddCategory(ctx, pool, Category{CountyCode: county, Code: "Bad Code", NameZh: "x"}); structerr.Code(err) != codes.InvalidArgument {
		t.Errorf("bad code: %v", err)
	}
}

func TestRoutingPerCategory(t *testing.T) {
	ctx := context.Background()
	pool := open(t)
	urban := dept(t, pool, "urban_management", "城管局")
	water := dept(t, pool, "water_resources", "水利局")
	forest := dept(t, pool, "forestry", "林业局")
	eco := dept(t, pool, "ecology_environment", "生态环境分局")
	land := dept(t, pool, "natural_resources", "自然资源局")
	agri := dept(t, pool, "agriculture", "农业农村局")
	rules := []Route{
		{Category: "illegal_dumping", LeadDepartmentID: urban.ID, Cooperating: []string{eco.ID}, DeadlineDays: 3},
		{Category: "illegal_sand_mining", LeadDepartmentID: water.ID, Cooperating: []string{land.ID}, DeadlineDays: 7},
		{Category: "illegal_sand_mining", ZoneKind: "drinking_water_source", LeadDepartmentID: eco.ID, Cooperating: []string{water.ID}, DeadlineDays: 1},
		{Category: "illegal_logging", LeadDepartmentID: forest.ID, DeadlineDays: 15},
		{Category: "livestock_pollution", LeadDepartmentID: agri.ID, Cooperating: []string{eco.ID}, DeadlineDays: 10},
		{Category: "sewage_discharge", LeadDepartmentID: eco.ID, DeadlineDays: 0},
		{Category: "illegal_land_occupation", LeadDepartmentID: land.ID, Cooperating: []string{agri.ID, urban.ID}, DeadlineDays: 30},
		{Category: "black_odorous_water", LeadDepartmentID: eco.ID, Cooperating: []string{water.ID, urban.ID}, DeadlineDays: 20},
		// A county's own category routes like the defaults.
		{Category: "straw_burning", LeadDepartmentID: agri.ID, Cooperating: []string{eco.ID}, DeadlineDays: 1},
	}
	if err := AddCategory(ctx, pool, Category{CountyCode: county, Code: "straw_burning", NameZh: "秸秆焚烧", NameEn: "straw burning"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		r.CountyCode = county
		if err := SetRoute(ctx, pool, r); err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
	}
	cases := []struct {
		category, zone string
		lead           string
		coop           []string
		days           int
	}{
		{"illegal_dumping", "", urban.ID, []string{eco.ID}, 3},
		{"illegal_sand_mining", "", water.ID, []string{land.ID}, 7},
		{"illegal_sand_mining", "nature_reserve", water.ID, []string{land.ID}, 7},
		{"illegal_sand_mining", "drinking_water_source", eco.ID, []string{water.ID}, 1},
		{"illegal_logging", "", forest.ID, nil, 15},
		{"livestock_pollution", "", agri.ID, []string{eco.ID}, 10},
		{"sewage_discharge", "", eco.ID, nil, 0},
		{"illegal_land_occupation", "", land.ID, []string{agri.ID, urban.ID}, 30},
		{"black_odorous_water", "", eco.ID, []string{water.ID, urban.ID}, 20},
		{"straw_burning", "", agri.ID, []string{eco.ID}, 1},
	}
	for _, c := range cases {
		r, ok, err := RouteFor(ctx, pool, county, c.category, c.zone)
		if err != nil || !ok {
			t.Fatalf("%s/%s: %v %v", c.category, c.zone, ok, err)
		}
		if r.LeadDepartmentID != c.lead || len(r.Cooperating) != len(c.coop) || r.DeadlineDays != c.days {
			t.Errorf("%s/%s: routed %+v", c.category, c.zone, r)
		}
		for i := range c.coop {
			if r.Cooperating[i] != c.coop[i] {
				t.Errorf("%s/%s: cooperating %v, want %v", c.category, c.zone, r.Cooperating, c.coop)
			}
		}
	}
	if _, ok, err := RouteFor(ctx, pool, county, "open_burning", ""); ok || err != nil {
		t.Errorf("unrouted category: %v %v", ok, err)
	}
	if _, ok, _ := RouteFor(ctx, pool, "130124", "illegal_dumping", ""); ok {
		t.Error("another county's rule applied")
	}
	bad := []Route{
		{CountyCode: county, Category: "no_such", LeadDepartmentID: urban.ID},
		{CountyCode: county, Category: "open_burning", LeadDepartmentID: urban.ID, Cooperating: []string{urban.ID}},
		{CountyCode: county, Category: "open_burning", LeadDepartmentID: urban.ID, DeadlineDays: 61},
	}
	for _, r := range bad {
		if err := SetRoute(ctx, pool, r); structerr.Code(err) != codes.InvalidArgument {
			t.Errorf("%+v: %v, want InvalidArgument", r, err)
		}
	}
	other, err := Create(ctx, pool, Department{ID: uuid.NewString(), CountyCode: "130124", Code: "forestry", NameZh: "林业局"})
	if err != nil {
		t.Fatal(err)
	}
	if err := SetRoute(ctx, pool, Route{CountyCode: county, Category: "open_burning", LeadDepartmentID: other.ID}); structerr.Code(err) != codes.InvalidArgument {
		t.Errorf("another county's department as lead: %v", err)
	}
}

func TestReachOnlyInsideDepartmentAndArea(t *testing.T) {
	ctx := context.Background()
	pool := open(t)
	water := dept(t, pool, "water_resources", "水利局", "130123101")
	forest := dept(t, pool, "forestry", "林业局", county)
	staff := person(t, pool, county, "赵强")
	if _, err := AddMember(ctx, pool, Membership{ID: uuid.NewString(), DepartmentID: water.ID, PersonID: staff, Role: "staff",
		ValidFrom: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s, err := Reach(ctx, pool, water.ID, staff, "130123101201", now)
	if err != nil || s.NodeCode != "130123101" || s.Department.Code != "water_resources" || s.Role != "staff" {
		t.Fatalf("inside: %+v %v", s, err)
	}
	for _, c := range []struct{ what, dept, node string }{
		{"outside the area", water.ID, "130123102201"},
		{"another department", forest.ID, "130123101201"},
		{"no such department", uuid.NewString(), "130123101201"},
	} {
		if _, err := Reach(ctx, pool, c.dept, staff, c.node, now); structerr.Code(err) != codes.NotFound {
			t.Errorf("%s: %v, want NotFound", c.what, err)
		}
	}
	if _, err := Reach(ctx, pool, water.ID, staff, "130123101201", now.Add(-2*time.Hour)); structerr.Code(err) != codes.NotFound {
		t.Errorf("before the membership began: %v", err)
	}
	// Another county's person cannot join.
	stranger := person(t, pool, "130124", "钱进")
	if _, err := AddMember(ctx, pool, Membership{ID: uuid.NewString(), DepartmentID: water.ID, PersonID: stranger, Role: "staff"}); structerr.Code(err) != codes.FailedPrecondition {
		t.Errorf("a person of another county: %v", err)
	}
	// A station covers only its township.
	st, err := Create(ctx, pool, Department{ID: uuid.NewString(), CountyCode: county, TownshipCode: "130123101", Code: "water_station_101", NameZh: "水利站"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Cover(ctx, pool, st.ID, "130123102", now); structerr.Code(err) != codes.InvalidArgument {
		t.Errorf("station beyond its township: %v", err)
	}
}
