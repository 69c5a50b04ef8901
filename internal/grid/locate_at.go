package grid

import (
	"context"
	"maps"
	"time"

	"ecogrid/internal/structerr"
)

// boundaryChanges records, per county, the latest moment a boundary of
// the county took effect (a version's valid_from or a node's retirement),
// and the latest over all counties. Since that moment the county's nodes in
// the index are exactly the versions the history holds, so a point observed
// then can be located in memory. Counties do not overlap, so a change in
// one never moves a point of another.
type boundaryChanges struct {
	byCounty map[string]time.Time
	latest   time.Time
}

func newBoundaryChanges() boundaryChanges {
	return boundaryChanges{byCounty: map[string]time.Time{}}
}

func (b *boundaryChanges) note(r changedNode) {
	county := CountyCode(r.ref.Code)
	if r.changedAt.After(b.byCounty[county]) {
		b.byCounty[county] = r.changedAt
	}
	if r.changedAt.After(b.latest) {
		b.latest = r.changedAt
	}
}

func (b boundaryChanges) clone() boundaryChanges {
	return boundaryChanges{byCounty: maps.Clone(b.byCounty), latest: b.latest}
}

// LocateAt answers "which cell was this point in at that moment" — for a
// report synced late from an offline queue, located in the boundaries in
// force when it was observed. It answers from memory when the boundaries
// of the point's county have not changed since at (almost always: they
// change a few times a year), and from the boundary history in PostGIS
// (Store.LocateAt) otherwise; both give the same answer, edge points
// included. Unavailable until the index's first load.
func (ix *Index) LocateAt(ctx context.Context, lat, lon float64, at time.Time) (Location, bool, error) {
	select {
	case <-ix.Ready():
	default:
		return Location{}, false, structerr.NewUnavailable("the grid index is still loading, retry")
	}
	s := ix.snap.Load()
	loc, ok := s.locate(lat, lon)
	switch {
	case ok && !at.Before(s.changes.byCounty[CountyCode(loc.Cell.Code)]):
		ix.metrics.historicFromMemory.Add(1)
		return loc, true, nil
	case !ok && !at.Before(s.changes.latest):
		ix.metrics.historicFromMemory.Add(1)
		return Location{}, false, nil
	}
	ix.metrics.historicFromPostGIS.Add(1)
	return locateAt(ctx, ix.pool, lat, lon, at)
}
