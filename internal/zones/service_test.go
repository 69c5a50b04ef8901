package zones

import (
	"bytes"
	"context"
	"io"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/scope"
)

// importStream feeds ImportZones a header and one chunk, in process.
type importStream struct {
	grpc.ServerStream
	ctx  context.Context
	msgs []*ecogridv1.ImportZonesRequest
	resp *ecogridv1.ImportZonesResponse
}

func (s *importStream) Context() context.Context { return s.ctx }
func (s *importStream) Recv() (*ecogridv1.ImportZonesRequest, error) {
	if len(s.msgs) == 0 {
		return nil, io.EOF
	}
	m := s.msgs[0]
	s.msgs = s.msgs[1:]
	return m, nil
}
func (s *importStream) SendAndClose(r *ecogridv1.ImportZonesResponse) error { s.resp = r; return nil }

// TestAuthorityAsForTheGrid: the county office writes its county's zones,
// everyone with a grant in the county reads them, another county's office
// gets NotFound, an administrator writes everywhere.
func TestAuthorityAsForTheGrid(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	ix := NewIndex(pool, nil)
	svc := NewService(NewStore(pool), ix, nil)
	as := func(role scope.Role, node string) context.Context {
		return scope.NewContext(ctx, scope.Caller{PersonID: "00000000-0000-0000-0000-000000000001", Grants: []scope.Grant{{Role: role, NodeCode: node}}})
	}
	officer, otherOfficer := as(scope.RoleCountyOfficer, testCounty), as(scope.RoleCountyOfficer, "130124")
	inspector, admin := as(scope.RoleInspector, testCounty+"101201"), as(scope.RoleAdmin, "")
	imp := func(ctx context.Context, county string) error {
		return svc.ImportZones(&importStream{ctx: ctx, msgs: []*ecogridv1.ImportZonesRequest{
			{Part: &ecogridv1.ImportZonesRequest_Header{Header: &ecogridv1.ImportZonesHeader{CountyCode: county}}},
			{Part: &ecogridv1.ImportZonesRequest_Chunk{Chunk: collection(waterZones()...)}},
		}})
	}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want codes.Code
	}{
		{"county office", officer, codes.OK},
		{"inspector", inspector, codes.PermissionDenied},
		{"other county's office", otherOfficer, codes.NotFound},
		{"administrator", admin, codes.OK},
	} {
		if err := imp(tc.ctx, testCounty); status.Code(err) != tc.want {
			t.Errorf("import as %s = %v; want %v", tc.name, err, tc.want)
		}
	}
	if err := ix.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		want  codes.Code
		zones int
	}{
		{"inspector", inspector, codes.OK, 2},
		{"other county's office", otherOfficer, codes.NotFound, 0},
	} {
		resp, err := svc.ListZones(tc.ctx, &ecogridv1.ListZonesRequest{CountyCode: testCounty})
		if status.Code(err) != tc.want {
			t.Errorf("ListZones as %s = %v; want %v", tc.name, err, tc.want)
		}
		loc, err := svc.LocateZones(tc.ctx, &ecogridv1.LocateZonesRequest{Position: &ecogridv1.Position{Latitude: 38.11, Longitude: 114.51, CoordinateSystem: ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_WGS84}})
		if err != nil || len(loc.GetZones()) != tc.zones {
			t.Errorf("LocateZones as %s = %v, %v; want %d zones", tc.name, loc, err, tc.zones)
		}
		if err == nil && tc.want == codes.OK && len(resp.GetZones()) != 3 {
			t.Errorf("ListZones as %s: %d zones", tc.name, len(resp.GetZones()))
		}
	}
	rule := &ecogridv1.ZoneRule{CountyCode: testCounty, Kind: string(KindNoBuild), MinSeverity: ecogridv1.Severity_SEVERITY_CRITICAL, DeadlineHours: 48, EscalateNow: true}
	if _, err := svc.SetZoneRule(inspector, &ecogridv1.SetZoneRuleRequest{Rule: rule}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("SetZoneRule as inspector = %v", err)
	}
	if _, err := svc.SetZoneRule(officer, &ecogridv1.SetZoneRuleRequest{Rule: rule}); err != nil {
		t.Fatal(err)
	}
	resp, err := svc.ListZoneRules(inspector, &ecogridv1.ListZoneRulesRequest{CountyCode: testCounty})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.GetRules() {
		if r.GetKind() == string(KindNoBuild) && (r.GetIsDefault() || !r.GetEscalateNow() || r.GetDeadlineHours() != 48) {
			t.Errorf("no_build rule after SetZoneRule = %v", r)
		}
	}
	if _, err := svc.SetZoneRule(officer, &ecogridv1.SetZoneRuleRequest{Rule: &ecogridv1.ZoneRule{CountyCode: testCounty, Kind: "wetland_park"}}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("rule for an undefined kind = %v", err)
	}
	var buf bytes.Buffer
	if err := NewStore(pool).ExportGeoJSON(ctx, testCounty, &buf); err != nil || buf.Len() == 0 {
		t.Fatal(err)
	}
}
