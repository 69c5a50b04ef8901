// Package audit owns the tenure audit (离任审计): the account of one
// person's time in one post, or in every post over a period, that the
// county office signs when a cadre leaves or moves. Its facts are derived
// from the accountability ledger alone — every fact cites its ledger
// records (county, seq) — and a report carries an inclusion proof of each
// cited record against a signed checkpoint, so anyone holding the ledger's
// public key can check it offline, without the database: VerifyReport
// recomputes every fact from the proven records and compares the result
// with the report and with the digest ledgered when the report was made.
//
// The package reads the other contexts only through their Go API
// (sources.go), never their tables.
package audit

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"time"

	"ecogrid/internal/ledger"
)

// Ledger actions the audit reads (written by people, field and cases) and
// the one it writes.
const (
	actionAssignmentStarted     = "assignment.started"
	actionAssignmentEnded       = "assignment.ended"
	actionAssignmentTransferred = "assignment.transferred"
	actionViolationReported     = "violation.reported"
	actionCasePrefix            = "case."
	// ActionReportGenerated records who audited whom, for which period,
	// and the digest of the facts found.
	ActionReportGenerated = "audit.report_generated"
)

// Params say whose tenure is audited and over what time. They are what the
// generation record stores, so the verifier recomputes from the same ones.
type Params struct {
	PersonID     string    `json:"person_id"`
	AssignmentID string    `json:"assignment_id,omitempty"` // one post; "" = every post in the period
	From         time.Time `json:"from"`                    // inclusive
	To           time.Time `json:"to"`                      // exclusive: the handover, or the report time
	AsOf         time.Time `json:"as_of"`                   // records after this are not counted
}

// Cite is a ledger record a fact rests on.
type Cite struct {
	County string `json:"county"`
	Seq    int64  `json:"seq"`
}

// Post is one assignment held (or part of it) during the audited time.
type Post struct {
	AssignmentID string     `json:"assignment_id"`
	NodeCode     string     `json:"node_code"`
	Role         string     `json:"role"`
	ValidFrom    time.Time  `json:"valid_from"`
	ValidTo      *time.Time `json:"valid_to,omitempty"` // nil: still held
	EndedBy      string     `json:"ended_by,omitempty"` // "ended" (left the post), "transferred", "" (open)
	EndReason    string     `json:"end_reason,omitempty"`
	NextPost     string     `json:"next_assignment_id,omitempty"`
	Cites        []Cite     `json:"cites"`
}

// Handover is what a post's end left behind: the record of the end and the
// cases of the post's cells still open at that moment.
type Handover struct {
	AssignmentID string    `json:"assignment_id"`
	NodeCode     string    `json:"node_code"`
	At           time.Time `json:"at"`
	Kind         string    `json:"kind"` // ended, transferred
	Reason       string    `json:"reason"`
	ActorID      string    `json:"actor_id,omitempty"`
	OpenCases    []string  `json:"open_cases"`
	Cite         Cite      `json:"cite"`
}

// CaseFacts is one case in the audited person's cells during the tenure.
type CaseFacts struct {
	CaseID        string     `json:"case_id"`
	County        string     `json:"county"`
	NodeCode      string     `json:"node_code"`
	Severity      string     `json:"severity,omitempty"`
	OpenedAt      *time.Time `json:"opened_at,omitempty"` // nil when opened before the records cited
	AcceptedAt    *time.Time `json:"accepted_at,omitempty"`
	ResponseHours *float64   `json:"response_hours,omitempty"` // opened → accepted
	Deadline      *time.Time `json:"deadline,omitempty"`
	ClosedAt      *time.Time `json:"closed_at,omitempty"`
	ClosedOnTime  *bool      `json:"closed_on_time,omitempty"` // nil: not closed, or no deadline
	OverdueDays   int        `json:"overdue_days"`             // late by, at closing or (still open) at the report time
	OverdueAtEnd  int        `json:"overdue_days_at_end"`      // open at the handover and late by this many days then
	Escalated     bool       `json:"escalated"`
	Reopened      int        `json:"reopened"`
	StateAtEnd    string     `json:"state_at_end"` // at the end of the tenure (the handover)
	OpenAtEnd     bool       `json:"open_at_end"`
	StateNow      string     `json:"state_now"` // at the time of the report
	Responsible   []string   `json:"responsible"`
	Cites         []Cite     `json:"cites"`
}

// ReportFiled is a violation the person reported.
type ReportFiled struct {
	ReportID string    `json:"report_id"`
	NodeCode string    `json:"node_code"`
	At       time.Time `json:"at"`
	Category string    `json:"category,omitempty"`
	Severity string    `json:"severity,omitempty"`
	Cite     Cite      `json:"cite"`
}

// Act is a count of one kind of act the person performed.
type Act struct {
	Action string `json:"action"`
	Count  int    `json:"count"`
	Cites  []Cite `json:"cites"`
}

// Summary are the counts a reader looks at first.
type Summary struct {
	Posts             int     `json:"posts"`
	Cases             int     `json:"cases"`
	Accepted          int     `json:"accepted"`
	MeanResponseHours float64 `json:"mean_response_hours"`
	Closed            int     `json:"closed"`
	ClosedOnTime      int     `json:"closed_on_time"`
	ClosedLate        int     `json:"closed_late"`
	Overdue           int     `json:"overdue"` // closed late or open past the deadline
	OverdueDays       int     `json:"overdue_days"`
	Escalated         int     `json:"escalated"`
	Reopened          int     `json:"reopened"`
	OpenAtEnd         int     `json:"open_at_end"`
	OverdueAtEnd      int     `json:"overdue_at_end"` // open at the handover and past the deadline
	ReportsFiled      int     `json:"reports_filed"`
	Acts              int     `json:"acts"`
}

// Facts is everything the audit found. It is computed by Compute from the
// cited records alone, so the verifier can recompute it.
type Facts struct {
	PersonID   string        `json:"person_id"`
	PersonName string        `json:"person_name"`
	Params     Params        `json:"params"`
	Summary    Summary       `json:"summary"`
	Posts      []Post        `json:"posts"`
	Handovers  []Handover    `json:"handovers"`
	Cases      []CaseFacts   `json:"cases"`
	Reports    []ReportFiled `json:"reports"`
	Acts       []Act         `json:"acts"`
}

func cite(r *ledger.Record) Cite { return Cite{County: r.CountyCode, Seq: r.Seq} }

func ptr[T any](v T) *T { return &v }

// payload decodes a record's payload into a map of strings (numbers and
// other values are skipped: the audit reads only string fields).
func payload(r *ledger.Record) map[string]string {
	var m map[string]any
	_ = json.Unmarshal(r.Payload, &m)
	out := make(map[string]string, len(m))
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

func parseTime(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	t = t.UTC()
	return &t
}

func names(r *ledger.Record, personID string) (string, bool) {
	for _, p := range r.Responsible {
		if p.PersonID == personID && p.Name != "" {
			return p.Name, true
		}
	}
	return "", false
}

func isResponsible(r *ledger.Record, personID string) bool {
	for _, p := range r.Responsible {
		if p.PersonID == personID {
			return true
		}
	}
	return false
}

// orderRecords sorts records by (county, seq) and drops duplicates.
func orderRecords(rs []ledger.Record) []ledger.Record {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b ledger.Record) int {
		if c := strings.Compare(a.CountyCode, b.CountyCode); c != 0 {
			return c
		}
		return int(a.Seq - b.Seq)
	})
	return slices.CompactFunc(out, func(a, b ledger.Record) bool { return a.CountyCode == b.CountyCode && a.Seq == b.Seq })
}

// within reports whether t lies in [from, to).
func within(t, from, to time.Time) bool { return !t.Before(from) && t.Before(to) }

// Compute derives the facts of a tenure audit from ledger records: the
// person's history (every record naming them as actor or responsible) and
// the full history of every case in which they were named during the
// tenure. It is a pure function of p and the records, shared by the
// generator and the offline verifier; records after p.AsOf and the audit's
// own generation records are ignored.
func Compute(p Params, records []ledger.Record) Facts {
	rs := orderRecords(records)
	f := Facts{PersonID: p.PersonID, Params: p, Posts: []Post{}, Handovers: []Handover{}, Cases: []CaseFacts{}, Reports: []ReportFiled{}, Acts: []Act{}}
	keep := rs[:0]
	for _, r := range rs {
		if r.RecordedAt.After(p.AsOf) || strings.HasPrefix(r.Action, "audit.") {
			continue
		}
		keep = append(keep, r)
	}
	rs = keep

	f.Posts, f.Handovers = posts(p, rs)
	for _, r := range rs {
		if n, ok := names(&r, p.PersonID); ok {
			f.PersonName = n
		}
	}
	var hists map[string][]*ledger.Record
	f.Cases, hists = cases(p, rs)
	for i := range f.Handovers {
		h := &f.Handovers[i]
		for _, c := range f.Cases {
			if !strings.HasPrefix(c.NodeCode, h.NodeCode) {
				continue
			}
			if s := stateAt(hists[c.County+"/"+c.CaseID], h.At); s != "" && !closedStates[s] {
				h.OpenCases = append(h.OpenCases, c.CaseID)
			}
		}
	}
	acts := map[string]*Act{}
	for i := range rs {
		r := &rs[i]
		if r.ActorID != p.PersonID || !within(r.RecordedAt, p.From, p.To) {
			continue
		}
		a := acts[r.Action]
		if a == nil {
			a = &Act{Action: r.Action}
			acts[r.Action] = a
		}
		a.Count++
		a.Cites = append(a.Cites, cite(r))
		if r.Action == actionViolationReported {
			pl := payload(r)
			f.Reports = append(f.Reports, ReportFiled{ReportID: r.SubjectID, NodeCode: r.NodeCode, At: r.RecordedAt,
				Category: pl["category"], Severity: pl["severity"], Cite: cite(r)})
		}
	}
	for _, a := range acts {
		f.Acts = append(f.Acts, *a)
	}
	slices.SortFunc(f.Acts, func(a, b Act) int { return strings.Compare(a.Action, b.Action) })
	f.Summary = summarise(f)
	return f
}

// posts finds the person's assignments overlapping [From, To) and the
// handovers that ended them within it.
func posts(p Params, rs []ledger.Record) ([]Post, []Handover) {
	byID := map[string]*Post{}
	var order []string
	var handovers []Handover
	for i := range rs {
		r := &rs[i]
		if r.SubjectType != "assignment" {
			continue
		}
		pl := payload(r)
		if pl["person_id"] != p.PersonID {
			continue
		}
		post := byID[r.SubjectID]
		if post == nil {
			post = &Post{AssignmentID: r.SubjectID, NodeCode: pl["node_code"], Role: pl["role"]}
			byID[r.SubjectID] = post
			order = append(order, r.SubjectID)
		}
		if t := parseTime(pl["valid_from"]); t != nil {
			post.ValidFrom = *t
		}
		post.Cites = append(post.Cites, cite(r))
		switch r.Action {
		case actionAssignmentEnded, actionAssignmentTransferred:
			post.ValidTo = parseTime(pl["valid_to"])
			post.EndedBy = strings.TrimPrefix(r.Action, "assignment.")
			post.EndReason = pl["reason"]
			post.NextPost = pl["next_assignment_id"]
			if post.ValidTo != nil {
				handovers = append(handovers, Handover{AssignmentID: r.SubjectID, NodeCode: post.NodeCode, At: *post.ValidTo,
					Kind: post.EndedBy, Reason: post.EndReason, ActorID: r.ActorID, OpenCases: []string{}, Cite: cite(r)})
			}
		}
	}
	var out []Post
	for _, id := range order {
		post := byID[id]
		if p.AssignmentID != "" && id != p.AssignmentID {
			continue
		}
		end := p.To
		if post.ValidTo != nil {
			end = *post.ValidTo
		}
		if post.ValidFrom.Before(p.To) && end.After(p.From) || post.ValidFrom.Equal(end) && within(end, p.From, p.To) {
			out = append(out, *post)
		}
	}
	kept := handovers[:0]
	for _, h := range handovers {
		if (p.AssignmentID == "" || h.AssignmentID == p.AssignmentID) && within(h.At, p.From, p.To.Add(time.Microsecond)) {
			kept = append(kept, h)
		}
	}
	if out == nil {
		out = []Post{}
	}
	return out, append([]Handover{}, kept...)
}

// openStates are the case states that still need work.
var closedStates = map[string]bool{"closed": true, "rejected": true}

// cases follows every case in which the person was named responsible (or
// acted) during [From, To), over its whole recorded history up to AsOf.
func cases(p Params, rs []ledger.Record) ([]CaseFacts, map[string][]*ledger.Record) {
	touched := map[string]bool{}
	for i := range rs {
		r := &rs[i]
		if r.SubjectType == "case" && strings.HasPrefix(r.Action, actionCasePrefix) && within(r.RecordedAt, p.From, p.To) &&
			(isResponsible(r, p.PersonID) || r.ActorID == p.PersonID) {
			touched[r.CountyCode+"/"+r.SubjectID] = true
		}
	}
	byID := map[string][]*ledger.Record{}
	var ids []string
	for i := range rs {
		r := &rs[i]
		k := r.CountyCode + "/" + r.SubjectID
		if r.SubjectType != "case" || !touched[k] {
			continue
		}
		if byID[k] == nil {
			ids = append(ids, k)
		}
		byID[k] = append(byID[k], r)
	}
	slices.Sort(ids)
	out := []CaseFacts{}
	for _, k := range ids {
		out = append(out, caseFacts(p, byID[k]))
	}
	return out, byID
}

// stateAt is a case's state as of t (its last record at or before t).
func stateAt(hist []*ledger.Record, t time.Time) string {
	state := ""
	for _, r := range hist {
		if r.RecordedAt.After(t) {
			break
		}
		if s := payload(r)["state"]; s != "" {
			state = s
		}
	}
	return state
}

func caseFacts(p Params, hist []*ledger.Record) CaseFacts {
	// hist is in seq order, which is recording order within a county.
	c := CaseFacts{CaseID: hist[0].SubjectID, County: hist[0].CountyCode, NodeCode: hist[0].NodeCode, Responsible: []string{}}
	seen := map[string]bool{}
	for _, r := range hist {
		pl := payload(r)
		c.Cites = append(c.Cites, cite(r))
		if s := pl["severity"]; s != "" {
			c.Severity = s
		}
		event := strings.TrimPrefix(r.Action, actionCasePrefix)
		switch event {
		case "opened": // cases records a case's opening as case.opened
			c.OpenedAt = ptr(r.RecordedAt)
		case "accepted":
			if c.AcceptedAt == nil {
				c.AcceptedAt = ptr(r.RecordedAt)
			}
		case "escalated":
			c.Escalated = true
		case "reopened":
			c.Reopened++
			c.ClosedAt = nil
		case "closed":
			c.ClosedAt = ptr(r.RecordedAt)
		}
		if d := parseTime(pl["deadline"]); d != nil {
			c.Deadline = d
		}
		if s := pl["state"]; s != "" {
			c.StateNow = s
			if r.RecordedAt.Before(p.To) {
				c.StateAtEnd = s
			}
		}
		if within(r.RecordedAt, p.From, p.To) {
			for _, who := range r.Responsible {
				label := who.Name + " (" + who.Role + ", " + who.NodeCode + ")"
				if !seen[label] {
					seen[label] = true
					c.Responsible = append(c.Responsible, label)
				}
			}
		}
	}
	if c.OpenedAt != nil && c.AcceptedAt != nil {
		c.ResponseHours = ptr(math.Round(c.AcceptedAt.Sub(*c.OpenedAt).Hours()*100) / 100)
	}
	c.OpenAtEnd = c.StateAtEnd != "" && !closedStates[c.StateAtEnd]
	if dl := deadlineAt(hist, p.To); c.OpenAtEnd && dl != nil {
		c.OverdueAtEnd = daysLate(*dl, p.To)
	}
	if c.Deadline != nil {
		switch {
		case c.ClosedAt != nil:
			c.ClosedOnTime = ptr(!c.ClosedAt.After(*c.Deadline))
			c.OverdueDays = daysLate(*c.Deadline, *c.ClosedAt)
		case !closedStates[c.StateNow]:
			c.OverdueDays = daysLate(*c.Deadline, p.AsOf)
		}
	}
	return c
}

// deadlineAt is the deadline in force at t (the last one recorded before it).
func deadlineAt(hist []*ledger.Record, t time.Time) *time.Time {
	var dl *time.Time
	for _, r := range hist {
		if !r.RecordedAt.Before(t) {
			break
		}
		if d := parseTime(payload(r)["deadline"]); d != nil {
			dl = d
		}
	}
	return dl
}

// daysLate is how many started days t lies after deadline (0 if not after).
func daysLate(deadline, t time.Time) int {
	if !t.After(deadline) {
		return 0
	}
	return int(math.Ceil(t.Sub(deadline).Hours() / 24))
}

func summarise(f Facts) Summary {
	s := Summary{Posts: len(f.Posts), Cases: len(f.Cases), ReportsFiled: len(f.Reports)}
	var resp float64
	for _, c := range f.Cases {
		if c.AcceptedAt != nil {
			s.Accepted++
		}
		if c.ResponseHours != nil {
			resp += *c.ResponseHours
		}
		if c.ClosedAt != nil {
			s.Closed++
		}
		if c.ClosedOnTime != nil {
			if *c.ClosedOnTime {
				s.ClosedOnTime++
			} else {
				s.ClosedLate++
			}
		}
		if c.OverdueDays > 0 {
			s.Overdue++
			s.OverdueDays += c.OverdueDays
		}
		if c.Escalated {
			s.Escalated++
		}
		if c.Reopened > 0 {
			s.Reopened++
		}
		if c.OpenAtEnd {
			s.OpenAtEnd++
		}
		if c.OverdueAtEnd > 0 {
			s.OverdueAtEnd++
		}
	}
	n := 0
	for _, c := range f.Cases {
		if c.ResponseHours != nil {
			n++
		}
	}
	if n > 0 {
		s.MeanResponseHours = math.Round(resp/float64(n)*100) / 100
	}
	for _, a := range f.Acts {
		s.Acts += a.Count
	}
	return s
}
