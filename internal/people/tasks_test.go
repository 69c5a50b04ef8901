package people_test

import (
	"context"
	"testing"
	"time"

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

// An assignment carries structured tasks (a patrol quota per week) that
// compliance reads; a transfer that names no tasks keeps the post's tasks,
// free text and structured; the old free-text tasks alone still work
// (issue 14: tasks were free text nothing read, and a transfer dropped them).
func TestAssignmentTasksAreStructuredAndSurviveATransfer(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	g := peopletest.InsertGrid(t, pool)
	svc := people.NewService(pool, grid.NewStore(pool, grid.Config{}), nil, peopletest.Hasher, nil)
	officer := peopletest.AddMember(t, pool, g[peopletest.CountyA], scope.RoleCountyOfficer, "县网格办 王", "")
	as := scope.NewContext(ctx, officer.Caller())
	p, _, err := people.NewStore(pool, nil).CreatePerson(ctx, people.SystemActor, people.Person{ID: uuid.NewString(), CountyCode: peopletest.CountyA, Name: "网格员 李"})
	if err != nil {
		t.Fatal(err)
	}
	quota := []*ecogridv1.GridTask{{Kind: "patrol", Count: 3, Period: ecogridv1.TaskPeriod_TASK_PERIOD_WEEK, MinMinutes: 20}}
	started, err := svc.StartAssignment(as, &ecogridv1.StartAssignmentRequest{AssignmentId: uuid.NewString(), PersonId: p.ID,
		NodeId: peopletest.VillageA1a, Role: ecogridv1.Role_ROLE_INSPECTOR, Tasks: []string{"巡查 每周3次"}, TaskRules: quota})
	if err != nil {
		t.Fatal(err)
	}
	if r := started.GetAssignment().GetTaskRules(); len(r) != 1 || r[0].GetCount() != 3 || r[0].GetPeriod() != ecogridv1.TaskPeriod_TASK_PERIOD_WEEK || r[0].GetMinMinutes() != 20 {
		t.Fatalf("started with task rules %v", r)
	}
	// Compliance reads the quota through people's Go API.
	ins, err := people.InspectorsUnder(ctx, pool, peopletest.VillageA1a, time.Now().Add(time.Minute))
	if err != nil || len(ins) != 1 || len(ins[0].TaskRules) != 1 || ins[0].TaskRules[0].Count != 3 || ins[0].TaskRules[0].Period != grid.PeriodWeek {
		t.Fatalf("InspectorsUnder = %+v, %v", ins, err)
	}
	moved, err := svc.TransferAssignment(as, &ecogridv1.TransferAssignmentRequest{AssignmentId: started.GetAssignment().GetId(),
		NewAssignmentId: uuid.NewString(), NodeId: peopletest.VillageA1b, Reason: "调岗"})
	if err != nil {
		t.Fatal(err)
	}
	if a := moved.GetStarted(); len(a.GetTasks()) != 1 || a.GetTasks()[0] != "巡查 每周3次" || len(a.GetTaskRules()) != 1 || a.GetTaskRules()[0].GetCount() != 3 {
		t.Fatalf("transfer dropped the tasks: %v / %v", a.GetTasks(), a.GetTaskRules())
	}
	hist, err := svc.ListAssignmentHistory(as, &ecogridv1.ListAssignmentHistoryRequest{PersonId: p.ID})
	if err != nil || len(hist.GetAssignments()) != 2 || len(hist.GetAssignments()[1].GetTaskRules()) != 1 {
		t.Fatalf("history %v, %v", hist.GetAssignments(), err)
	}
	// A transfer that names new tasks replaces them.
	again, err := svc.TransferAssignment(as, &ecogridv1.TransferAssignmentRequest{AssignmentId: moved.GetStarted().GetId(),
		NewAssignmentId: uuid.NewString(), NodeId: peopletest.VillageA1a, Reason: "回原岗", Tasks: []string{"保洁"}})
	if err != nil || len(again.GetStarted().GetTaskRules()) != 0 || again.GetStarted().GetTasks()[0] != "保洁" {
		t.Fatalf("transfer with new tasks: %v, %v", again.GetStarted(), err)
	}
	// A structured task grid would refuse on a node is refused here too.
	_, err = svc.StartAssignment(as, &ecogridv1.StartAssignmentRequest{AssignmentId: uuid.NewString(), PersonId: p.ID,
		NodeId: peopletest.VillageA2a, Role: ecogridv1.Role_ROLE_INSPECTOR, TaskRules: []*ecogridv1.GridTask{{Kind: "patrol", Count: 0}}})
	if structerr.Code(err) != codes.InvalidArgument {
		t.Fatalf("a task of count 0: %v", err)
	}
}
