// Package gridadapt fits the grid's Go API to the small interfaces the
// field context declares for it (field.Locator, field.TaskSource). People
// calls grid directly; this package goes when field does too.
package gridadapt

import (
	"context"
	"time"

	"ecogrid/internal/database"
	"ecogrid/internal/field"
	"ecogrid/internal/grid"
)

// Locator serves field.Locator from the grid's in-memory index.
type Locator struct{ Index *grid.Index }

var _ field.Locator = Locator{}

// Locate implements field.Locator: the county, township and village codes
// of the cell covering a WGS-84 point.
func (l Locator) Locate(_ context.Context, lat, lon float64) (field.Location, bool, error) {
	loc, ok, err := l.Index.LocateNow(lat, lon)
	if err != nil || !ok {
		return field.Location{}, false, err
	}
	return field.Location{
		CountyCode:   loc.CodeAt(grid.LevelCounty),
		TownshipCode: loc.CodeAt(grid.LevelTownship),
		VillageCode:  loc.CodeAt(grid.LevelVillage),
	}, true, nil
}

// TaskSource serves field.TaskSource from the nodes' tasks: the "patrol"
// tasks of a cell give its weekly or monthly patrol count and the least
// duration and distance that count as a patrol.
type TaskSource struct{ Store *grid.Store }

var _ field.TaskSource = TaskSource{}

// PatrolKind is the task kind that sets patrol requirements.
const PatrolKind = "patrol"

// PatrolRules implements field.TaskSource.
func (t TaskSource) PatrolRules(ctx context.Context, q database.Querier, cellCodes []string) (map[string]field.PatrolRule, error) {
	tasks, err := grid.TasksByCode(ctx, q, cellCodes)
	if err != nil {
		return nil, err
	}
	out := make(map[string]field.PatrolRule, len(tasks))
	for code, ts := range tasks {
		var r field.PatrolRule
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
		if found {
			out[code] = r
		}
	}
	return out, nil
}
