// Package grid owns the map of responsibility: the county → township →
// village hierarchy of grid nodes (网格), their official codes, boundaries
// with history, tasks (定任务), GeoJSON import/export with validation, and
// point location through an in-memory spatial index kept in step with
// PostgreSQL/PostGIS across replicas.
//
// Other bounded contexts ask the grid through a small Go API instead of its
// tables:
//
//   - (*Index).Locate(lat, lon): the deepest current cell covering a WGS-84
//     point, with its ancestors (field: locate a report; patrol coverage).
//   - (*Index).LocateAt(ctx, lat, lon, t): the same as of a past time (a
//     report synced late), from memory while the county's boundaries are
//     unchanged since t, else from the PostGIS history ((*Store).LocateAt).
//   - (*Store).NodeByID / NodeByCode: does this node exist, what are its code,
//     level, name and parent (people: validate an assignment).
//   - (*Store).Ancestry: the chain from the county down to a node.
//
// Positions reported in GCJ-02 or BD-09 are converted with package coord
// before they reach the grid; the grid works in WGS-84 (EPSG:4326) only.
package grid

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/twpayne/go-geom"
)

// Level is a node's depth in the hierarchy. The numbers are stored; more
// levels below the village (e.g. a 网格 cell inside a village) can be added
// without a schema change.
type Level int

// The administrative levels.
const (
	LevelUnspecified Level = 0
	LevelCounty      Level = 1 // 县 (six-digit GB/T 2260 code)
	LevelTownship    Level = 2 // 乡镇/街道 (nine digits)
	LevelVillage     Level = 3 // 村/社区 (twelve digits)
	LevelCell        Level = 4 // 网格 below a village (fifteen digits), reserved
)

// MaxLevel is the deepest level the code scheme describes.
const MaxLevel = LevelCell

// CodeLen is the length of an official code at this level: 6 for a county,
// then three more digits per level (the 12-digit statistical village code
// is the county code + 3 township digits + 3 village digits).
func (l Level) CodeLen() int {
	if l < LevelCounty || l > MaxLevel {
		return 0
	}
	return 6 + 3*int(l-1)
}

// Valid reports whether l is a known level.
func (l Level) Valid() bool { return l >= LevelCounty && l <= MaxLevel }

// String returns the level's English name as used in GeoJSON properties.
func (l Level) String() string {
	switch l {
	case LevelCounty:
		return "county"
	case LevelTownship:
		return "township"
	case LevelVillage:
		return "village"
	case LevelCell:
		return "cell"
	default:
		return fmt.Sprintf("level %d", int(l))
	}
}

// ParseLevel accepts a level name ("county", "township", "village", "cell",
// or the Chinese 县/乡镇/村) or its number.
func ParseLevel(s string) (Level, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "county", "县", "1":
		return LevelCounty, true
	case "township", "town", "乡镇", "镇", "乡", "街道", "2":
		return LevelTownship, true
	case "village", "村", "社区", "3":
		return LevelVillage, true
	case "cell", "grid", "网格", "4":
		return LevelCell, true
	}
	return LevelUnspecified, false
}

// LevelForCode returns the level whose code length matches code.
func LevelForCode(code string) (Level, bool) {
	for l := LevelCounty; l <= MaxLevel; l++ {
		if len(code) == l.CodeLen() {
			return l, true
		}
	}
	return LevelUnspecified, false
}

// ParentCode is the code of the parent implied by a child's code (empty for
// a county).
func ParentCode(code string) string {
	l, ok := LevelForCode(code)
	if !ok || l == LevelCounty {
		return ""
	}
	return code[:(l - 1).CodeLen()]
}

// CheckCode reports why code is not a valid code for level, or nil.
func CheckCode(code string, level Level) error {
	if code == "" {
		return fmt.Errorf("code is missing")
	}
	for _, r := range code {
		if r < '0' || r > '9' {
			return fmt.Errorf("code %.40q has a character that is not a digit", code)
		}
	}
	if !level.Valid() {
		return fmt.Errorf("level %d is not county, township, village or cell", int(level))
	}
	if len(code) != level.CodeLen() {
		return fmt.Errorf("code %.40q has %d digits; a %s code has %d", code, len(code), level, level.CodeLen())
	}
	if strings.Trim(code[max(0, len(code)-3):], "0") == "" && level > LevelCounty {
		return fmt.Errorf("code %.40q ends in 000, which is reserved for the parent", code)
	}
	if kind, ok := RegionKind(code); ok && level == LevelCounty {
		return fmt.Errorf("code %s is a %s's, not a county's (a county code does not end in 00)", code, kind)
	}
	return nil
}

// NormalizeCode turns a padded 12-digit statistical code into the code of
// its own level: national files give every unit twelve digits, so the
// county 芦溪县 is 360323000000 and its township 360323100 is 360323100000.
// Trailing 000 groups are dropped down to the county's six digits (a
// township or village code never ends in 000, that is its parent's). Any
// other code is returned unchanged.
func NormalizeCode(code string) string {
	if len(code) != LevelVillage.CodeLen() {
		return code
	}
	for len(code) > LevelCounty.CodeLen() && strings.HasSuffix(code, "000") {
		code = code[:len(code)-3]
	}
	return code
}

// Regions above the county: a six-digit GB/T 2260 code ending in 00 is a
// prefecture (360300 萍乡市), one ending in 0000 a province (360000 江西省).
// They are not grid nodes (a grid node belongs to one county, the shard
// key); a county may name the region it lies in.
const (
	RegionProvince   = "province"
	RegionPrefecture = "prefecture"
)

// RegionKind reports whether code is a province or prefecture code.
func RegionKind(code string) (string, bool) {
	if len(code) != LevelCounty.CodeLen() || strings.Trim(code, "0123456789") != "" || code[:2] == "00" {
		return "", false
	}
	switch {
	case code[2:] == "0000":
		return RegionProvince, true
	case code[4:] == "00":
		return RegionPrefecture, true
	}
	return "", false
}

// CheckCountyRegion reports why region cannot be the region above county:
// it must be a province or prefecture code with the county's province
// digits (and, for a prefecture, the county's prefecture digits).
func CheckCountyRegion(county, region string) error {
	kind, ok := RegionKind(region)
	if !ok {
		return fmt.Errorf("parent %.40q of county %s is not a prefecture (xxxx00) or province (xx0000) code", region, county)
	}
	if kind == RegionProvince && region[:2] != county[:2] || kind == RegionPrefecture && region[:4] != county[:4] {
		return fmt.Errorf("county %s does not lie in %s %s: its code does not begin with %s's digits", county, kind, region, kind)
	}
	return nil
}

// ProvinceCode is the province a county or region code lies in.
func ProvinceCode(code string) string {
	if len(code) < 2 {
		return ""
	}
	return code[:2] + "0000"
}

// TaskPeriod is the period a task's count refers to.
type TaskPeriod string

// Task periods.
const (
	PeriodDay   TaskPeriod = "day"
	PeriodWeek  TaskPeriod = "week"
	PeriodMonth TaskPeriod = "month"
)

// Task is a standing duty of the people responsible for a node (定任务),
// e.g. two patrols per week. The field context reads it to judge whether a
// cell was patrolled enough.
type Task struct {
	Kind   string     `json:"kind"`   // e.g. "patrol", "river_inspection"
	Count  int        `json:"count"`  // how many per period
	Period TaskPeriod `json:"period"` // day, week or month
	Note   string     `json:"note,omitempty"`
	// For patrols: the least duration and distance that count as one.
	MinMinutes   int     `json:"min_minutes,omitempty"`
	MinDistanceM float64 `json:"min_distance_m,omitempty"`
}

// Check reports why t is not a usable task.
func (t Task) Check() error {
	if strings.TrimSpace(t.Kind) == "" {
		return fmt.Errorf("task kind is missing")
	}
	if t.Count < 1 || t.Count > 1000 {
		return fmt.Errorf("task %.40q count %d is not between 1 and 1000", t.Kind, t.Count)
	}
	if t.MinMinutes < 0 || t.MinMinutes > 24*60 || t.MinDistanceM < 0 || t.MinDistanceM > 500_000 {
		return fmt.Errorf("task %.40q minimum duration or distance is out of range", t.Kind)
	}
	switch t.Period {
	case PeriodDay, PeriodWeek, PeriodMonth:
	default:
		return fmt.Errorf("task %.40q period %.40q is not day, week or month", t.Kind, t.Period)
	}
	return nil
}

// Node is one grid node as it is now (or, from history, as it was).
type Node struct {
	ID        uuid.UUID
	Code      string
	Level     Level
	Name      string
	ParentID  uuid.UUID // uuid.Nil for a county
	Geometry  *geom.MultiPolygon
	AreaHa    float64
	Tasks     []Task
	Version   int
	ValidFrom time.Time
	ValidTo   *time.Time // nil while current
	RetiredAt *time.Time
	UpdatedAt time.Time
}

// CountyCode is the shard key: the first six digits of the code.
func (n *Node) CountyCode() string { return CountyCode(n.Code) }

// CountyCode returns the county part of any node code.
func CountyCode(code string) string {
	if len(code) < 6 {
		return code
	}
	return code[:6]
}

// Ref names a node without its geometry: what Locate returns for each level.
type Ref struct {
	ID    uuid.UUID
	Code  string
	Name  string
	Level Level
}

// Location is the answer to "where is this point": the deepest node covering
// it and its ancestors from the county down (Path[len(Path)-1] is Cell).
type Location struct {
	Cell Ref
	Path []Ref
}

// newID returns a fresh random node id.
func newID() uuid.UUID { return uuid.New() }
