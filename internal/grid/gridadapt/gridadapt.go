// Package gridadapt fits the grid's Go API to the small interfaces the
// field context declares for it (field.Locator): the in-memory index and
// its boundary history. People calls grid directly.
package gridadapt

import (
	"context"
	"time"

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

// LocateAt implements field.Locator: the cell covering the point at a
// past moment, from the grid's boundary history.
func (l Locator) LocateAt(ctx context.Context, lat, lon float64, at time.Time) (field.Location, bool, error) {
	loc, ok, err := l.Index.LocateAt(ctx, lat, lon, at)
	if err != nil || !ok {
		return field.Location{}, false, err
	}
	return field.Location{
		CountyCode:   loc.CodeAt(grid.LevelCounty),
		TownshipCode: loc.CodeAt(grid.LevelTownship),
		VillageCode:  loc.CodeAt(grid.LevelVillage),
	}, true, nil
}
