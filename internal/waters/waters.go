// Package waters owns the river and reservoir chief system (河长制/库长制):
// water bodies (rivers, streams, reservoirs, lakes, ponds), their reaches
// (河段 as MultiLineStrings, 库区 as MultiPolygons, EPSG:4326) with
// versions, each owned by one grid node; the chiefs of every reach and the
// county's chief river chief (总河长), effective-dated and kept for life;
// the public sign data; whether a patrol's track covered a reach; and an
// in-memory index answering "which reaches are within 50 m of this point".
//
// It sits beside grid in the layers (platform → ledger → grid, waters →
// people → field, cases): it asks grid through grid's Go API (NodeByCode:
// does the node exist, what is its county's boundary) and never reads
// grid's tables. Other contexts use its Go API:
//
//   - (*Index).ReachesNear(lat, lon, meters): the current reaches within
//     meters of a WGS-84 point, nearest first (field: attach a report to a
//     reach).
//   - (*Store).ChiefsOn(ctx, reachCode, day): the chiefs responsible for a
//     reach that day, as ledger.Responsible (cases: name them in the ledger
//     record of a violation on the reach, and notify them).
//   - Coverage(reach, track, buffer): how much of a reach a track followed.
package waters

import (
	"time"

	"github.com/google/uuid"
	"github.com/twpayne/go-geom"

	"ecogrid/internal/grid"
)

// Kind is the kind of a water body.
type Kind string

// The kinds of water body. Rivers and streams are cut into line reaches;
// reservoirs, lakes and ponds into polygon areas.
const (
	KindRiver     Kind = "river"
	KindStream    Kind = "stream"
	KindReservoir Kind = "reservoir"
	KindLake      Kind = "lake"
	KindPond      Kind = "pond"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	switch k {
	case KindRiver, KindStream, KindReservoir, KindLake, KindPond:
		return true
	}
	return false
}

// Linear reports whether reaches of this kind are lines (rivers, streams).
func (k Kind) Linear() bool { return k == KindRiver || k == KindStream }

// ChiefTitle is what the chief of a reach of this kind is called on the
// sign: 河长 for flowing water, 库长 for reservoirs, lakes and ponds.
func (k Kind) ChiefTitle() string {
	if k.Linear() {
		return "河长"
	}
	return "库长"
}

// Reach is one version of a reach (河段/库区) of a water body, owned by the
// grid node at the level responsible for it.
type Reach struct {
	ID        uuid.UUID
	Code      string
	Name      string
	BodyCode  string
	BodyName  string
	BodyKind  Kind
	Seq       int // order along the river, upstream first
	NodeID    uuid.UUID
	NodeCode  string
	NodeLevel grid.Level
	// Geometry is a *geom.MultiLineString (river, stream) or a
	// *geom.MultiPolygon (reservoir, lake, pond), SRID 4326.
	Geometry  geom.T
	LengthM   float64 // along the line; the perimeter's length is not kept for areas
	Version   int
	ValidFrom time.Time
	ValidTo   *time.Time
}

// CountyCode is the shard key of the reach.
func (r *Reach) CountyCode() string { return grid.CountyCode(r.NodeCode) }
