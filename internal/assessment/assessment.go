// Package assessment owns the assessment (考核) of villages and townships
// on ecological indicators: a catalogue of indicators, each with a unit, a
// direction and a scoring rule; weight sets per kind of area (差异化考核);
// scorecards for a period computed from the accountability ledger; and
// closed periods, whose scorecards are signed into the ledger and read back
// from it, so they never change afterwards (late data falls in the period
// in which it was recorded).
//
// Only the built-in indicators computed from case and violation records
// exist so far; indicators entered by other departments, person
// scorecards, trends and exports are still to come (issue 19).
package assessment

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"

	"ecogrid/internal/ledger"
)

// Direction says which way an indicator is better.
type Direction string

// Directions.
const (
	HigherIsBetter Direction = "higher"
	LowerIsBetter  Direction = "lower"
)

// Indicator is one entry of the catalogue. Its score is 100 at Best or
// beyond, 0 at Worst or beyond, linear between.
type Indicator struct {
	Code       string    `json:"code"`
	Name       string    `json:"name"`
	Definition string    `json:"definition"`
	Unit       string    `json:"unit"`
	Direction  Direction `json:"direction"`
	Best       float64   `json:"best"`
	Worst      float64   `json:"worst"`
}

// Score maps a value to 0..100 by the indicator's linear rule.
func (ind Indicator) Score(v float64) float64 {
	if ind.Best == ind.Worst {
		return 100
	}
	s := (v - ind.Worst) / (ind.Best - ind.Worst) * 100
	return math.Round(math.Max(0, math.Min(100, s))*100) / 100
}

// Built-in indicators, computed from the ledger.
var Builtin = []Indicator{
	{Code: "on_time_closure", Name: "按期结案率", Definition: "cases closed in the period by their deadline, of those closed", Unit: "%", Direction: HigherIsBetter, Best: 100, Worst: 50},
	{Code: "response_hours", Name: "平均响应时间", Definition: "mean hours from a case's opening to its acceptance, for cases accepted in the period", Unit: "h", Direction: LowerIsBetter, Best: 4, Worst: 72},
	{Code: "overdue_days", Name: "超期天数", Definition: "days late summed over the cases closed late in the period", Unit: "d", Direction: LowerIsBetter, Best: 0, Worst: 60},
	{Code: "escalations", Name: "升级督办", Definition: "cases escalated to the county in the period", Unit: "件", Direction: LowerIsBetter, Best: 0, Worst: 10},
	{Code: "reopen_rate", Name: "重复发生率", Definition: "cases reopened on recurrence in the period, of those closed", Unit: "%", Direction: LowerIsBetter, Best: 0, Worst: 30},
	{Code: "violations", Name: "发现问题数", Definition: "violations reported in the period (finding problems is the grid's work)", Unit: "件", Direction: HigherIsBetter, Best: 20, Worst: 0},
}

// AreaKind is the functional role of an area, which decides the weights.
type AreaKind string

// Kinds of area.
const (
	Ecological   AreaKind = "ecological"   // 生态保护区
	Agricultural AreaKind = "agricultural" // 农业区
	Urban        AreaKind = "urban"        // 城镇/工业区
)

// Weights are per indicator code and sum to 1.
type Weights map[string]float64

// DefaultWeights are the built-in weight sets per kind of area.
var DefaultWeights = map[AreaKind]Weights{
	Ecological:   {"on_time_closure": 0.25, "response_hours": 0.15, "overdue_days": 0.15, "escalations": 0.1, "reopen_rate": 0.25, "violations": 0.1},
	Agricultural: {"on_time_closure": 0.25, "response_hours": 0.2, "overdue_days": 0.15, "escalations": 0.1, "reopen_rate": 0.15, "violations": 0.15},
	Urban:        {"on_time_closure": 0.2, "response_hours": 0.25, "overdue_days": 0.2, "escalations": 0.15, "reopen_rate": 0.1, "violations": 0.1},
}

// Figure is one indicator's value and score on a scorecard, with the
// ledger records it counts (drill-down).
type Figure struct {
	Code   string   `json:"code"`
	Value  float64  `json:"value"`
	Score  float64  `json:"score"`
	Weight float64  `json:"weight"`
	Cites  []string `json:"cites"` // "county/seq"
}

// Scorecard is a node's assessment for a period.
type Scorecard struct {
	NodeCode string    `json:"node_code"`
	Kind     AreaKind  `json:"kind"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Figures  []Figure  `json:"figures"`
	Total    float64   `json:"total"`
	Rank     int       `json:"rank"` // among the siblings scored together, 1 = best
}

type tally struct {
	closed, onTime, reopened, escalated, violations int
	overdueDays                                     float64
	respSum                                         float64
	respN                                           int
	cites                                           map[string][]string
}

func payloadStrings(r *ledger.Record) map[string]string {
	var m map[string]any
	_ = json.Unmarshal(r.Payload, &m)
	out := map[string]string{}
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

func cite(r *ledger.Record) string {
	return r.CountyCode + "/" + itoa(r.Seq)
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Compute scores each node of nodes (by code prefix) over [from, to) from
// ledger records: the case and violation records of the county. kinds
// chooses each node's weight set (Agricultural when absent). Nodes are
// ranked among themselves, best first; ties keep code order.
func Compute(nodes []string, kinds map[string]AreaKind, from, to time.Time, records []ledger.Record) []Scorecard {
	created := map[string]time.Time{}
	tallies := make([]tally, len(nodes))
	for i := range tallies {
		tallies[i].cites = map[string][]string{}
	}
	rs := slices.Clone(records)
	slices.SortFunc(rs, func(a, b ledger.Record) int {
		if c := strings.Compare(a.CountyCode, b.CountyCode); c != 0 {
			return c
		}
		return int(a.Seq - b.Seq)
	})
	byCode := map[string][]int{}
	var lengths []int
	for n, code := range nodes {
		byCode[code] = append(byCode[code], n)
		if !slices.Contains(lengths, len(code)) {
			lengths = append(lengths, len(code))
		}
	}
	for i := range rs {
		r := &rs[i]
		if r.Action == "case.created" {
			created[r.CountyCode+"/"+r.SubjectID] = r.RecordedAt
		}
		if r.RecordedAt.Before(from) || !r.RecordedAt.Before(to) {
			continue
		}
		var hits []int
		for _, l := range lengths {
			if l <= len(r.NodeCode) {
				hits = append(hits, byCode[r.NodeCode[:l]]...)
			}
		}
		for _, n := range hits {
			t := &tallies[n]
			add := func(ind string) { t.cites[ind] = append(t.cites[ind], cite(r)) }
			switch r.Action {
			case "violation.reported":
				t.violations++
				add("violations")
			case "case.accepted":
				if c, ok := created[r.CountyCode+"/"+r.SubjectID]; ok {
					t.respSum += r.RecordedAt.Sub(c).Hours()
					t.respN++
					add("response_hours")
				}
			case "case.escalated":
				t.escalated++
				add("escalations")
			case "case.reopened":
				t.reopened++
				add("reopen_rate")
			case "case.closed":
				t.closed++
				add("on_time_closure")
				if dl, err := time.Parse(time.RFC3339, payloadStrings(r)["deadline"]); err == nil && r.RecordedAt.After(dl) {
					t.overdueDays += math.Ceil(r.RecordedAt.Sub(dl).Hours() / 24)
					add("overdue_days")
				} else {
					t.onTime++
				}
			}
		}
	}
	out := make([]Scorecard, len(nodes))
	for n, code := range nodes {
		t := tallies[n]
		kind := kinds[code]
		if kind == "" {
			kind = Agricultural
		}
		w := DefaultWeights[kind]
		values := map[string]float64{
			"violations": float64(t.violations), "escalations": float64(t.escalated), "overdue_days": t.overdueDays,
			"on_time_closure": 100, "reopen_rate": 0, "response_hours": 0,
		}
		if t.closed > 0 {
			values["on_time_closure"] = round2(float64(t.onTime) / float64(t.closed) * 100)
			values["reopen_rate"] = round2(float64(t.reopened) / float64(t.closed) * 100)
		}
		if t.respN > 0 {
			values["response_hours"] = round2(t.respSum / float64(t.respN))
		}
		sc := Scorecard{NodeCode: code, Kind: kind, From: from, To: to}
		for _, ind := range Builtin {
			v := values[ind.Code]
			f := Figure{Code: ind.Code, Value: v, Score: ind.Score(v), Weight: w[ind.Code], Cites: append([]string{}, t.cites[ind.Code]...)}
			sc.Total += f.Score * f.Weight
			sc.Figures = append(sc.Figures, f)
		}
		sc.Total = round2(sc.Total)
		out[n] = sc
	}
	order := make([]int, len(out))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case out[a].Total > out[b].Total:
			return -1
		case out[a].Total < out[b].Total:
			return 1
		}
		return strings.Compare(out[a].NodeCode, out[b].NodeCode)
	})
	for rank, i := range order {
		out[i].Rank = rank + 1
	}
	return out
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }
