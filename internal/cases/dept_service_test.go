package cases

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/auth"
	"ecogrid/internal/scope"
)

// TestDepartmentRPCAuthorityMatrix is the authority matrix of the
// department steps of CaseService: for each RPC, its auth rule, who sees
// nothing (NotFound: another township, a department without a part in
// the case or not covering it, a person acting for a department they are
// not in), who may not (PermissionDenied), and who succeeds — walking one
// case through the RPCs.
func TestDepartmentRPCAuthorityMatrix(t *testing.T) {
	d := newCaseDB(t)
	w := newDeptWorld(t, d)
	ev := violation(testVillage)
	ev.Category = sandMining()
	id := d.open(ev)
	if _, err := d.tracker.Transition(context.Background(), supervisor, id, uuid.NewString(), ActionAccept, Input{}); err != nil {
		t.Fatal(err)
	}
	rules := map[string]auth.Rule{}
	for _, m := range []string{ecogridv1.CaseService_TransferCase_FullMethodName, ecogridv1.CaseService_OpenJointHandling_FullMethodName,
		ecogridv1.CaseService_AcceptTransfer_FullMethodName, ecogridv1.CaseService_RefuseTransfer_FullMethodName,
		ecogridv1.CaseService_CompleteJointTask_FullMethodName, ecogridv1.CaseService_VerifyDepartmentHandling_FullMethodName} {
		r, ok := auth.RuleFor(m)
		if !ok {
			t.Fatalf("%s has no policy rule", m)
		}
		rules[m] = r
	}
	// The township's steps are role-gated; department staff pass the gate and meet the tracker.
	deptStaff := scope.Caller{PersonID: w.waterStaff.PersonID}
	for m, r := range rules {
		township := strings.HasSuffix(m, "/TransferCase") || strings.HasSuffix(m, "/OpenJointHandling")
		if got := r.Allows(deptStaff); got == township {
			t.Errorf("%s: department staff allowed by the gate = %v", m, got)
		}
		if !r.Allows(supervisor) {
			t.Errorf("%s: the township supervisor is refused by the gate", m)
		}
	}
	type try struct {
		who  scope.Caller
		dept string
		want codes.Code
	}
	sum := strings.Repeat("b", 64)
	uploadPhoto(t, d.pool, w.waterStaff.PersonID, sum)
	uploadPhoto(t, d.pool, w.ecoStaff.PersonID, strings.Repeat("d", 64))
	steps := []struct {
		name  string
		tries []try
		call  func(ctx context.Context, dept string) error
	}{
		{"TransferCase", []try{{otherSupervisor, w.water.ID, codes.NotFound}, {inspector, w.water.ID, codes.PermissionDenied}, {supervisor, w.water.ID, codes.OK}},
			func(ctx context.Context, dept string) error {
				_, err := d.svc.TransferCase(ctx, &ecogridv1.TransferCaseRequest{CaseId: id, RequestId: uuid.NewString(), DepartmentId: dept})
				return err
			}},
		{"RefuseTransfer", []try{{w.forestStaff, w.forest.ID, codes.NotFound}, {w.urbanStaff, w.water.ID, codes.NotFound}, {w.ecoStaff, w.eco.ID, codes.NotFound}},
			func(ctx context.Context, dept string) error {
				_, err := d.svc.RefuseTransfer(ctx, &ecogridv1.RefuseTransferRequest{CaseId: id, RequestId: uuid.NewString(), DepartmentId: dept, Reason: "不归我们"})
				return err
			}},
		{"AcceptTransfer", []try{{w.forestStaff, w.forest.ID, codes.NotFound}, {supervisor, w.water.ID, codes.NotFound}, {w.waterStaff, w.water.ID, codes.OK}},
			func(ctx context.Context, dept string) error {
				_, err := d.svc.AcceptTransfer(ctx, &ecogridv1.AcceptTransferRequest{CaseId: id, RequestId: uuid.NewString(), DepartmentId: dept})
				return err
			}},
		{"OpenJointHandling", []try{{otherSupervisor, "", codes.NotFound}, {inspector, "", codes.PermissionDenied}, {supervisor, "", codes.OK}},
			func(ctx context.Context, _ string) error {
				_, err := d.svc.OpenJointHandling(ctx, &ecogridv1.OpenJointHandlingRequest{CaseId: id, RequestId: uuid.NewString(),
					CooperatingDepartmentIds: []string{w.eco.ID}, Tasks: []*ecogridv1.JointTask{{DepartmentId: w.eco.ID, Task: "水质采样"}}})
				return err
			}},
		{"CompleteJointTask", []try{{w.urbanStaff, w.urban.ID, codes.NotFound}, {w.forestStaff, w.forest.ID, codes.NotFound}, {w.waterStaff, w.water.ID, codes.OK}},
			func(ctx context.Context, dept string) error {
				_, err := d.svc.CompleteJointTask(ctx, &ecogridv1.CompleteJointTaskRequest{CaseId: id, RequestId: uuid.NewString(), DepartmentId: dept,
					Note: "已整改", PhotoSha256: []string{sum}})
				return err
			}},
		{"VerifyDepartmentHandling (joint task open)", []try{{w.urbanStaff, w.urban.ID, codes.NotFound}, {w.ecoStaff, w.eco.ID, codes.PermissionDenied}, {w.waterStaff, w.water.ID, codes.FailedPrecondition}},
			func(ctx context.Context, dept string) error {
				_, err := d.svc.VerifyDepartmentHandling(ctx, &ecogridv1.VerifyDepartmentHandlingRequest{CaseId: id, RequestId: uuid.NewString(), DepartmentId: dept, Note: "核查"})
				return err
			}},
		{"CompleteJointTask (eco)", []try{{w.ecoStaff, w.eco.ID, codes.OK}},
			func(ctx context.Context, dept string) error {
				_, err := d.svc.CompleteJointTask(ctx, &ecogridv1.CompleteJointTaskRequest{CaseId: id, RequestId: uuid.NewString(), DepartmentId: dept,
					Note: "采样合格", PhotoSha256: []string{strings.Repeat("d", 64)}})
				return err
			}},
		{"VerifyDepartmentHandling", []try{{w.waterStaff, w.water.ID, codes.OK}},
			func(ctx context.Context, dept string) error {
				_, err := d.svc.VerifyDepartmentHandling(ctx, &ecogridv1.VerifyDepartmentHandlingRequest{CaseId: id, RequestId: uuid.NewString(), DepartmentId: dept, Note: "核查通过"})
				return err
			}},
	}
	for _, st := range steps {
		for _, tr := range st.tries {
			if got := code(st.call(as(tr.who), tr.dept)); got != tr.want {
				t.Errorf("%s by %s for %s: %v, want %v", st.name, tr.who.PersonID, tr.dept, got, tr.want)
			}
		}
	}
	got, err := d.svc.GetCase(as(supervisor), &ecogridv1.GetCaseRequest{CaseId: id})
	if err != nil || got.GetCase().GetState() != ecogridv1.CaseState_CASE_STATE_CLOSED {
		t.Fatalf("after the walk: %v %v", got.GetCase().GetState(), err)
	}
}
