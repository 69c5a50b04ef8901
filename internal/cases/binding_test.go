package cases

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// The people of the matrix: the case's handler, another inspector of the
// same cell, the township's supervisor and a county officer.
const (
	mHandler    = "0b6f6a64-53f2-4a70-9f0e-1f2b1c0000a1"
	mOther      = "0b6f6a64-53f2-4a70-9f0e-1f2b1c0000a2"
	mSupervisor = "0b6f6a64-53f2-4a70-9f0e-1f2b1c0000a3"
	mOfficer    = "0b6f6a64-53f2-4a70-9f0e-1f2b1c0000a4"
)

var matrixActors = []struct {
	name   string
	caller scope.Caller
}{
	{"handler", scope.Caller{PersonID: mHandler, Grants: []scope.Grant{{Role: scope.RoleInspector, NodeCode: testVillage}}}},
	{"other inspector", scope.Caller{PersonID: mOther, Grants: []scope.Grant{{Role: scope.RoleInspector, NodeCode: testVillage}}}},
	{"supervisor", scope.Caller{PersonID: mSupervisor, Grants: []scope.Grant{{Role: scope.RoleTownshipSupervisor, NodeCode: testTownship}}}},
	{"officer", scope.Caller{PersonID: mOfficer, Grants: []scope.Grant{{Role: scope.RoleCountyOfficer, NodeCode: testCounty}}}},
}

// matrixCase is a case in state s dispatched to mHandler, whose guards
// allow a; the handler rectified it and requested any pending extension.
func matrixCase(s State, a Action) (*Case, Binding) {
	c := caseFor(s, a)
	if c.HandlerID != "" {
		c.HandlerID = mHandler
	}
	if c.PendingExtensionDays > 0 {
		c.PendingExtensionBy = mHandler
	}
	var b Binding
	if s == StateRectified {
		b.RectifiedBy = mHandler
	}
	return c, b
}

// allowedBy is who may take each step on a case of the test village
// (issue 13): the handler's steps are the handler's alone, checks of the
// handler's work are the township's (or the county's), never the handler's.
var allowedBy = map[Action][]string{
	ActionAccept:              {"supervisor", "officer"},
	ActionReject:              {"supervisor", "officer"},
	ActionDispatch:            {"supervisor", "officer"},
	ActionStartWork:           {"handler"},
	ActionSubmitRectification: {"handler"},
	ActionRequestExtension:    {"handler"},
	ActionVerify:              {"other inspector", "supervisor", "officer"},
	ActionClose:               {"supervisor", "officer"},
	ActionReturn:              {"handler", "supervisor", "officer"},
	ActionApproveExtension:    {"supervisor", "officer"},
	ActionDeclineExtension:    {"supervisor", "officer"},
	ActionReopen:              {"supervisor", "officer"},
	ActionReassign:            {"supervisor", "officer"},
	ActionEscalate:            {"officer"},
}

func TestStepByActorMatrix(t *testing.T) {
	for _, tr := range Workflow {
		want, ok := allowedBy[tr.Action]
		if !ok {
			t.Errorf("%s: not in the matrix", tr.Action)
			continue
		}
		for _, s := range tr.From {
			for _, who := range matrixActors {
				c, b := matrixCase(s, tr.Action)
				actor, _, err := Authorize(who.caller, c, tr.Action)
				if err == nil {
					err = Bind(actor, c, tr.Action, b)
				}
				switch allowed := slices.Contains(want, who.name); {
				case allowed && err != nil:
					t.Errorf("%s from %s by %s: refused: %v", tr.Action, s, who.name, err)
				case !allowed && structerr.Code(err) != codes.PermissionDenied:
					t.Errorf("%s from %s by %s: got %v, want PermissionDenied", tr.Action, s, who.name, err)
				}
			}
		}
	}
}

func TestWhoRectifiedCannotVerify(t *testing.T) {
	c, _ := matrixCase(StateRectified, ActionVerify)
	sup := matrixActors[2].caller
	actor, _, err := Authorize(sup, c, ActionVerify)
	if err != nil {
		t.Fatal(err)
	}
	// A supervisor who submitted the rectification themselves (before the
	// handler rule, or as handler) does not check it either.
	err = Bind(actor, c, ActionVerify, Binding{RectifiedBy: mSupervisor})
	if structerr.Code(err) != codes.PermissionDenied {
		t.Fatalf("rectifier verifying: %v", err)
	}
	c.HandlerID = mSupervisor
	if err := Bind(actor, c, ActionVerify, Binding{}); structerr.Code(err) != codes.PermissionDenied {
		t.Fatalf("handler verifying: %v", err)
	}
}

func TestExtensionDecidedByAnotherThanTheRequester(t *testing.T) {
	c, b := matrixCase(StateInProgress, ActionApproveExtension)
	c.PendingExtensionBy = mSupervisor
	actor, _, err := Authorize(matrixActors[2].caller, c, ActionApproveExtension)
	if err != nil {
		t.Fatal(err)
	}
	if err := Bind(actor, c, ActionApproveExtension, b); structerr.Code(err) != codes.PermissionDenied {
		t.Fatalf("requester approving their own extension: %v", err)
	}
}

func TestReturnKeepsHandlerDeadlineAndRectification(t *testing.T) {
	c, _ := matrixCase(StateRectified, ActionReturn)
	now := time.Date(2026, 5, 5, 9, 0, 0, 0, time.UTC)
	c.RectificationNote, c.RectificationPhotos, c.RectifiedAt = "swept", []string{"ab"}, &now
	deadline := *c.Deadline
	tr, _ := Rule(ActionReturn)
	details, err := Apply(c, tr, Actor{PersonID: mSupervisor, Role: "township_supervisor", NodeCode: testTownship},
		Input{Note: "the waste is still behind the wall"}, DefaultDeadlineRules["SEVERITY_NORMAL"], now)
	if err != nil {
		t.Fatal(err)
	}
	if details["previous_handler_id"] != mHandler || details["previous_deadline"] != deadline.UTC() ||
		details["next_step"] != string(ActionDispatch) || details["returned_rectification"] == nil {
		t.Fatalf("details %v", details)
	}
	if c.State != StateAccepted || c.HandlerID != "" || !slices.Contains(NextSteps(c), ActionDispatch) {
		t.Fatalf("after return: %s handler %q next %v", c.State, c.HandlerID, NextSteps(c))
	}
}

// TestStepsForOffersWhatTheMatrixAllows: the steps a case shows its caller
// are exactly those of the matrix for that caller, so the console never
// offers the handler the verification of their own rectification
// (issue 20) nor hides a step the server would take.
func TestStepsForOffersWhatTheMatrixAllows(t *testing.T) {
	for _, tr := range Workflow {
		for _, s := range tr.From {
			for _, who := range matrixActors {
				c, b := matrixCase(s, tr.Action)
				offered := slices.Contains(StepsFor(who.caller, c, b), tr.Action)
				if want := slices.Contains(allowedBy[tr.Action], who.name); offered != want {
					t.Errorf("%s on a %s case, %s: offered %v, matrix says %v", tr.Action, s, who.name, offered, want)
				}
			}
		}
	}
	c, b := matrixCase(StateRectified, ActionVerify)
	if got := StepsFor(matrixActors[0].caller, c, b); slices.Contains(got, ActionVerify) {
		t.Errorf("the handler is offered verify on their own rectification: %v", got)
	}
	outsider := scope.Caller{PersonID: mOther, Grants: []scope.Grant{{Role: scope.RoleCountyOfficer, NodeCode: "999999"}}}
	if got := StepsFor(outsider, c, b); len(got) != 0 {
		t.Errorf("a caller outside the case is offered %v", got)
	}
	acc, _ := matrixCase(StateAccepted, ActionDispatch)
	sup := StepsFor(matrixActors[2].caller, acc, Binding{})
	if !slices.Contains(sup, ActionTransfer) || !slices.Contains(sup, ActionOpenJoint) {
		t.Errorf("the township supervisor is not offered transfer and joint handling on an accepted case: %v", sup)
	}
	if got := StepsFor(matrixActors[0].caller, acc, Binding{}); slices.Contains(got, ActionTransfer) {
		t.Errorf("an inspector is offered transfer: %v", got)
	}
}
