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
// through ledger.Append, the people responsible come from people as
// ledger.Responsible. cases, above it, calls LookupViolation and
// LinkEvidence; cmd/gridd wires it.
package field

import (
	"context"
	"time"

	"ecogrid/internal/database"
	"ecogrid/internal/ledger"
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

// Locator finds the grid cell of a WGS-84 point. The grid context serves it
// from its in-memory index.
type Locator interface {
	Locate(ctx context.Context, lat, lon float64) (Location, bool, error)
}

// HistoricLocator is a Locator that can also answer for a past moment,
// from the grid's boundary history. When the locator implements it, a
// report observed more than HistoricLocateAfter ago (an offline queue
// replayed late) is located in the grid as it was when observed, so a
// boundary change in between does not move it to another cell.
type HistoricLocator interface {
	Locator
	LocateAt(ctx context.Context, lat, lon float64, at time.Time) (Location, bool, error)
}

// HistoricLocateAfter is the age from which an observation is located in
// the grid's history rather than in the current grid.
const HistoricLocateAfter = 24 * time.Hour

// Directory answers questions about people the field context needs: who
// was responsible for a cell at a time (named in violation events and
// ledger records), and which inspectors are assigned under a node (for
// compliance, which must list inspectors who did no patrol at all).
//
// Its only production implementation is PeopleDirectory (people's package
// functions); the other is the tests' fixed directory. It is to be
// replaced by direct calls to people once the tests seed real
// assignments (issue 12).
type Directory interface {
	ResponsibleAt(ctx context.Context, q database.Querier, nodeCode string, at time.Time) ([]ledger.Responsible, error)
	InspectorsUnder(ctx context.Context, q database.Querier, nodeCode string, at time.Time) ([]Assignee, error)
}

// Assignee is an inspector assigned to a cell.
type Assignee struct {
	PersonID string
	NodeCode string
}

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

// TaskSource reads the patrol rules of cells from the grid's tasks
// (gridadapt.TaskSource in gridd, a fixed rule in the tests). Like
// Directory, it is to become a direct call to grid (issue 12).
type TaskSource interface {
	// PatrolRules reads through q: inside a transaction, the transaction.
	PatrolRules(ctx context.Context, q database.Querier, cellCodes []string) (map[string]PatrolRule, error)
}

// Ledger actions written by this package.
const (
	ActionViolationReported = "violation.reported"
)
