package departments

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

func officerOf(county string) context.Context {
	return scope.NewContext(context.Background(), scope.Caller{PersonID: uuid.NewString(),
		Grants: []scope.Grant{{Role: scope.RoleCountyOfficer, NodeCode: county}}})
}

// The county office sets a department up over the RPCs — a township
// station covering its township, staff effective-dated, a route — and
// reads it back; a retry of a create is harmless; another county's office
// finds none of it; bad input is InvalidArgument with a message.
func TestDepartmentServiceSetsUpAStation(t *testing.T) {
	pool := open(t)
	svc := NewService(pool, nil)
	ctx, away := officerOf(county), officerOf("130124")
	const township = "130123101"

	create := &ecogridv1.CreateDepartmentRequest{DepartmentId: uuid.NewString(), CountyCode: county, TownshipCode: township,
		Code: "water_station_101", NameZh: "水利站", NameEn: "water station"}
	res, err := svc.CreateDepartment(ctx, create)
	if err != nil {
		t.Fatal(err)
	}
	id := res.GetDepartment().GetDepartmentId()
	if again, err := svc.CreateDepartment(ctx, create); err != nil || again.GetDepartment().GetDepartmentId() != id {
		t.Fatalf("retrying the create: %v", err)
	}
	if _, err := svc.CreateDepartment(away, create); structerr.Code(err) != codes.NotFound {
		t.Errorf("another county creating in this one: %v", err)
	}
	if _, err := svc.CoverArea(ctx, &ecogridv1.CoverAreaRequest{DepartmentId: id, NodeCode: "130123102001"}); structerr.Code(err) != codes.InvalidArgument {
		t.Errorf("a station covering another township: %v", err)
	}
	if _, err := svc.CoverArea(ctx, &ecogridv1.CoverAreaRequest{DepartmentId: id, NodeCode: township, ValidFrom: timestamppb.New(time.Now().Add(-time.Hour))}); err != nil {
		t.Fatal(err)
	}
	list, err := svc.ListDepartments(ctx, &ecogridv1.ListDepartmentsRequest{CountyCode: county})
	if err != nil || len(list.GetDepartments()) != 1 || len(list.GetDepartments()[0].GetCoveredNodeCodes()) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}

	p := person(t, pool, county, "李水利")
	from := time.Now().Add(-2 * time.Hour).Truncate(time.Microsecond)
	add, err := svc.AddStaff(ctx, &ecogridv1.AddStaffRequest{MembershipId: uuid.NewString(), DepartmentId: id, PersonId: p, Role: "head", ValidFrom: timestamppb.New(from)})
	if err != nil {
		t.Fatal(err)
	}
	if !add.GetMembership().GetValidFrom().AsTime().Equal(from) {
		t.Errorf("valid_from %v, want %v", add.GetMembership().GetValidFrom().AsTime(), from)
	}
	outsider := person(t, pool, "130124", "外县人")
	if _, err := svc.AddStaff(ctx, &ecogridv1.AddStaffRequest{MembershipId: uuid.NewString(), DepartmentId: id, PersonId: outsider, Role: "staff"}); structerr.Code(err) != codes.FailedPrecondition {
		t.Errorf("a person of another county on the staff: %v", err)
	}
	if _, err := svc.AddStaff(ctx, &ecogridv1.AddStaffRequest{MembershipId: uuid.NewString(), DepartmentId: id, PersonId: p, Role: "boss"}); structerr.Code(err) != codes.InvalidArgument {
		t.Errorf("role boss: %v", err)
	}
	if _, err := svc.EndStaff(ctx, &ecogridv1.EndStaffRequest{MembershipId: add.GetMembership().GetMembershipId()}); structerr.Code(err) != codes.InvalidArgument {
		t.Errorf("ending without a reason: %v", err)
	}
	if _, err := svc.EndStaff(away, &ecogridv1.EndStaffRequest{MembershipId: add.GetMembership().GetMembershipId(), Reason: "x"}); structerr.Code(err) != codes.NotFound {
		t.Errorf("another county ending the membership: %v", err)
	}
	if _, err := svc.EndStaff(ctx, &ecogridv1.EndStaffRequest{MembershipId: add.GetMembership().GetMembershipId(), Reason: "调任"}); err != nil {
		t.Fatal(err)
	}
	staff, err := svc.ListStaff(ctx, &ecogridv1.ListStaffRequest{DepartmentId: id})
	if err != nil || len(staff.GetMemberships()) != 1 || staff.GetMemberships()[0].GetValidTo() == nil || staff.GetMemberships()[0].GetEndReason() != "调任" {
		t.Fatalf("the ended membership is kept with its end: %v %v", staff, err)
	}
	// Who was on the staff an hour ago still has an answer.
	if _, ok, err := MembershipAt(context.Background(), pool, id, p, time.Now().Add(-time.Hour)); !ok || err != nil {
		t.Errorf("membership an hour ago: %v %v", ok, err)
	}

	if _, err := svc.SetRoute(ctx, &ecogridv1.SetRouteRequest{Route: &ecogridv1.Route{CountyCode: county, Category: "illegal_sand_mining", LeadDepartmentId: id, DeadlineDays: 7}}); err != nil {
		t.Fatal(err)
	}
	routes, err := svc.ListRoutes(ctx, &ecogridv1.ListRoutesRequest{CountyCode: county})
	if err != nil || len(routes.GetRoutes()) != 1 || routes.GetRoutes()[0].GetLeadDepartmentId() != id {
		t.Fatalf("routes: %v %v", routes, err)
	}
	if _, err := svc.ListRoutes(away, &ecogridv1.ListRoutesRequest{CountyCode: county}); structerr.Code(err) != codes.NotFound {
		t.Errorf("another county reading the routes: %v", err)
	}
	tax, err := svc.ListTaxonomy(ctx, &ecogridv1.ListTaxonomyRequest{CountyCode: county})
	if err != nil || len(tax.GetCategories()) < 8 {
		t.Fatalf("taxonomy: %v %v", tax, err)
	}
	if _, err := svc.ListTaxonomy(ctx, &ecogridv1.ListTaxonomyRequest{CountyCode: "13x"}); structerr.Code(err) != codes.InvalidArgument {
		t.Errorf("a malformed county: %v", err)
	}
}
