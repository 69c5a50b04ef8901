package people_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/grid"
	"ecogrid/internal/people"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// A county office places people by the node's official code, as written on
// its paperwork (issue 14); the UUID keeps working. An unknown code is
// NotFound, a malformed one InvalidArgument.
func TestStartAssignmentByNodeCode(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	g := peopletest.InsertGrid(t, pool)
	svc := people.NewService(pool, grid.NewStore(pool, grid.Config{}), nil, peopletest.Hasher, nil)
	officer := peopletest.AddMember(t, pool, g[peopletest.CountyA], scope.RoleCountyOfficer, "县网格办 王", "")
	p, _, err := people.NewStore(pool, nil).CreatePerson(ctx, people.SystemActor, people.Person{ID: uuid.NewString(), CountyCode: peopletest.CountyA, Name: "新网格员"})
	if err != nil {
		t.Fatal(err)
	}
	as := scope.NewContext(ctx, officer.Caller())
	start := func(node string) (*ecogridv1.StartAssignmentResponse, error) {
		return svc.StartAssignment(as, &ecogridv1.StartAssignmentRequest{AssignmentId: uuid.NewString(), PersonId: p.ID,
			NodeId: node, Role: ecogridv1.Role_ROLE_INSPECTOR, Tasks: []string{"patrol weekly"}})
	}
	resp, err := start(peopletest.VillageA1a)
	if err != nil || resp.GetAssignment().GetNodeId() != g[peopletest.VillageA1a].ID || resp.GetAssignment().GetNodeCode() != peopletest.VillageA1a {
		t.Fatalf("StartAssignment by code = %+v, %v; want the node's id and code", resp.GetAssignment(), err)
	}
	if resp, err := start(g[peopletest.VillageA1b].ID); err != nil || resp.GetAssignment().GetNodeCode() != peopletest.VillageA1b {
		t.Fatalf("StartAssignment by UUID = %+v, %v", resp.GetAssignment(), err)
	}
	if _, err := start("130123101299"); structerr.Code(err) != codes.NotFound {
		t.Fatalf("unknown code = %v; want NotFound", err)
	}
	if _, err := start("1301231012"); structerr.Code(err) != codes.InvalidArgument {
		t.Fatalf("malformed code = %v; want InvalidArgument", err)
	}
}
