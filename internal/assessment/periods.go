package assessment

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"ecogrid/internal/database"
	"ecogrid/internal/ledger"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// ActionPeriodClosed freezes a period's scorecards in the ledger.
const ActionPeriodClosed = "assessment.period_closed"

// Period is a month, quarter or year of one county, named by its label
// (e.g. "2026-Q1").
type Period struct {
	County string    `json:"county"`
	Label  string    `json:"label"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
}

func (p Period) subjectID() string { return p.County + "/" + p.Label }

func (p Period) check() error {
	if len(p.County) != 6 || p.Label == "" || len(p.Label) > 32 || !p.To.After(p.From) {
		return structerr.NewInvalidArgument("a period is a county, a label and a time range that ends after it starts")
	}
	return nil
}

// closedPeriod is the payload of the period_closed record.
type closedPeriod struct {
	Period     Period      `json:"period"`
	Scorecards []Scorecard `json:"scorecards"`
}

// Assessor computes scorecards from the ledger and closes periods.
type Assessor struct {
	pool   *pgxpool.Pool
	ledger *ledger.Ledger
}

// New returns an Assessor.
func New(pool *pgxpool.Pool, l *ledger.Ledger) *Assessor { return &Assessor{pool: pool, ledger: l} }

// lookBack is how far before a period case openings are read, to time the
// responses of cases opened earlier and accepted in the period.
const lookBack = 90 * 24 * time.Hour

// Scorecards returns the scorecards of nodes for the period: the frozen
// ones when the period is closed (closed=true), else computed now.
func (a *Assessor) Scorecards(ctx context.Context, c scope.Caller, p Period, nodes []string, kinds map[string]AreaKind) ([]Scorecard, bool, error) {
	if err := p.check(); err != nil {
		return nil, false, err
	}
	if !c.Covers(p.County, scope.RoleCountyOfficer) {
		return nil, false, structerr.NewNotFound("county %s not found", p.County)
	}
	if frozen, ok, err := a.closed(ctx, p); err != nil || ok {
		return frozen.Scorecards, ok, err
	}
	sc, err := a.compute(ctx, p, nodes, kinds)
	return sc, false, err
}

// ClosePeriod computes the period's scorecards and signs them into the
// county's ledger chain; closing a closed period returns what was frozen.
func (a *Assessor) ClosePeriod(ctx context.Context, c scope.Caller, p Period, nodes []string, kinds map[string]AreaKind) ([]Scorecard, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	g, ok := c.GrantFor(p.County, scope.RoleCountyOfficer)
	if !ok {
		return nil, structerr.NewNotFound("county %s not found", p.County)
	}
	if frozen, ok, err := a.closed(ctx, p); err != nil || ok {
		return frozen.Scorecards, err
	}
	sc, err := a.compute(ctx, p, nodes, kinds)
	if err != nil {
		return nil, err
	}
	err = database.InTx(ctx, a.pool, func(tx pgx.Tx) error {
		_, err := ledger.Append(ctx, tx, ledger.Entry{CountyCode: p.County, ActorID: c.PersonID, ActorRole: string(g.Role),
			ActorNodeCode: g.NodeCode, Action: ActionPeriodClosed, SubjectType: "assessment_period", SubjectID: p.subjectID(),
			NodeCode: p.County, Payload: closedPeriod{Period: p, Scorecards: sc}})
		return err
	})
	return sc, err
}

func (a *Assessor) closed(ctx context.Context, p Period) (closedPeriod, bool, error) {
	rs, _, err := a.ledger.SubjectHistory(ctx, "assessment_period", p.subjectID(),
		ledger.HistoryQuery{Scope: []string{p.County}, Actions: []string{ActionPeriodClosed}, Limit: 1})
	if err != nil || len(rs) == 0 {
		return closedPeriod{}, false, err
	}
	var cp closedPeriod
	if err := json.Unmarshal(rs[0].Payload, &cp); err != nil {
		return cp, false, fmt.Errorf("assessment: closed period %s: %w", rs[0].String(), err)
	}
	return cp, true, nil
}

func (a *Assessor) compute(ctx context.Context, p Period, nodes []string, kinds map[string]AreaKind) ([]Scorecard, error) {
	var records []ledger.Record
	q := ledger.HistoryQuery{Scope: []string{p.County}, Actions: []string{"case.*", "violation.reported"},
		From: p.From.Add(-lookBack), To: p.To, Limit: 500}
	for {
		rs, next, err := a.ledger.NodeHistory(ctx, p.County, q)
		if err != nil {
			return nil, err
		}
		records = append(records, rs...)
		if next.CountyCode == "" {
			break
		}
		q.After = next
	}
	return Compute(nodes, kinds, p.From, p.To, records), nil
}
