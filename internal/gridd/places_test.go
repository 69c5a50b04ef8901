package gridd

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twpayne/go-geom"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/demo"
	"ecogrid/internal/scope"
	"ecogrid/internal/waters"
	"ecogrid/internal/zones"
)

// LocatePoint as gridd wires it answers, beside the cell, the protected
// zones containing the point and the reaches within 50 m (issues 17, 18),
// from the grid's, the zones' and the waters' in-memory indexes.
func TestLocatePointSaysWhichZonesAndReaches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	store := grid.NewStore(pool, grid.Config{})
	if _, err := store.ImportGeoJSON(ctx, bytes.NewReader(demo.County()), grid.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	gix := grid.NewIndex(pool, nil)
	if err := gix.Load(ctx); err != nil {
		t.Fatal(err)
	}
	square := geom.NewMultiPolygon(geom.XY).SetSRID(4326)
	_ = square.Push(geom.NewPolygonFlat(geom.XY, []float64{114.50, 38.10, 114.52, 38.10, 114.52, 38.12, 114.50, 38.12, 114.50, 38.10}, []int{10}))
	zix := zones.NewIndex(pool, nil)
	zix.Replace([]zones.Zone{{CountyCode: demo.DemoCountyCode, Code: "SY-1", Version: 1, Kind: zones.KindDrinkingWater1, Name: "水源地一级保护区",
		Geometry: square, ValidFrom: time.Now().Add(-time.Hour)}})
	river := geom.NewMultiLineStringFlat(geom.XY, []float64{114.49, 38.11, 114.53, 38.11}, []int{4}).SetSRID(4326)
	rix := waters.Build([]waters.Reach{{ID: uuid.New(), Code: "HTH-01", Name: "滹沱河第1段", BodyCode: "HTH", BodyKind: waters.KindRiver,
		Geometry: river, NodeCode: demo.DemoCountyCode, Version: 1}})
	svc := grid.NewService(store, gix, grid.ServiceConfig{Places: locatePlaces(zix, rix)}, nil)
	officer := scope.NewContext(ctx, scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleCountyOfficer, NodeCode: demo.DemoCountyCode}}})
	locate := func(lat, lon float64) *ecogridv1.LocatePointResponse {
		t.Helper()
		resp, err := svc.LocatePoint(officer, &ecogridv1.LocatePointRequest{Position: &ecogridv1.Position{Latitude: lat, Longitude: lon,
			CoordinateSystem: ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_WGS84}})
		if err != nil || !resp.GetFound() {
			t.Fatalf("LocatePoint(%v, %v) = %v, %v", lat, lon, resp, err)
		}
		return resp
	}
	in := locate(38.1102, 114.51) // in the zone, 22 m from the river
	if len(in.GetZones()) != 1 || in.GetZones()[0].GetCode() != "SY-1" || in.GetZones()[0].GetKind() != "drinking_water_1" {
		t.Fatalf("zones at the intake: %v", in.GetZones())
	}
	if len(in.GetReaches()) != 1 || in.GetReaches()[0].GetCode() != "HTH-01" || in.GetReaches()[0].GetDistanceM() > 30 {
		t.Fatalf("reaches at the intake: %v", in.GetReaches())
	}
	out := locate(38.13, 114.51) // 1 km north: neither
	if len(out.GetZones()) != 0 || len(out.GetReaches()) != 0 {
		t.Fatalf("1 km north: zones %v, reaches %v", out.GetZones(), out.GetReaches())
	}
}
