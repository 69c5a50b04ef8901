// Package assessment owns the assessment (考核) of villages, townships and
// people on ecological indicators (差异化考核): each county's catalogue of
// indicators (definition, unit, direction, scoring rule), weight sets per
// kind of area and the kind chosen per grid node, the values other
// departments supply per period with their evidence, scorecards for a
// month, quarter or year with ranks among siblings, trends and a
// drill-down to the records counted, and closed periods, whose scorecards
// are frozen and signed into the ledger: a closed period never changes,
// and data recorded late about it counts in the next period, flagged.
//
// It reads the other contexts only through their Go API: the ledger
// (cases, violations, posts), field (patrols, patrol rules) and grid
// (nodes, areas); it owns schema assessment.
package assessment

import (
	"math"
	"regexp"

	"ecogrid/internal/structerr"
)

// Direction says which way an indicator is better.
type Direction string

// Directions.
const (
	HigherIsBetter Direction = "higher"
	LowerIsBetter  Direction = "lower"
)

// Source says where an indicator's values come from.
type Source string

// Sources.
const (
	// Builtin indicators are computed from the system's own data.
	Builtin Source = "builtin"
	// External indicators are supplied by other departments per period
	// (water quality attainment, forest stock, air quality days...).
	External Source = "external"
)

// Indicator is one entry of a county's catalogue. The scoring rule is
// linear: 100 at Best or beyond, 0 at Worst or beyond, linear between
// (Direction follows from which of the two is larger, and is checked).
type Indicator struct {
	Code       string    `json:"code"`
	Name       string    `json:"name"`
	Definition string    `json:"definition"`
	Unit       string    `json:"unit"`
	Direction  Direction `json:"direction"`
	Best       float64   `json:"best"`
	Worst      float64   `json:"worst"`
	Source     Source    `json:"source"`
}

// Score maps a value to 0..100 by the indicator's linear rule.
func (ind Indicator) Score(v float64) float64 {
	if ind.Best == ind.Worst {
		return 100
	}
	s := (v - ind.Worst) / (ind.Best - ind.Worst) * 100
	return round2(math.Max(0, math.Min(100, s)))
}

// ScoringRule describes the rule in words, for the catalogue and exports.
func (ind Indicator) ScoringRule() string {
	return "linear: 100 at " + ftoa(ind.Best) + ind.Unit + ", 0 at " + ftoa(ind.Worst) + ind.Unit
}

var codeRE = regexp.MustCompile(`^[a-z][a-z0-9_]{1,39}$`)

// Check validates an indicator definition.
func (ind Indicator) Check() error {
	switch {
	case !codeRE.MatchString(ind.Code):
		return structerr.NewInvalidArgument("indicator code %.40q must be 2-40 lower-case letters, digits or _", ind.Code)
	case ind.Name == "" || len([]rune(ind.Name)) > 100:
		return structerr.NewInvalidArgument("an indicator needs a name of at most 100 characters")
	case len([]rune(ind.Definition)) > 1000 || len([]rune(ind.Unit)) > 20:
		return structerr.NewInvalidArgument("definition (1000) or unit (20 characters) too long")
	case ind.Direction != HigherIsBetter && ind.Direction != LowerIsBetter:
		return structerr.NewInvalidArgument("direction must be higher or lower")
	case math.IsNaN(ind.Best) || math.IsInf(ind.Best, 0) || math.IsNaN(ind.Worst) || math.IsInf(ind.Worst, 0):
		return structerr.NewInvalidArgument("best and worst must be finite numbers")
	case ind.Direction == HigherIsBetter && !(ind.Best > ind.Worst), ind.Direction == LowerIsBetter && !(ind.Best < ind.Worst):
		return structerr.NewInvalidArgument("for %s is better, best must be %s than worst", ind.Direction, ind.Direction)
	case ind.Source != Builtin && ind.Source != External:
		return structerr.NewInvalidArgument("source must be builtin or external")
	}
	return nil
}

// Codes of the built-in indicators.
const (
	PatrolCompliance    = "patrol_compliance"
	CellCoverage        = "cell_coverage"
	ResponseHours       = "response_hours"
	OnTimeClosure       = "on_time_closure"
	OverdueCount        = "overdue_count"
	OverdueDays         = "overdue_days"
	Escalations         = "escalations"
	ReopenRate          = "reopen_rate"
	ReportsPerInspector = "reports_per_inspector"
	ViolationsPerKm2    = "violations_per_km2"
)

// BuiltinIndicators are computed from the data; a county may redefine
// their names, definitions and scoring rules (not what is computed).
var BuiltinIndicators = []Indicator{
	{Code: PatrolCompliance, Name: "巡查任务完成率", Definition: "cell-months whose plausible patrols met the cell's patrol quota, of the cell-months with a quota (a person: their patrols in their cells)", Unit: "%", Direction: HigherIsBetter, Best: 100, Worst: 60},
	{Code: CellCoverage, Name: "网格巡查覆盖率", Definition: "cells with at least one plausible patrol in the period, of the cells", Unit: "%", Direction: HigherIsBetter, Best: 100, Worst: 50},
	{Code: ResponseHours, Name: "平均响应时间", Definition: "mean hours from a case's opening to its acceptance, for cases accepted in the period", Unit: "h", Direction: LowerIsBetter, Best: 4, Worst: 72},
	{Code: OnTimeClosure, Name: "按期办结率", Definition: "cases closed in the period by their deadline, of those closed", Unit: "%", Direction: HigherIsBetter, Best: 100, Worst: 50},
	{Code: OverdueCount, Name: "超期案件数", Definition: "cases closed late in the period, plus cases open past their deadline at the period's end", Unit: "件", Direction: LowerIsBetter, Best: 0, Worst: 10},
	{Code: OverdueDays, Name: "超期天数", Definition: "days late summed over those cases (at closing, or at the period's end when still open)", Unit: "天", Direction: LowerIsBetter, Best: 0, Worst: 60},
	{Code: Escalations, Name: "升级督办数", Definition: "cases escalated to the county in the period", Unit: "件", Direction: LowerIsBetter, Best: 0, Worst: 10},
	{Code: ReopenRate, Name: "问题复发率", Definition: "cases reopened on recurrence in the period, of those closed in it", Unit: "%", Direction: LowerIsBetter, Best: 0, Worst: 30},
	{Code: ReportsPerInspector, Name: "人均上报问题数", Definition: "violations reported in the period per inspector holding a post there (a person: their own reports)", Unit: "件/人", Direction: HigherIsBetter, Best: 20, Worst: 0},
	{Code: ViolationsPerKm2, Name: "单位面积问题数", Definition: "violations reported in the period per square kilometre of the area (not scored for people)", Unit: "件/km²", Direction: LowerIsBetter, Best: 0, Worst: 5},
}

func init() {
	for i := range BuiltinIndicators {
		BuiltinIndicators[i].Source = Builtin
	}
}

// IsBuiltin reports whether code is a built-in indicator.
func IsBuiltin(code string) bool {
	for _, ind := range BuiltinIndicators {
		if ind.Code == code {
			return true
		}
	}
	return false
}

// AreaKind is the functional role of an area, which chooses its weights.
type AreaKind string

// The kinds of area with built-in weight sets; a county may add others.
const (
	Ecological   AreaKind = "ecological"   // 生态保护区
	Agricultural AreaKind = "agricultural" // 农业区
	Urban        AreaKind = "urban"        // 城镇/工业区
)

// DefaultKind is the kind of a node nobody classified (nor its parent).
const DefaultKind = Agricultural

// Weights are per indicator code; a scorecard's total is the weighted
// mean of the scores of the indicators it has, so they need not sum to 1.
type Weights map[string]float64

// DefaultWeights are the built-in weight sets per kind of area.
var DefaultWeights = map[AreaKind]Weights{
	Ecological: {PatrolCompliance: 0.15, CellCoverage: 0.15, ResponseHours: 0.1, OnTimeClosure: 0.15, OverdueCount: 0.05,
		OverdueDays: 0.05, Escalations: 0.05, ReopenRate: 0.15, ReportsPerInspector: 0.05, ViolationsPerKm2: 0.1},
	Agricultural: {PatrolCompliance: 0.15, CellCoverage: 0.1, ResponseHours: 0.15, OnTimeClosure: 0.15, OverdueCount: 0.1,
		OverdueDays: 0.05, Escalations: 0.05, ReopenRate: 0.1, ReportsPerInspector: 0.1, ViolationsPerKm2: 0.05},
	Urban: {PatrolCompliance: 0.1, CellCoverage: 0.1, ResponseHours: 0.2, OnTimeClosure: 0.15, OverdueCount: 0.1,
		OverdueDays: 0.1, Escalations: 0.1, ReopenRate: 0.05, ReportsPerInspector: 0.05, ViolationsPerKm2: 0.05},
}
