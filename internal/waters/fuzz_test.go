package waters_test

import (
	"testing"

	"google.golang.org/grpc/codes"

	"ecogrid/internal/grid"
	"ecogrid/internal/structerr"
	"ecogrid/internal/waters"
)

// FuzzParseFeatureCollection: any bytes give features or problems, never a
// panic, and every problem message is short enough for an app to show.
func FuzzParseFeatureCollection(f *testing.F) {
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"HTH-01","name":"a","body_code":"HTH","body_name":"滹沱河","body_kind":"river","node_code":"130123","seq":1},"geometry":{"type":"LineString","coordinates":[[114.4,38.1],[114.5,38.1]]}}]}`))
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"L","name":"a","body_code":"L","body_name":"湖","body_kind":"lake","node_code":"130123001"},"geometry":{"type":"Polygon","coordinates":[[[114.4,38.1],[114.5,38.1],[114.5,38.2],[114.4,38.1]]]}}]}`))
	f.Add([]byte(`{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"MultiLineString","coordinates":[[[1,2]],[]]}}]}`))
	f.Add([]byte(`{"type":"FeatureCollection","features":[null, 1, "x"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs, ps := waters.ParseFeatureCollection(data, waters.ParseLimits{MaxFeatureVertices: 1000})
		for _, p := range ps {
			if len(p.String()) > 400 {
				t.Fatalf("problem of %d bytes: %.100s", len(p.String()), p.String())
			}
		}
		for _, f := range fs {
			if f.Geometry == nil || f.Code == "" || !f.BodyKind.Valid() {
				t.Fatalf("accepted feature %+v", f)
			}
		}
	})
}

// FuzzChiefRequest: the checks of an appointment never panic and refuse
// with a short InvalidArgument an app can show.
func FuzzChiefRequest(f *testing.F) {
	f.Add("0f8fad5b-d9cb-469f-a165-70867728950e", "7c9e6679-7425-40de-944b-e07fc1f90ae7", "张三", "13900000001", "reach_chief", "HTH-01", "", "cleaning", "day", 1, "李四")
	f.Add("x", "y", "", "", "chief_river_chief", "", "130123", "patrol", "quarter", 0, "")
	f.Fuzz(func(t *testing.T, id, person, name, phone, role, reach, county, kind, period string, count int, cleaner string) {
		n := waters.NewChief{ID: id, PersonID: person, Name: name, Phone: phone, Role: waters.ChiefRole(role), ReachCode: reach, CountyCode: county,
			Tasks: []waters.ChiefTask{{Kind: kind, Period: grid.TaskPeriod(period), Count: count, CleanerName: cleaner}}}
		err := n.Check()
		if err == nil {
			return
		}
		if structerr.Code(err) != codes.InvalidArgument || len(err.Error()) > 400 {
			t.Fatalf("refusal %v (%d bytes): %.100s", structerr.Code(err), len(err.Error()), err)
		}
	})
}
