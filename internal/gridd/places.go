package gridd

import (
	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/field"
	"ecogrid/internal/waters"
	"ecogrid/internal/zones"
)

// locatePlaces composes the other spatial layers into LocatePoint's
// answer through their Go APIs (no SQL across contexts): the zones in
// force containing the point and the reaches within field.ReachBufferM,
// both from memory.
func locatePlaces(zix *zones.Index, rix *waters.Index) func(lat, lon float64) ([]*ecogridv1.LocatedZone, []*ecogridv1.LocatedReach) {
	return func(lat, lon float64) ([]*ecogridv1.LocatedZone, []*ecogridv1.LocatedReach) {
		var zs []*ecogridv1.LocatedZone
		for _, z := range zix.ZonesAt(lat, lon) {
			zs = append(zs, &ecogridv1.LocatedZone{CountyCode: z.CountyCode, Code: z.Code, Kind: string(z.Kind), Name: z.Name})
		}
		var rs []*ecogridv1.LocatedReach
		for _, n := range rix.Near(lat, lon, field.ReachBufferM) {
			rs = append(rs, &ecogridv1.LocatedReach{Code: n.Reach.Code, Name: n.Reach.Name, BodyCode: n.Reach.BodyCode,
				NodeCode: n.Reach.NodeCode, DistanceM: n.DistanceM})
		}
		return zs, rs
	}
}
