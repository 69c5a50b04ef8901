package grid

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"ecogrid/internal/structerr/structerrtest"
)

// FuzzCheckNode runs the checks of a node given through CreateNode or
// UpdateNode (code for its level, name, tasks and the GeoJSON geometry
// text) on arbitrary input. A refusal is one short InvalidArgument naming
// what is wrong; an accepted node has its parent code and a geometry
// within the vertex limit.
func FuzzCheckNode(f *testing.F) {
	square := `{"type":"Polygon","coordinates":[[[114.4,38.05],[114.5,38.05],[114.5,38.1],[114.4,38.1],[114.4,38.05]]]}`
	f.Add("130123005", "北渠乡", uint8(LevelTownship), "patrol", 4, square)
	f.Add("130123005001", "马家营村", uint8(LevelVillage), "", 0, `{"type":"MultiPolygon","coordinates":[[[[114.4,38.05],[114.5,38.05],[114.5,38.1],[114.4,38.05]]]]}`)
	f.Add(strings.Repeat("9", 300), strings.Repeat("名", 300), uint8(9), strings.Repeat("k", 300), -1, `{"type":"Polygon","coordinates":[[[1e400,0],[0,0],[0,0]]]}`)
	f.Add("130123", "县", uint8(LevelCounty), "x", 1, `{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]],[[5,5],[6,5],[6,6],[5,5]],[[7,7],[8,7],[8,8],[7,7]]]}`)
	f.Add("130123005", "乡", uint8(LevelTownship), "", 0, `{"type":"GeometryCollection","geometries":[]}`)
	limits := ParseLimits{MaxRingVertices: 200, MaxFeatureVertices: 1000}
	f.Fuzz(func(t *testing.T, code, name string, level uint8, taskKind string, taskCount int, geometry string) {
		ft := Feature{Code: code, Name: name, Level: Level(level)}
		if taskKind != "" || taskCount != 0 {
			ft.Tasks = []Task{{Kind: taskKind, Count: taskCount, Period: "week"}}
		}
		if err := checkFeatureFields(&ft, geometry, limits); err != nil {
			structerrtest.CheckRefusal(t, err, codes.InvalidArgument)
			return
		}
		if ft.ParentCode != ParentCode(code) || ft.Geometry == nil || ft.Geometry.NumPolygons() == 0 {
			t.Fatalf("accepted node %+v", ft)
		}
		if n := len(ft.Geometry.FlatCoords()) / ft.Geometry.Stride(); n > limits.MaxFeatureVertices {
			t.Fatalf("accepted %d vertices", n)
		}
	})
}
