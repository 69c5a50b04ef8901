package assessment

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"ecogrid/internal/field"
	"ecogrid/internal/ledger"
)

// Levels of scorecards.
const (
	LevelVillage  = "village"
	LevelTownship = "township"
	LevelPerson   = "person"
)

// Node is a village or township as the assessment sees it.
type Node struct {
	Code    string   `json:"code"`
	Name    string   `json:"name"`
	AreaKm2 float64  `json:"area_km2"`
	Kind    AreaKind `json:"kind"`
	// QuotaPerMonth is the cell's patrol quota (villages; 0: none).
	QuotaPerMonth int `json:"quota_per_month"`
}

func (n Node) level() string {
	if len(n.Code) <= 9 {
		return LevelTownship
	}
	return LevelVillage
}

// Post is one assignment as the ledger recorded it.
type Post struct {
	AssignmentID string     `json:"assignment_id"`
	PersonID     string     `json:"person_id"`
	Name         string     `json:"name"`
	NodeCode     string     `json:"node_code"`
	Role         string     `json:"role"`
	From         time.Time  `json:"from"`
	To           *time.Time `json:"to,omitempty"`
}

func (p Post) overlaps(from, to time.Time) bool {
	return p.From.Before(to) && (p.To == nil || p.To.After(from))
}

// assessedRoles are the posts whose holders get a person scorecard.
var assessedRoles = []string{"inspector", "grid_chief", "township_supervisor"}

// Value is an indicator value supplied by another department.
type Value struct {
	ID             string    `json:"id"`
	Period         string    `json:"period"`
	NodeCode       string    `json:"node_code"`
	Indicator      string    `json:"indicator"`
	Value          float64   `json:"value"`
	EvidenceNote   string    `json:"evidence_note"`
	AttachmentName string    `json:"attachment_name,omitempty"`
	AttachmentSHA  string    `json:"attachment_sha256,omitempty"`
	EnteredBy      string    `json:"entered_by"`
	EnteredAt      time.Time `json:"entered_at"`
	Seq            int64     `json:"ledger_seq"`
	// Late marks a value of the previous, closed period entered after it
	// was closed: counted in this period instead.
	Late bool `json:"late,omitempty"`
}

// Input is everything a period's scorecards are computed from.
type Input struct {
	Period    Period
	Catalogue []Indicator
	Weights   map[AreaKind]Weights
	Nodes     []Node
	Posts     []Post
	// Records are the case.* and violation.reported records recorded in
	// [Period.From-lookBack, Period.To), plus late ones, in seq order.
	Records []*ledger.Record
	// LateAfter: records dated before the period but appended after this
	// seq (the previous period's close) are late data counted here; -1:
	// none.
	LateAfter int64
	Patrols   []field.PatrolPass
	Values    []Value
	// NoItems counts without keeping the items (lists, closing): the
	// drill-down recomputes them.
	NoItems bool
}

// Item is one thing a figure counts: a ledger record, a patrol or an
// entered value (the drill-down).
type Item struct {
	Ref         string    `json:"ref"` // "county/seq", "patrol:<id>", "value:<id>"
	Kind        string    `json:"kind"`
	Action      string    `json:"action,omitempty"`
	SubjectType string    `json:"subject_type,omitempty"`
	SubjectID   string    `json:"subject_id,omitempty"`
	NodeCode    string    `json:"node_code,omitempty"`
	At          time.Time `json:"at"`
	Late        bool      `json:"late,omitempty"`
}

// Figure is one indicator's value and score on a scorecard.
type Figure struct {
	Code       string  `json:"code"`
	Applicable bool    `json:"applicable"` // false: no data or not scored at this level
	Value      float64 `json:"value"`
	Score      float64 `json:"score"`
	Weight     float64 `json:"weight"`
	Count      int     `json:"count"` // items counted
	Late       int     `json:"late"`  // of which recorded late about an earlier, closed period
	Items      []Item  `json:"items,omitempty"`
}

// TrendPoint is a previous period's total.
type TrendPoint struct {
	Period string  `json:"period"`
	Total  float64 `json:"total"`
	Found  bool    `json:"found"`
}

// Scorecard is the assessment of one village, township or person.
type Scorecard struct {
	Level   string       `json:"level"`
	Code    string       `json:"code"` // node code, or person id
	Name    string       `json:"name"`
	Parent  string       `json:"parent"` // the siblings' parent: township (villages, people), county (townships)
	Kind    AreaKind     `json:"kind"`
	Period  string       `json:"period"`
	Figures []Figure     `json:"figures"`
	Total   float64      `json:"total"`
	Rank    int          `json:"rank"`     // among siblings, 1 = best
	Of      int          `json:"siblings"` // how many were ranked together
	Late    int          `json:"late"`     // items recorded late about an earlier period
	Trend   []TrendPoint `json:"trend,omitempty"`
}

// Figure returns the figure of an indicator (zero when absent).
func (s Scorecard) Figure(code string) Figure {
	for _, f := range s.Figures {
		if f.Code == code {
			return f
		}
	}
	return Figure{}
}

// Result are a period's scorecards per level.
type Result struct {
	Villages  []Scorecard `json:"villages"`
	Townships []Scorecard `json:"townships"`
	Persons   []Scorecard `json:"persons"`
}

// Level returns the scorecards of one level.
func (r Result) Level(level string) []Scorecard {
	switch level {
	case LevelVillage:
		return r.Villages
	case LevelTownship:
		return r.Townships
	case LevelPerson:
		return r.Persons
	}
	return nil
}

// subject accumulates one scorecard's counts.
type subject struct {
	card                                       Scorecard
	cells                                      []string // village cells (villages, townships) or post cells (people)
	posts                                      []Post   // people: their posts overlapping the period
	inspectors                                 map[string]bool
	area                                       float64
	closed, onTime, reopened, escalated, viols int
	overdue                                    int
	overdueDays                                float64
	respSum                                    float64
	respN                                      int
	covered                                    map[string]bool
	patrolled                                  map[[2]int]int // (cell index, month) → plausible patrols
	items                                      map[string][]Item
	counts, late                               map[string]int
	noItems                                    bool
}

func (s *subject) add(ind string, it Item) {
	s.counts[ind]++
	if it.Late {
		s.late[ind]++
	}
	if !s.noItems {
		s.items[ind] = append(s.items[ind], it)
	}
}

type caseState struct {
	created     time.Time
	hasCreated  bool
	deadline    *time.Time
	open        bool
	node        string
	responsible []ledger.Responsible
	last        *ledger.Record // the case's latest record, counted late or not
	lastLate    bool
}

func recordItem(r *ledger.Record, late bool) Item {
	return Item{Ref: r.CountyCode + "/" + strconv.FormatInt(r.Seq, 10), Kind: "ledger", Action: r.Action,
		SubjectType: r.SubjectType, SubjectID: r.SubjectID, NodeCode: r.NodeCode, At: r.RecordedAt, Late: late}
}

// deadlineKey starts a case payload's deadline field. In JSON a quote
// inside a string is escaped, so this sequence is always a key.
var deadlineKey = []byte(`"deadline":"`)

func deadlineOf(r *ledger.Record) *time.Time {
	if i := bytes.Index(r.Payload, deadlineKey); i >= 0 && bytes.Count(r.Payload, deadlineKey) == 1 && bytes.IndexByte(r.Payload, '{') == 0 &&
		bytes.IndexByte(r.Payload[1:], '{') < 0 {
		// A flat object with one deadline: read it without the decoder.
		rest := r.Payload[i+len(deadlineKey):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 {
			if t, err := time.Parse(time.RFC3339Nano, string(rest[:j])); err == nil {
				return &t
			}
		}
	}
	var m struct {
		Deadline string `json:"deadline"`
	}
	if json.Unmarshal(r.Payload, &m) != nil || m.Deadline == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, m.Deadline)
	if err != nil {
		return nil
	}
	return &t
}

// Compute computes a period's scorecards from in. It is pure: the same
// input gives the same scorecards, which is what lets a closed period's
// drill-down be recomputed from the records it counted.
func Compute(in Input) Result {
	p := in.Period
	months := p.Months()
	catalogue := in.Catalogue
	if catalogue == nil {
		catalogue = BuiltinIndicators
	}
	newSubject := func(level, code, name, parent string, kind AreaKind) *subject {
		return &subject{card: Scorecard{Level: level, Code: code, Name: name, Parent: parent, Kind: kind, Period: p.Label},
			inspectors: map[string]bool{}, covered: map[string]bool{}, patrolled: map[[2]int]int{}, items: map[string][]Item{},
			counts: map[string]int{}, late: map[string]int{}, noItems: in.NoItems}
	}
	byNode := map[string]*subject{}
	var villages, townships, persons []*subject
	cellIndex := map[string]int{}
	var quotas []int
	for _, n := range in.Nodes {
		s := newSubject(n.level(), n.Code, n.Name, n.Code[:len(n.Code)-3], n.Kind)
		s.area = n.AreaKm2
		byNode[n.Code] = s
		if s.card.Level == LevelVillage {
			villages = append(villages, s)
			cellIndex[n.Code] = len(quotas)
			quotas = append(quotas, n.QuotaPerMonth)
		} else {
			townships = append(townships, s)
		}
	}
	for _, v := range villages {
		v.cells = []string{v.card.Code}
		if t := byNode[v.card.Code[:9]]; t != nil {
			t.cells = append(t.cells, v.card.Code)
		}
	}
	byPerson := map[string]*subject{}
	for _, post := range in.Posts {
		if !post.overlaps(p.From, p.To) {
			continue
		}
		if post.Role == "inspector" {
			for l := 9; l <= len(post.NodeCode); l += 3 {
				if s := byNode[post.NodeCode[:l]]; s != nil {
					s.inspectors[post.PersonID] = true
				}
			}
		}
		if !slices.Contains(assessedRoles, post.Role) || len(post.NodeCode) < 9 {
			continue
		}
		s := byPerson[post.PersonID]
		if s == nil {
			s = newSubject(LevelPerson, post.PersonID, post.Name, "", DefaultKind)
			byPerson[post.PersonID] = s
			persons = append(persons, s)
		}
		s.posts = append(s.posts, post)
		// The person is ranked with the township of their latest post,
		// and weighted by the kind of its area.
		s.card.Parent = post.NodeCode[:9]
		if n := byNode[post.NodeCode]; n != nil {
			s.card.Kind = n.card.Kind
		}
		for _, v := range villages {
			if strings.HasPrefix(v.card.Code, post.NodeCode) && !slices.Contains(s.cells, v.card.Code) {
				s.cells = append(s.cells, v.card.Code)
			}
		}
	}

	// Ledger records: cases and violations.
	cases := map[string]*caseState{}
	var hits []*subject
	for _, r := range in.Records {
		late := r.RecordedAt.Before(p.From) && in.LateAfter >= 0 && r.Seq > in.LateAfter
		counted := late || (!r.RecordedAt.Before(p.From) && r.RecordedAt.Before(p.To))
		var cs *caseState
		if r.SubjectType == "case" {
			key := r.CountyCode + "/" + r.SubjectID
			if cs = cases[key]; cs == nil {
				cs = &caseState{open: true}
				cases[key] = cs
			}
			cs.node, cs.responsible = r.NodeCode, r.Responsible
			if d := deadlineOf(r); d != nil {
				cs.deadline = d
			}
			switch r.Action {
			case "case.opened": // cased's opening record (internal/cases openingSteps)
				cs.created, cs.hasCreated = r.RecordedAt, true
			case "case.closed", "case.rejected":
				cs.open = false
			case "case.reopened":
				cs.open = true
			}
			cs.last, cs.lastLate = r, late
		}
		if !counted {
			continue
		}
		hits = hits[:0]
		if len(r.NodeCode) >= 9 {
			if s := byNode[r.NodeCode[:9]]; s != nil {
				hits = append(hits, s)
			}
		}
		if len(r.NodeCode) >= 12 {
			if s := byNode[r.NodeCode[:12]]; s != nil {
				hits = append(hits, s)
			}
		}
		if r.Action == "violation.reported" {
			if s := byPerson[r.ActorID]; s != nil {
				hits = append(hits, s)
			}
		} else {
			for _, rp := range r.Responsible {
				if s := byPerson[rp.PersonID]; s != nil && !slices.Contains(hits, s) {
					hits = append(hits, s)
				}
			}
		}
		// Items are kept only for the drill-down: counting needs their
		// lateness alone, without the strings.
		it := Item{Late: late}
		if !in.NoItems {
			it = recordItem(r, late)
		}
		for _, s := range hits {
			if late {
				s.card.Late++
			}
			switch r.Action {
			case "violation.reported":
				s.viols++
				s.add(ReportsPerInspector, it)
				if s.card.Level != LevelPerson {
					s.add(ViolationsPerKm2, it)
				}
			case "case.accepted":
				if cs.hasCreated {
					s.respSum += r.RecordedAt.Sub(cs.created).Hours()
					s.respN++
					s.add(ResponseHours, it)
				}
			case "case.escalated":
				s.escalated++
				s.add(Escalations, it)
			case "case.reopened":
				s.reopened++
				s.add(ReopenRate, it)
			case "case.closed":
				s.closed++
				s.add(OnTimeClosure, it)
				if cs.deadline != nil && r.RecordedAt.After(*cs.deadline) {
					s.overdue++
					s.overdueDays += math.Ceil(r.RecordedAt.Sub(*cs.deadline).Hours() / 24)
					s.add(OverdueCount, it)
					s.add(OverdueDays, it)
				} else {
					s.onTime++
				}
			}
		}
	}
	// Cases still open past their deadline at the period's end.
	for _, cs := range cases {
		if !cs.open || cs.deadline == nil || !cs.deadline.Before(p.To) {
			continue
		}
		hits = hits[:0]
		for _, l := range []int{9, 12} {
			if len(cs.node) >= l {
				if s := byNode[cs.node[:l]]; s != nil {
					hits = append(hits, s)
				}
			}
		}
		for _, rp := range cs.responsible {
			if s := byPerson[rp.PersonID]; s != nil && !slices.Contains(hits, s) {
				hits = append(hits, s)
			}
		}
		last := Item{Late: cs.lastLate}
		if !in.NoItems {
			last = recordItem(cs.last, cs.lastLate)
		}
		for _, s := range hits {
			s.overdue++
			s.overdueDays += math.Ceil(p.To.Sub(*cs.deadline).Hours() / 24)
			s.add(OverdueCount, last)
			s.add(OverdueDays, last)
		}
	}

	// Patrols.
	monthOf := func(t time.Time) int {
		for i := len(months) - 1; i >= 0; i-- {
			if !t.Before(months[i]) {
				return i
			}
		}
		return -1
	}
	for _, pp := range in.Patrols {
		m := monthOf(pp.StartedAt)
		if m < 0 || !pp.StartedAt.Before(p.To) {
			continue
		}
		var it Item
		if !in.NoItems {
			it = Item{Ref: "patrol:" + pp.PatrolID, Kind: "patrol", SubjectType: "patrol", SubjectID: pp.PatrolID, At: pp.StartedAt}
		}
		person := byPerson[pp.InspectorID]
		var seen []*subject
		for _, cell := range pp.Cells {
			if len(cell) < 12 {
				continue
			}
			cell = cell[:12]
			ci, ok := cellIndex[cell]
			if !ok {
				continue
			}
			for _, s := range []*subject{byNode[cell], byNode[cell[:9]]} {
				if s == nil {
					continue
				}
				if pp.Plausible {
					s.covered[cell] = true
					s.patrolled[[2]int{ci, m}]++
				}
				if !slices.Contains(seen, s) {
					seen = append(seen, s)
					s.add(PatrolCompliance, it)
					s.add(CellCoverage, it)
				}
			}
			if person != nil && slices.Contains(person.cells, cell) {
				if pp.Plausible {
					person.covered[cell] = true
					person.patrolled[[2]int{ci, m}]++
				}
				if !slices.Contains(seen, person) {
					seen = append(seen, person)
					person.add(PatrolCompliance, it)
					person.add(CellCoverage, it)
				}
			}
		}
	}

	// External values: per node; the latest entered counts, a late value of
	// the previous period only when the period has none of its own.
	type vkey struct{ node, ind string }
	values := map[vkey]Value{}
	for _, v := range in.Values {
		k := vkey{v.NodeCode, v.Indicator}
		old, ok := values[k]
		if !ok || (old.Late && !v.Late) || (old.Late == v.Late && v.Seq > old.Seq) {
			values[k] = v
		}
	}

	finish := func(s *subject) {
		w := in.Weights[s.card.Kind]
		if w == nil {
			w = DefaultWeights[s.card.Kind]
		}
		if w == nil {
			w = DefaultWeights[DefaultKind]
		}
		var sum, wsum float64
		for _, ind := range catalogue {
			f := Figure{Code: ind.Code, Weight: w[ind.Code]}
			f.Value, f.Applicable = s.value(ind, quotas, cellIndex, months, p)
			if ind.Source == External {
				if v, ok := values[vkey{s.card.Code, ind.Code}]; ok && s.card.Level != LevelPerson {
					f.Value, f.Applicable = v.Value, true
					s.add(ind.Code, Item{Ref: "value:" + v.ID, Kind: "value", SubjectType: "indicator_value", SubjectID: v.ID,
						NodeCode: v.NodeCode, At: v.EnteredAt, Late: v.Late})
					if v.Late {
						s.card.Late++
					}
				}
			}
			f.Items = s.items[ind.Code]
			f.Count, f.Late = s.counts[ind.Code], s.late[ind.Code]
			if f.Applicable {
				f.Value = round2(f.Value)
				f.Score = ind.Score(f.Value)
				if f.Weight > 0 {
					sum += f.Score * f.Weight
					wsum += f.Weight
				}
			}
			s.card.Figures = append(s.card.Figures, f)
		}
		if wsum > 0 {
			s.card.Total = round2(sum / wsum)
		}
	}
	var out Result
	for _, group := range []struct {
		subjects []*subject
		dst      *[]Scorecard
	}{{villages, &out.Villages}, {townships, &out.Townships}, {persons, &out.Persons}} {
		for _, s := range group.subjects {
			finish(s)
			*group.dst = append(*group.dst, s.card)
		}
		rank(*group.dst)
	}
	return out
}

// value computes a built-in indicator for a subject; false when it does
// not apply (no data, or not scored at this level).
func (s *subject) value(ind Indicator, quotas []int, cellIndex map[string]int, months []time.Time, p Period) (float64, bool) {
	switch ind.Code {
	case PatrolCompliance:
		var due, met int
		for _, cell := range s.cells {
			ci := cellIndex[cell]
			q := quotas[ci]
			if q <= 0 {
				continue
			}
			for m, start := range months {
				end := p.To
				if m+1 < len(months) {
					end = months[m+1]
				}
				if s.card.Level == LevelPerson && !s.heldCellIn(cell, start, end) {
					continue
				}
				due++
				if s.patrolled[[2]int{ci, m}] >= q {
					met++
				}
			}
		}
		if due == 0 {
			return 0, false
		}
		return float64(met) / float64(due) * 100, true
	case CellCoverage:
		if len(s.cells) == 0 {
			return 0, false
		}
		return float64(len(s.covered)) / float64(len(s.cells)) * 100, true
	case ResponseHours:
		if s.respN == 0 {
			return 0, false
		}
		return s.respSum / float64(s.respN), true
	case OnTimeClosure:
		if s.closed == 0 {
			return 0, false
		}
		return float64(s.onTime) / float64(s.closed) * 100, true
	case OverdueCount:
		return float64(s.overdue), true
	case OverdueDays:
		return s.overdueDays, true
	case Escalations:
		return float64(s.escalated), true
	case ReopenRate:
		if s.closed == 0 {
			return 0, false
		}
		return float64(s.reopened) / float64(s.closed) * 100, true
	case ReportsPerInspector:
		if s.card.Level == LevelPerson {
			return float64(s.viols), true
		}
		if len(s.inspectors) == 0 {
			return 0, false
		}
		return float64(s.viols) / float64(len(s.inspectors)), true
	case ViolationsPerKm2:
		if s.card.Level == LevelPerson || s.area <= 0 {
			return 0, false
		}
		return float64(s.viols) / s.area, true
	}
	return 0, false
}

// heldCellIn reports whether the person held a post over cell during
// part of [from, to).
func (s *subject) heldCellIn(cell string, from, to time.Time) bool {
	for _, post := range s.posts {
		if strings.HasPrefix(cell, post.NodeCode) && post.overlaps(from, to) {
			return true
		}
	}
	return false
}

// rank orders scorecards within their parent by total (best first, ties
// by code) and sets Rank and Of; the slice keeps code order.
func rank(cards []Scorecard) {
	groups := map[string][]int{}
	for i, c := range cards {
		groups[c.Parent] = append(groups[c.Parent], i)
	}
	for _, idx := range groups {
		slices.SortStableFunc(idx, func(a, b int) int {
			switch {
			case cards[a].Total > cards[b].Total:
				return -1
			case cards[a].Total < cards[b].Total:
				return 1
			}
			return strings.Compare(cards[a].Code, cards[b].Code)
		})
		for r, i := range idx {
			cards[i].Rank, cards[i].Of = r+1, len(idx)
		}
	}
	slices.SortFunc(cards, func(a, b Scorecard) int {
		if c := strings.Compare(a.Parent, b.Parent); c != 0 {
			return c
		}
		return strings.Compare(a.Code, b.Code)
	})
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
