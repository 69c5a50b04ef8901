// Package demo builds synthetic grids that tile exactly: the demo county
// used by `gridctl dev` and by tests (about 10 townships and 150 villages
// with GB/T 2260-style codes and Chinese names), and national-scale
// tilings of hundreds of thousands of villages for benchmarks.
//
// Every grid is a jittered lattice: villages are lattice cells whose edges
// carry a few deterministic wiggle points, townships and counties are
// rectangular blocks of cells whose boundaries walk the same lattice edges,
// so children tile their parents exactly (no gaps, no overlaps, shared
// vertices bit-identical). Output is deterministic for a given Config.
//
// The package depends on nothing in ecogrid, so grid tests can use it.
package demo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Level numbers as in package grid.
const (
	LevelCounty   = 1
	LevelTownship = 2
	LevelVillage  = 3
)

// Node is one generated grid node: a single polygon (outer ring only,
// counter-clockwise, closed) in WGS-84 [lon, lat].
type Node struct {
	Code  string
	Name  string
	Level int
	Ring  [][2]float64
	Tasks []Task
}

// Task mirrors grid.Task in GeoJSON.
type Task struct {
	Kind   string `json:"kind"`
	Count  int    `json:"count"`
	Period string `json:"period"`
	Note   string `json:"note,omitempty"`
}

// Block is a rectangle of lattice cells [I0, I1) × [J0, J1).
type Block struct{ I0, J0, I1, J1 int }

// lattice generates shared, jittered vertices and edge wiggles.
type lattice struct {
	originLon, originLat float64
	cellLon, cellLat     float64
	edgePoints           int
	seed                 uint64
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unit returns a deterministic number in [-1, 1) for the given key.
func (l *lattice) unit(a, b, c, d uint64) float64 {
	h := splitmix(l.seed ^ splitmix(a^splitmix(b^splitmix(c^splitmix(d)))))
	return float64(h>>11)/float64(1<<52) - 1
}

func round7(v float64) float64 { return math.Round(v*1e7) / 1e7 }

// vertex is lattice vertex (i, j), jittered by up to 15% of a cell.
func (l *lattice) vertex(i, j int) [2]float64 {
	x := float64(i) + 0.15*l.unit(1, uint64(i), uint64(j), 0)
	y := float64(j) + 0.15*l.unit(2, uint64(i), uint64(j), 0)
	return [2]float64{round7(l.originLon + x*l.cellLon), round7(l.originLat + y*l.cellLat)}
}

// edge returns the interior points of the lattice edge from (i, j) going
// east (horizontal) or north, in that canonical direction.
func (l *lattice) edge(i, j int, horizontal bool) [][2]float64 {
	a := l.vertex(i, j)
	var b [2]float64
	var kind uint64 = 3
	if horizontal {
		b = l.vertex(i+1, j)
	} else {
		b = l.vertex(i, j+1)
		kind = 4
	}
	n := l.edgePoints
	out := make([][2]float64, 0, n)
	dx, dy := b[0]-a[0], b[1]-a[1]
	// Perpendicular in cell units, so the wiggle scales with the cell.
	px, py := -dy/l.cellLat*l.cellLon, dx/l.cellLon*l.cellLat
	norm := math.Hypot(px/l.cellLon, py/l.cellLat)
	if norm > 0 {
		px, py = px/norm, py/norm
	}
	for k := 1; k <= n; k++ {
		t := float64(k) / float64(n+1)
		off := 0.05 * l.unit(kind, uint64(i), uint64(j), uint64(k))
		out = append(out, [2]float64{
			round7(a[0] + t*dx + off*px),
			round7(a[1] + t*dy + off*py),
		})
	}
	return out
}

// ring walks the boundary of a block counter-clockwise (east along the
// south side, north along the east side, west along the north side, south
// along the west side) and closes it.
func (l *lattice) ring(b Block) [][2]float64 {
	var r [][2]float64
	for i := b.I0; i < b.I1; i++ { // south side, eastward
		r = append(r, l.vertex(i, b.J0))
		r = append(r, l.edge(i, b.J0, true)...)
	}
	for j := b.J0; j < b.J1; j++ { // east side, northward
		r = append(r, l.vertex(b.I1, j))
		r = append(r, l.edge(b.I1, j, false)...)
	}
	for i := b.I1; i > b.I0; i-- { // north side, westward
		r = append(r, l.vertex(i, b.J1))
		r = append(r, reversed(l.edge(i-1, b.J1, true))...)
	}
	for j := b.J1; j > b.J0; j-- { // west side, southward
		r = append(r, l.vertex(b.I0, j))
		r = append(r, reversed(l.edge(b.I0, j-1, false))...)
	}
	return append(r, r[0])
}

func reversed(p [][2]float64) [][2]float64 {
	for i, j := 0, len(p)-1; i < j; i, j = i+1, j-1 {
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// FeatureCollection renders nodes as one GeoJSON FeatureCollection with a
// level property, the format `gridctl grid import` and ImportGeoJSON read.
func FeatureCollection(nodes []Node) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"type":"FeatureCollection","features":[` + "\n")
	for i, n := range nodes {
		if i > 0 {
			buf.WriteString(",\n")
		}
		props := map[string]any{
			"code":  n.Code,
			"name":  n.Name,
			"level": levelName(n.Level),
		}
		if n.Tasks != nil {
			props["tasks"] = n.Tasks
		}
		p, _ := json.Marshal(props)
		buf.WriteString(`{"type":"Feature","properties":`)
		buf.Write(p)
		buf.WriteString(`,"geometry":{"type":"Polygon","coordinates":[[`)
		for k, c := range n.Ring {
			if k > 0 {
				buf.WriteByte(',')
			}
			buf.WriteByte('[')
			buf.WriteString(strconv.FormatFloat(c[0], 'f', -1, 64))
			buf.WriteByte(',')
			buf.WriteString(strconv.FormatFloat(c[1], 'f', -1, 64))
			buf.WriteByte(']')
		}
		buf.WriteString("]]}}")
	}
	buf.WriteString("\n]}\n")
	return buf.Bytes()
}

func levelName(l int) string {
	switch l {
	case LevelCounty:
		return "county"
	case LevelTownship:
		return "township"
	case LevelVillage:
		return "village"
	}
	return strconv.Itoa(l)
}

// Township names of the demo county (乡镇), and the parts village names are
// made of. Synthetic, in the style of the North China Plain.
var (
	townshipNames = []string{
		"城关镇", "河西镇", "柳林镇", "东王庄乡", "北渠乡",
		"石桥镇", "南营乡", "白杨镇", "双井乡", "新兴街道",
	}
	villagePrefixes = []string{
		"张", "王", "李", "赵", "刘", "陈", "杨", "孙", "周", "吴", "郑", "冯", "马", "朱", "胡", "郭",
		"何", "高", "林", "罗", "梁", "宋", "唐", "许", "韩", "邓", "曹", "彭", "曾", "田", "董", "袁",
		"东", "西", "南", "北", "前", "后", "大", "小", "上", "下", "新", "老", "柳", "杏", "枣", "槐",
	}
	villageSuffixes = []string{"庄村", "家营村", "家屯村", "家庄村", "官村", "集村", "堡村", "寨村", "店村", "桥村", "河村", "洼村", "岗村", "楼村"}
)

// villageName returns a name unique within the county for village number n.
func villageName(n int) string {
	p := villagePrefixes[n%len(villagePrefixes)]
	s := villageSuffixes[(n/len(villagePrefixes)+n*7)%len(villageSuffixes)]
	return p + s
}

// DemoCountyCode is the demo county's code (GB/T 2260 style, Hebei).
const DemoCountyCode = "130123"

// DemoCountyName is the demo county's name.
const DemoCountyName = "河源县"

// CountyNodes builds the demo county: 150 villages (a 15 × 10 lattice of
// cells about 2 km across near 38.1°N 114.5°E, each ring with 3 wiggle
// points per edge), grouped into 10 townships of 12 to 18 villages (five
// columns of three cells, each split into a southern and a northern
// township at a different row), one county around them all. Codes are
// 130123, 130123001…130123010, 130123001001…; parents come before children.
func CountyNodes() []Node {
	l := &lattice{originLon: 114.40, originLat: 38.05, cellLon: 0.024, cellLat: 0.02, edgePoints: 3, seed: 130123}
	const cols, rows = 15, 10
	splits := []int{4, 5, 6, 5, 4} // row where each column group's northern township starts
	villageTasks := []Task{{Kind: "patrol", Count: 2, Period: "week", Note: "全域巡查"}, {Kind: "river_inspection", Count: 1, Period: "month"}}
	townshipTasks := []Task{{Kind: "supervision", Count: 1, Period: "week", Note: "督查村级网格"}}
	nodes := []Node{{Code: DemoCountyCode, Name: DemoCountyName, Level: LevelCounty, Ring: l.ring(Block{0, 0, cols, rows})}}
	var villages []Node
	t, v := 0, 0
	for g := range 5 {
		for half := range 2 {
			b := Block{I0: g * 3, I1: g*3 + 3, J0: 0, J1: splits[g]}
			if half == 1 {
				b.J0, b.J1 = splits[g], rows
			}
			t++
			tcode := fmt.Sprintf("%s%03d", DemoCountyCode, t)
			nodes = append(nodes, Node{Code: tcode, Name: townshipNames[t-1], Level: LevelTownship, Ring: l.ring(b), Tasks: townshipTasks})
			k := 0
			for j := b.J0; j < b.J1; j++ {
				for i := b.I0; i < b.I1; i++ {
					k++
					v++
					villages = append(villages, Node{
						Code:  fmt.Sprintf("%s%03d", tcode, k),
						Name:  villageName(v - 1),
						Level: LevelVillage,
						Ring:  l.ring(Block{i, j, i + 1, j + 1}),
						Tasks: villageTasks,
					})
				}
			}
		}
	}
	return append(nodes, villages...)
}

// County returns the demo county as one GeoJSON FeatureCollection with a
// level property: what `gridctl dev` imports.
func County() []byte { return FeatureCollection(CountyNodes()) }

// National builds a synthetic tiling of at least villages villages for
// benchmarks: counties of 20 townships × 25 villages (500 villages) laid out
// over China (73–135°E, 18–53°N), each village a lattice cell with
// edgePoints wiggle points per edge. Codes are 6/9/12 digits starting at
// county 100000; names are synthetic.
func National(villages, edgePoints int) []Node {
	const tcols, trows, vcols, vrows = 5, 4, 5, 5 // per county: 5×4 townships of 5×5 villages
	perCounty := tcols * trows * vcols * vrows
	counties := (villages + perCounty - 1) / perCounty
	ccols := int(math.Ceil(math.Sqrt(float64(counties) * 1.5)))
	crows := (counties + ccols - 1) / ccols
	ncols, nrows := ccols*tcols*vcols, crows*trows*vrows
	l := &lattice{originLon: 73.5, originLat: 18.5, cellLon: 61.0 / float64(ncols), cellLat: 34.0 / float64(nrows), edgePoints: edgePoints, seed: 2800}
	var nodes []Node
	for c := range counties {
		ci, cj := (c%ccols)*tcols*vcols, (c/ccols)*trows*vrows
		ccode := strconv.Itoa(100000 + c)
		nodes = append(nodes, Node{Code: ccode, Name: fmt.Sprintf("合成%d县", c+1), Level: LevelCounty,
			Ring: l.ring(Block{ci, cj, ci + tcols*vcols, cj + trows*vrows})})
		for t := range tcols * trows {
			ti, tj := ci+(t%tcols)*vcols, cj+(t/tcols)*vrows
			tcode := fmt.Sprintf("%s%03d", ccode, t+1)
			nodes = append(nodes, Node{Code: tcode, Name: fmt.Sprintf("合成%d乡", t+1), Level: LevelTownship,
				Ring: l.ring(Block{ti, tj, ti + vcols, tj + vrows})})
			for v := range vcols * vrows {
				vi, vj := ti+v%vcols, tj+v/vcols
				nodes = append(nodes, Node{Code: fmt.Sprintf("%s%03d", tcode, v+1), Name: villageName(c*perCounty + t*vcols*vrows + v),
					Level: LevelVillage, Ring: l.ring(Block{vi, vj, vi + 1, vj + 1})})
			}
		}
	}
	return nodes
}
