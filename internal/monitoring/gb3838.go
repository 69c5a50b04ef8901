package monitoring

import (
	"fmt"
	"strings"
)

// WaterBody selects limits where GB 3838-2002 distinguishes rivers from
// lakes and reservoirs.
type WaterBody int

// Water bodies, numbered as ecogridv1.WaterBodyType.
const (
	River     WaterBody = 1
	Lake      WaterBody = 2
	Reservoir WaterBody = 3
)

func (b WaterBody) lakeOrReservoir() bool { return b == Lake || b == Reservoir }

// Class is a GB 3838-2002 surface-water class: 1 (I) to 5 (V), 6 for worse
// than V (劣V类), 0 where the standard gives no limit.
type Class int

// WorseThanV is the class of a value that meets no class's limit.
const WorseThanV Class = 6

// String is the class in Roman numerals (劣V for worse than V).
func (c Class) String() string {
	switch {
	case c >= 1 && c <= 5:
		return [...]string{"I", "II", "III", "IV", "V"}[c-1]
	case c == WorseThanV:
		return "劣V"
	}
	return "none"
}

// Parameter is one item of GB 3838-2002 Table 1 (basic items of surface
// water environmental quality standard), with its limits for classes I–V
// in its unit.
type Parameter struct {
	Code string // as written in samples and CSV headers
	Name string
	Unit string // mg/L, 个/L, or "" (pH)
	// AtLeast: the limit is a minimum (dissolved oxygen); otherwise a
	// maximum. pH is a range handled on its own.
	AtLeast bool
	Limits  [5]float64
	// LakeLimits replace Limits for lakes and reservoirs (total phosphorus).
	LakeLimits *[5]float64
	// LakesOnly: the standard sets the limit for lakes and reservoirs only
	// (total nitrogen); rivers are recorded but not classified on it.
	LakesOnly bool
}

// Table1 is GB 3838-2002 Table 1, the basic items, as the standard writes
// them (mg/L unless stated). Water temperature (a change relative to the
// natural one, not a limit) is not classified.
var Table1 = []Parameter{
	{Code: "pH", Name: "pH值", Unit: ""}, // 6–9 for every class
	{Code: "DO", Name: "溶解氧", Unit: "mg/L", AtLeast: true, Limits: [5]float64{7.5, 6, 5, 3, 2}},
	{Code: "COD_Mn", Name: "高锰酸盐指数", Unit: "mg/L", Limits: [5]float64{2, 4, 6, 10, 15}},
	{Code: "COD", Name: "化学需氧量", Unit: "mg/L", Limits: [5]float64{15, 15, 20, 30, 40}},
	{Code: "BOD5", Name: "五日生化需氧量", Unit: "mg/L", Limits: [5]float64{3, 3, 4, 6, 10}},
	{Code: "NH3-N", Name: "氨氮", Unit: "mg/L", Limits: [5]float64{0.15, 0.5, 1.0, 1.5, 2.0}},
	{Code: "TP", Name: "总磷(以P计)", Unit: "mg/L", Limits: [5]float64{0.02, 0.1, 0.2, 0.3, 0.4},
		LakeLimits: &[5]float64{0.01, 0.025, 0.05, 0.1, 0.2}},
	{Code: "TN", Name: "总氮(湖、库,以N计)", Unit: "mg/L", Limits: [5]float64{0.2, 0.5, 1.0, 1.5, 2.0}, LakesOnly: true},
	{Code: "Cu", Name: "铜", Unit: "mg/L", Limits: [5]float64{0.01, 1.0, 1.0, 1.0, 1.0}},
	{Code: "Zn", Name: "锌", Unit: "mg/L", Limits: [5]float64{0.05, 1.0, 1.0, 2.0, 2.0}},
	{Code: "F", Name: "氟化物(以F-计)", Unit: "mg/L", Limits: [5]float64{1.0, 1.0, 1.0, 1.5, 1.5}},
	{Code: "Se", Name: "硒", Unit: "mg/L", Limits: [5]float64{0.01, 0.01, 0.01, 0.02, 0.02}},
	{Code: "As", Name: "砷", Unit: "mg/L", Limits: [5]float64{0.05, 0.05, 0.05, 0.1, 0.1}},
	{Code: "Hg", Name: "汞", Unit: "mg/L", Limits: [5]float64{0.00005, 0.00005, 0.0001, 0.001, 0.001}},
	{Code: "Cd", Name: "镉", Unit: "mg/L", Limits: [5]float64{0.001, 0.005, 0.005, 0.005, 0.01}},
	{Code: "Cr6", Name: "铬(六价)", Unit: "mg/L", Limits: [5]float64{0.01, 0.05, 0.05, 0.05, 0.1}},
	{Code: "Pb", Name: "铅", Unit: "mg/L", Limits: [5]float64{0.01, 0.01, 0.05, 0.05, 0.1}},
	{Code: "CN", Name: "氰化物", Unit: "mg/L", Limits: [5]float64{0.005, 0.05, 0.2, 0.2, 0.2}},
	{Code: "phenol", Name: "挥发酚", Unit: "mg/L", Limits: [5]float64{0.002, 0.002, 0.005, 0.01, 0.1}},
	{Code: "petroleum", Name: "石油类", Unit: "mg/L", Limits: [5]float64{0.05, 0.05, 0.05, 0.5, 1.0}},
	{Code: "LAS", Name: "阴离子表面活性剂", Unit: "mg/L", Limits: [5]float64{0.2, 0.2, 0.2, 0.3, 0.3}},
	{Code: "S2", Name: "硫化物", Unit: "mg/L", Limits: [5]float64{0.05, 0.1, 0.2, 0.5, 1.0}},
	{Code: "fecal_coliform", Name: "粪大肠菌群", Unit: "个/L", Limits: [5]float64{200, 2000, 10000, 20000, 40000}},
}

// aliases maps other spellings found in lab exports to a Table1 code.
var aliases = map[string]string{
	"ph": "pH", "do": "DO", "codmn": "COD_Mn", "cod_mn": "COD_Mn", "高锰酸盐指数": "COD_Mn", "codcr": "COD", "cod": "COD",
	"bod5": "BOD5", "bod": "BOD5", "nh3-n": "NH3-N", "nh3n": "NH3-N", "nh3_n": "NH3-N", "氨氮": "NH3-N", "tp": "TP", "总磷": "TP",
	"tn": "TN", "总氮": "TN", "溶解氧": "DO", "cu": "Cu", "zn": "Zn", "f": "F", "se": "Se", "as": "As", "hg": "Hg",
	"cd": "Cd", "cr6": "Cr6", "cr6+": "Cr6", "pb": "Pb", "cn": "CN", "phenol": "phenol", "petroleum": "petroleum",
	"las": "LAS", "s2": "S2", "s2-": "S2", "fecal_coliform": "fecal_coliform",
}

// LookupParameter finds a parameter by its code or an alias, ignoring case.
func LookupParameter(name string) (Parameter, bool) {
	code, ok := aliases[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return Parameter{}, false
	}
	for _, p := range Table1 {
		if p.Code == code {
			return p, true
		}
	}
	return Parameter{}, false
}

// Normalize converts a value in unit to the parameter's unit: µg/L to mg/L,
// MPN/L or CFU/L to 个/L; anything else not the parameter's unit is an
// error a lab can act on.
func (p Parameter) Normalize(value float64, unit string) (float64, error) {
	u := strings.ToLower(strings.TrimSpace(unit))
	switch p.Unit {
	case "":
		if u == "" || u == "无量纲" || u == "ph" || u == "dimensionless" {
			return value, nil
		}
	case "mg/L":
		switch u {
		case "", "mg/l":
			return value, nil
		case "ug/l", "μg/l", "µg/l":
			return value / 1000, nil
		}
	case "个/L":
		switch u {
		case "", "个/l", "mpn/l", "cfu/l":
			return value, nil
		}
	}
	return 0, fmt.Errorf("%s in %.20q: use %s", p.Code, unit, map[string]string{"": "no unit", "mg/L": "mg/L or µg/L", "个/L": "个/L or MPN/L"}[p.Unit])
}

// Classify returns the class of a value (in the parameter's unit) at a
// water body: the best class whose limit it meets (a value equal to a
// limit meets it), WorseThanV when it meets none, 0 when the standard
// sets no limit there.
func (p Parameter) Classify(value float64, body WaterBody) Class {
	if p.Code == "pH" {
		if value >= 6 && value <= 9 {
			return 1
		}
		return WorseThanV
	}
	if p.LakesOnly && !body.lakeOrReservoir() {
		return 0
	}
	limits := p.Limits
	if p.LakeLimits != nil && body.lakeOrReservoir() {
		limits = *p.LakeLimits
	}
	for i, l := range limits {
		if (p.AtLeast && value >= l) || (!p.AtLeast && value <= l) {
			return Class(i + 1)
		}
	}
	return WorseThanV
}
