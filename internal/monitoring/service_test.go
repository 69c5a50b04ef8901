package monitoring

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/scope"
)

// TestServiceAuthority: the county office creates points and records
// samples; an inspector of the county reads them but may not record;
// another county's office finds nothing.
func TestServiceAuthority(t *testing.T) {
	e := newEnv(t)
	svc := NewService(e.m, nil)
	as := func(role scope.Role, node string) context.Context {
		return scope.NewContext(context.Background(), scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: role, NodeCode: node}}})
	}
	officer, other, inspector := as(scope.RoleCountyOfficer, county), as(scope.RoleCountyOfficer, "130124"), as(scope.RoleInspector, county+"001001")
	pt := &ecogridv1.MonitoringPoint{PointId: uuid.NewString(), CountyCode: county, Code: "DM-S", Name: "岗南断面",
		Kind: ecogridv1.MonitoringPointKind_MONITORING_POINT_KIND_INTAKE, WaterBody: ecogridv1.WaterBodyType_WATER_BODY_TYPE_RESERVOIR,
		TargetClass: 2, Latitude: 38.15, Longitude: 114.60, SampleEveryHours: 24 * 7, ScheduleStart: timestamppb.Now()}
	if _, err := svc.CreatePoint(inspector, &ecogridv1.CreatePointRequest{Point: pt}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("CreatePoint as inspector = %v", err)
	}
	if _, err := svc.CreatePoint(other, &ecogridv1.CreatePointRequest{Point: pt}); status.Code(err) != codes.NotFound {
		t.Errorf("CreatePoint as another county's office = %v", err)
	}
	created, err := svc.CreatePoint(officer, &ecogridv1.CreatePointRequest{Point: pt})
	if err != nil || created.GetPoint().GetVillageCode() == "" {
		t.Fatalf("CreatePoint = %v, %v", created, err)
	}
	outside := &ecogridv1.MonitoringPoint{PointId: uuid.NewString(), CountyCode: county, Code: "DM-X", Name: "x", Kind: 1, WaterBody: 1, TargetClass: 3, Latitude: 30, Longitude: 100}
	if _, err := svc.CreatePoint(officer, &ecogridv1.CreatePointRequest{Point: outside}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("CreatePoint outside the county = %v", err)
	}
	sample := &ecogridv1.Sample{SampleId: uuid.NewString(), PointId: pt.GetPointId(), SampledAt: timestamppb.New(time.Now().Add(-time.Hour)), Lab: "县监测站",
		Measurements: []*ecogridv1.Measurement{{Parameter: "TP", Value: 0.03, Unit: "mg/L"}}} // class III in a reservoir, target II
	if _, err := svc.RecordSample(inspector, &ecogridv1.RecordSampleRequest{Sample: sample}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("RecordSample as inspector = %v", err)
	}
	if _, err := svc.RecordSample(other, &ecogridv1.RecordSampleRequest{Sample: sample}); status.Code(err) != codes.NotFound {
		t.Errorf("RecordSample as another county's office = %v", err)
	}
	rec, err := svc.RecordSample(officer, &ecogridv1.RecordSampleRequest{Sample: sample})
	if err != nil || rec.GetSample().GetClass() != 3 || rec.GetSample().GetViolationEventId() == "" {
		t.Fatalf("RecordSample = %v, %v; want class III with a violation", rec, err)
	}
	list, err := svc.ListSamples(inspector, &ecogridv1.ListSamplesRequest{PointId: pt.GetPointId()})
	if err != nil || len(list.GetSamples()) != 1 {
		t.Fatalf("ListSamples as inspector = %v, %v", list, err)
	}
	if _, err := svc.ListSamples(other, &ecogridv1.ListSamplesRequest{PointId: pt.GetPointId()}); status.Code(err) != codes.NotFound {
		t.Errorf("ListSamples as another county's office = %v", err)
	}
	bad := &ecogridv1.Sample{SampleId: uuid.NewString(), PointId: pt.GetPointId(), SampledAt: timestamppb.Now(), Lab: "x",
		Measurements: []*ecogridv1.Measurement{{Parameter: "unobtainium", Value: 1}}}
	if _, err := svc.RecordSample(officer, &ecogridv1.RecordSampleRequest{Sample: bad}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("RecordSample of an unknown parameter = %v", err)
	}
}
