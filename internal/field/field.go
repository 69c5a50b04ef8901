// Package field owns field reporting: inspectors' patrols with their GPS
// tracks, geotagged reports filed from the phone app (online or replayed
// from an offline queue), the photos attached to them and to cases as
// evidence, patrol compliance for supervisors and exports for the county
// office. It owns the field schema and nothing else.
//
// The phone app works on mountain roads with one bar of signal or none, so
// everything here is idempotent on client-generated ids: whatever the app
// managed to send is never lost or doubled.
//
// Layers: field sits above platform (database, messaging, structerr),
// ledger and outbox, grid and people, and uses only their Go API — a
// violation's event goes through outbox.Enqueue, its accountability record
// through ledger.Append, the people responsible come from
// people.ResponsibleAt as ledger.Responsible, patrol rules from
// grid.TasksByCode. cases, above it, calls LookupViolation and
// LinkEvidence; cmd/gridd wires it.
package field

import (
	"context"
	"time"

	"ecogrid/internal/database"
	"ecogrid/internal/grid"
)

// Location is the grid cell a WGS-84 point falls in, with its ancestors.
// Empty codes mean the point lies outside the grid.
type Location struct {
	CountyCode   string
	TownshipCode string
	VillageCode  string
}

// Cell returns the deepest code of l ("" when outside the grid).
func (l Location) Cell() string {
	switch {
	case l.VillageCode != "":
		return l.VillageCode
	case l.TownshipCode != "":
		return l.TownshipCode
	}
	return l.CountyCode
}

// Locator finds the grid cell of a WGS-84 point, now or at a past moment.
// The grid context serves it from its in-memory index and boundary
// history (gridadapt.Locator in gridd); a report observed more than
// HistoricLocateAfter ago (an offline queue replayed late) is located in
// the grid as it was when observed, so a boundary change in between does
// not move it to another cell. It stays an interface because the grid's
// index sits in a package that imports field's types (gridadapt); the
// tests serve it from a real grid index as well.
type Locator interface {
	Locate(ctx context.Context, lat, lon float64) (Location, bool, error)
	LocateAt(ctx context.Context, lat, lon float64, at time.Time) (Location, bool, error)
}

// HistoricLocateAfter is the age from which an observation is located in
// the grid's history rather than in the current grid.
const HistoricLocateAfter = 24 * time.Hour

// PatrolRule is what the grid's tasks ask of a cell's patrols.
type PatrolRule struct {
	PerWeek      int // required patrols per week (0: no weekly rule)
	PerMonth     int // required patrols per month (0: no monthly rule)
	MinDuration  time.Duration
	MinDistanceM float64
}

// Required returns the number of patrols the rule asks for in a period.
func (r PatrolRule) Required(p Period) int {
	switch p {
	case PeriodWeek:
		if r.PerWeek > 0 {
			return r.PerWeek
		}
		if r.PerMonth > 0 {
			return (r.PerMonth*7 + 29) / 30 // rounded up share of the month
		}
	case PeriodMonth:
		if r.PerMonth > 0 {
			return r.PerMonth
		}
		if r.PerWeek > 0 {
			return r.PerWeek * 4
		}
	}
	return 0
}

// PatrolKind is the grid task kind that sets patrol requirements.
const PatrolKind = "patrol"

// patrolRules reads through q (inside a transaction, the transaction) the
// patrol rules of cells from the grid's tasks: the "patrol" tasks of a
// cell give its weekly or monthly patrol count and the least duration and
// distance that count as a patrol. Cells without patrol tasks are absent.
func patrolRules(ctx context.Context, q database.Querier, cellCodes []string) (map[string]PatrolRule, error) {
	tasks, err := grid.TasksByCode(ctx, q, cellCodes)
	if err != nil {
		return nil, err
	}
	out := make(map[string]PatrolRule, len(tasks))
	for code, ts := range tasks {
		if r, ok := patrolRuleOf(ts); ok {
			out[code] = r
		}
	}
	return out, nil
}

// patrolRuleOf sums the patrol tasks among ts into one rule; false when
// there is none. A node's tasks and an assignment's are read alike.
func patrolRuleOf(ts []grid.Task) (PatrolRule, bool) {
	var r PatrolRule
	found := false
	for _, task := range ts {
		if task.Kind != PatrolKind {
			continue
		}
		found = true
		switch task.Period {
		case grid.PeriodWeek:
			r.PerWeek += task.Count
		case grid.PeriodMonth:
			r.PerMonth += task.Count
		case grid.PeriodDay:
			r.PerWeek += 7 * task.Count
		}
		r.MinDuration = max(r.MinDuration, time.Duration(task.MinMinutes)*time.Minute)
		r.MinDistanceM = max(r.MinDistanceM, task.MinDistanceM)
	}
	return r, found
}

// Ledger actions written by this package.
const (
	ActionViolationReported = "violation.reported"
)
