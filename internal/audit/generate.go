package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/database"
	"ecogrid/internal/grid"
	"ecogrid/internal/ledger"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Auditor makes tenure audit reports. It needs a ledger that holds the
// checkpoint signing key: the report's own generation record must be
// covered by a signed checkpoint before it can be proven.
type Auditor struct {
	pool   *pgxpool.Pool
	grid   *grid.Store
	ledger *ledger.Ledger
	now    func() time.Time
}

// New returns an Auditor over pool and l.
func New(pool *pgxpool.Pool, l *ledger.Ledger) *Auditor {
	return &Auditor{pool: pool, grid: grid.NewStore(pool, grid.Config{}), ledger: l, now: time.Now}
}

// Request asks for the audit of one person: of one post (AssignmentID), or
// of every post they held in [From, To) (zero From: from the start; zero
// To: until now).
type Request struct {
	ReportID     string // client-generated uuid; the same id returns the same report
	PersonID     string
	AssignmentID string
	From, To     time.Time
}

// historyPage is the page size of the ledger reads.
const historyPage = 500

// TenureAudit audits a person for the county office that manages them and
// records that it did (who audited whom, the period, the digest of the
// facts) in the person's county chain. Repeating a report id returns the
// report first made under it, recomputed from the same records.
func (a *Auditor) TenureAudit(ctx context.Context, c scope.Caller, req Request) (*Report, error) {
	if !c.HasRole(scope.RoleCountyOfficer) {
		return nil, structerr.NewPermissionDenied("tenure audits are made by the county office")
	}
	if _, err := uuid.Parse(req.ReportID); err != nil || len(req.ReportID) != 36 {
		return nil, structerr.NewInvalidArgument("report id %.40q is not a UUID", req.ReportID)
	}
	if _, err := uuid.Parse(req.PersonID); err != nil {
		return nil, structerr.NewInvalidArgument("person id %.40q is not a UUID", req.PersonID)
	}
	person, err := personRecord(ctx, a.pool, req.PersonID)
	if err != nil || !c.Covers(person.CountyCode, scope.RoleCountyOfficer) {
		return nil, structerr.NewNotFound("person %s not found", req.PersonID)
	}
	grant, _ := c.GrantFor(person.CountyCode, scope.RoleCountyOfficer)
	roots := c.Roots(scope.RoleCountyOfficer)

	prior, found, err := a.findGeneration(ctx, person.CountyCode, req.ReportID, roots)
	if err != nil {
		return nil, err
	}
	var p Params
	if found {
		p = prior.Params
		if p.PersonID != req.PersonID {
			return nil, structerr.NewAlreadyExists("report id %s was already used for another audit", req.ReportID)
		}
	} else if p, err = a.params(ctx, req, roots); err != nil {
		return nil, err
	}

	records, err := a.gather(ctx, p, roots)
	if err != nil {
		return nil, err
	}
	facts := Compute(p, records)
	dig, _, err := digest(facts)
	if err != nil {
		return nil, err
	}
	var gen ledger.Record
	if found {
		if prior.Digest != dig {
			return nil, structerr.NewFailedPrecondition("report %s can no longer be reproduced: its records changed (verify the ledger)", req.ReportID)
		}
		gen = prior.record
	} else {
		err = database.InTx(ctx, a.pool, func(tx pgx.Tx) error {
			gen, err = ledger.Append(ctx, tx, ledger.Entry{
				CountyCode: person.CountyCode, ActorID: c.PersonID, ActorRole: string(grant.Role),
				ActorNodeCode: grant.NodeCode, Action: ActionReportGenerated, SubjectType: "audit_report", SubjectID: req.ReportID,
				NodeCode:    person.CountyCode,
				Responsible: []ledger.Responsible{{PersonID: person.ID, Name: person.Name, Role: "audit_subject", NodeCode: person.CountyCode}},
				Payload:     generation{ReportID: req.ReportID, Params: p, Digest: dig, Summary: facts.Summary, Records: len(records)},
			})
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	rep := &Report{Format: ReportFormat, ReportID: req.ReportID, AuditorID: gen.ActorID, Facts: facts, Digest: dig,
		Generation: Cite{County: gen.CountyCode, Seq: gen.Seq}}
	if err := a.prove(ctx, rep, append(records, gen)); err != nil {
		return nil, err
	}
	if rep.Patrols, err = a.patrolCompliance(ctx, facts); err != nil {
		return nil, err
	}
	a.addNames(ctx, rep)
	for i := range rep.Patrols {
		rep.Patrols[i].CellName = rep.NodeNames[rep.Patrols[i].CellCode]
	}
	return rep, nil
}

// priorGeneration is a report already made under an id.
type priorGeneration struct {
	generation
	record ledger.Record
}

func (a *Auditor) findGeneration(ctx context.Context, county, id string, roots []string) (priorGeneration, bool, error) {
	rs, _, err := a.ledger.SubjectHistory(ctx, "audit_report", id, ledger.HistoryQuery{Scope: roots, Actions: []string{ActionReportGenerated}, Limit: 1})
	if err != nil || len(rs) == 0 {
		return priorGeneration{}, false, err
	}
	var g priorGeneration
	if err := json.Unmarshal(rs[0].Payload, &g.generation); err != nil {
		return g, false, fmt.Errorf("audit: generation record %s: %w", rs[0].String(), err)
	}
	g.record = rs[0]
	return g, true, nil
}

// params fixes the audited time: one post's tenure, or the period asked.
func (a *Auditor) params(ctx context.Context, req Request, roots []string) (Params, error) {
	now := a.now().UTC().Truncate(time.Microsecond)
	p := Params{PersonID: req.PersonID, AssignmentID: req.AssignmentID, From: req.From.UTC(), To: req.To.UTC(), AsOf: now}
	if req.AssignmentID != "" {
		if _, err := uuid.Parse(req.AssignmentID); err != nil {
			return p, structerr.NewInvalidArgument("assignment id %.40q is not a UUID", req.AssignmentID)
		}
		rs, _, err := a.ledger.SubjectHistory(ctx, "assignment", req.AssignmentID, ledger.HistoryQuery{Scope: roots, Limit: historyPage})
		if err != nil {
			return p, err
		}
		var start, end *time.Time
		for i := range rs {
			pl := payload(&rs[i])
			if pl["person_id"] != req.PersonID {
				continue
			}
			if t := parseTime(pl["valid_from"]); t != nil {
				start = t
			}
			if t := parseTime(pl["valid_to"]); t != nil {
				end = t
			}
		}
		if start == nil {
			return p, structerr.NewNotFound("assignment %s of person %s not found", req.AssignmentID, req.PersonID)
		}
		p.From, p.To = *start, now
		if end != nil {
			p.To = *end
		}
	}
	if p.To.IsZero() || p.To.After(now) {
		p.To = now
	}
	if !p.To.After(p.From) {
		return p, structerr.NewInvalidArgument("the audited period ends before it starts")
	}
	p.From, p.To = p.From.Truncate(time.Microsecond), p.To.Truncate(time.Microsecond)
	return p, nil
}

// gather reads what Compute needs: the person's posts (all time), the
// records naming them in the period, and the full history of every case
// among those. A person's identity is for life: their records in every
// county chain are read (posts held elsewhere before, cases there), not
// only the auditing county's, so moving county hides nothing.
func (a *Auditor) gather(ctx context.Context, p Params, roots []string) ([]ledger.Record, error) {
	to := p.AsOf.Add(time.Microsecond)
	var out []ledger.Record
	posts, err := a.all(ctx, func(q ledger.HistoryQuery) ([]ledger.Record, ledger.Cursor, error) {
		q.Actions = []string{"assignment.*"}
		q.To = to
		return a.ledger.PersonHistory(ctx, p.PersonID, q)
	}, lifetime)
	if err != nil {
		return nil, err
	}
	out = append(out, posts...)
	named, err := a.all(ctx, func(q ledger.HistoryQuery) ([]ledger.Record, ledger.Cursor, error) {
		q.From, q.To = p.From, p.To
		return a.ledger.PersonHistory(ctx, p.PersonID, q)
	}, lifetime)
	if err != nil {
		return nil, err
	}
	out = append(out, named...)
	seen := map[string]bool{}
	for _, r := range named {
		if r.SubjectType != "case" || seen[r.CountyCode+"/"+r.SubjectID] {
			continue
		}
		seen[r.CountyCode+"/"+r.SubjectID] = true
		hist, err := a.all(ctx, func(q ledger.HistoryQuery) ([]ledger.Record, ledger.Cursor, error) {
			q.To = to
			q.Scope = []string{r.CountyCode}
			return a.ledger.SubjectHistory(ctx, "case", r.SubjectID, q)
		}, roots)
		if err != nil {
			return nil, err
		}
		out = append(out, hist...)
	}
	return orderRecords(out), nil
}

// lifetime is the scope of the audited person's own records: every chain.
var lifetime = []string{""}

// all reads every page of a history query.
func (a *Auditor) all(ctx context.Context, read func(ledger.HistoryQuery) ([]ledger.Record, ledger.Cursor, error), roots []string) ([]ledger.Record, error) {
	var out []ledger.Record
	q := ledger.HistoryQuery{Scope: roots, Limit: historyPage}
	for {
		rs, next, err := read(q)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
		if next.CountyCode == "" {
			return out, nil
		}
		q.After = next
	}
}

// prove signs (or reuses) a checkpoint of every chain cited and attaches
// the inclusion proof of every record.
func (a *Auditor) prove(ctx context.Context, rep *Report, records []ledger.Record) error {
	byCounty := map[string][]int64{}
	for _, r := range records {
		byCounty[r.CountyCode] = append(byCounty[r.CountyCode], r.Seq)
	}
	counties := make([]string, 0, len(byCounty))
	for c := range byCounty {
		counties = append(counties, c)
	}
	slices.Sort(counties)
	for _, county := range counties {
		seqs := byCounty[county]
		slices.Sort(seqs)
		seqs = slices.Compact(seqs)
		cp, err := a.ledger.LatestCheckpoint(ctx, county)
		if err != nil && !isFailedPrecondition(err) {
			return err
		}
		if err != nil || cp.Size <= seqs[len(seqs)-1] {
			if cp, err = a.ledger.Checkpoint(ctx, county); err != nil {
				if errors.Is(err, ledger.ErrNoSigningKey) {
					return structerr.NewFailedPrecondition("this server cannot sign ledger checkpoints, so the report cannot be proven")
				}
				return err
			}
		}
		proofs, err := a.ledger.ProveRecords(ctx, cp, seqs)
		if err != nil {
			return err
		}
		rep.Checkpoints = append(rep.Checkpoints, cp.Note)
		rep.Evidence = append(rep.Evidence, proofs...)
	}
	return nil
}

func isFailedPrecondition(err error) bool { return structerr.Code(err) == codes.FailedPrecondition }

// addNames looks up the current names of the nodes and people the report
// mentions by code or id only.
func (a *Auditor) addNames(ctx context.Context, rep *Report) {
	rep.NodeNames, rep.PersonNames = map[string]string{}, map[string]string{}
	node := func(code string) {
		if _, ok := rep.NodeNames[code]; !ok && code != "" {
			rep.NodeNames[code] = nodeName(ctx, a.grid, code)
		}
	}
	person := func(id string) {
		if _, ok := rep.PersonNames[id]; !ok && id != "" {
			rep.PersonNames[id] = personName(ctx, a.pool, id)
		}
	}
	person(rep.Facts.PersonID)
	person(rep.AuditorID)
	rep.AuditorName = rep.PersonNames[rep.AuditorID]
	for _, p := range rep.Facts.Posts {
		node(p.NodeCode)
	}
	for _, h := range rep.Facts.Handovers {
		person(h.ActorID)
	}
	for _, c := range rep.Facts.Cases {
		node(c.NodeCode)
	}
	for _, r := range rep.Facts.Reports {
		node(r.NodeCode)
	}
}
