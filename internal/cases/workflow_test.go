package cases

import (
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

const (
	testCounty   = "130123"
	testTownship = "130123101"
	testVillage  = "130123101201"
)

// homeNode is where each role's grant sits when it covers the test case.
var homeNode = map[scope.Role]string{
	scope.RoleInspector:          testVillage,
	scope.RoleGridChief:          testVillage,
	scope.RoleTownshipSupervisor: testTownship,
	scope.RoleCountyOfficer:      testCounty,
}

// awayNode is a node of the same level that does not cover the test case.
var awayNode = map[scope.Role]string{
	scope.RoleInspector:          "130123101202",
	scope.RoleGridChief:          "130123102201",
	scope.RoleTownshipSupervisor: "130123102",
	scope.RoleCountyOfficer:      "130124",
}

func callerAs(role scope.Role, node string) scope.Caller {
	return scope.Caller{PersonID: "5b0c33b4-6a7e-4c1e-9a53-2d1f0c6b8e01", Grants: []scope.Grant{{Role: role, NodeCode: node}}}
}

var admin = scope.Caller{PersonID: "5b0c33b4-6a7e-4c1e-9a53-2d1f0c6b8e02", Grants: []scope.Grant{{Role: scope.RoleAdmin}}}

// caseFor returns a case in state s whose guards allow action a.
func caseFor(s State, a Action) *Case {
	now := time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)
	dl := now.Add(72 * time.Hour)
	c := &Case{ID: "c1", CountyCode: testCounty, TownshipCode: testTownship, VillageCode: testVillage,
		NodeCode: testVillage, Severity: "SEVERITY_NORMAL", State: s}
	if s == StateDispatched || s == StateInProgress || s == StateRectified {
		c.DispatchedAt, c.Deadline, c.HandlerID = &now, &dl, "h1"
	}
	if a == ActionApproveExtension || a == ActionDeclineExtension {
		c.PendingExtensionDays = 2
	}
	return c
}

func TestEveryIllegalTransitionIsRefusedWithNextSteps(t *testing.T) {
	for _, s := range AllStates {
		for _, tr := range Workflow {
			if slices.Contains(tr.From, s) {
				continue
			}
			c := caseFor(s, tr.Action)
			_, _, err := Authorize(admin, c, tr.Action)
			if structerr.Code(err) != codes.FailedPrecondition {
				t.Errorf("%s from %s: got %v, want FailedPrecondition", tr.Action, s, err)
				continue
			}
			msg := err.Error()
			// The message reads as a sentence whatever the step and state
			// ("cannot submit rectification evidence while the case is
			// rectified"), not "… evidence a case that is rectified".
			if want := "cannot " + tr.What + " while the case is " + string(s) + ";"; !strings.HasPrefix(msg, want) {
				t.Errorf("%s from %s: message %q, want it to start %q", tr.Action, s, msg, want)
			}
			steps := NextSteps(c)
			if len(steps) == 0 && !strings.Contains(msg, "no further steps") {
				t.Errorf("%s from %s: message %q does not say no step is possible", tr.Action, s, msg)
			}
			for _, st := range steps {
				if !strings.Contains(msg, string(st)) {
					t.Errorf("%s from %s: message %q does not list allowed step %s", tr.Action, s, msg, st)
				}
			}
		}
	}
}

func TestGuardsRefuseWithFailedPrecondition(t *testing.T) {
	for _, a := range []Action{ActionApproveExtension, ActionDeclineExtension} {
		c := caseFor(StateInProgress, ActionStartWork) // no pending request
		if _, _, err := Authorize(admin, c, a); structerr.Code(err) != codes.FailedPrecondition {
			t.Errorf("%s with nothing pending: %v", a, err)
		}
	}
	c := caseFor(StateInProgress, ActionApproveExtension) // one pending already
	if _, _, err := Authorize(admin, c, ActionRequestExtension); structerr.Code(err) != codes.FailedPrecondition {
		t.Errorf("second extension request: %v", err)
	}
	c = caseFor(StateDispatched, ActionEscalate)
	now := time.Now()
	c.EscalatedAt = &now
	if _, _, err := Authorize(admin, c, ActionEscalate); structerr.Code(err) != codes.FailedPrecondition {
		t.Errorf("escalating twice: %v", err)
	}
}

func TestEveryLegalTransitionChecksRoleAndScope(t *testing.T) {
	for _, tr := range Workflow {
		for _, s := range tr.From {
			for _, role := range rolesButAdmin() {
				c := caseFor(s, tr.Action)
				actor, _, err := Authorize(callerAs(role, homeNode[role]), c, tr.Action)
				allowed := slices.Contains(tr.Roles, role)
				switch {
				case allowed && err != nil:
					t.Errorf("%s from %s by %s in scope: refused: %v", tr.Action, s, role, err)
				case allowed && (actor.Role != string(role) || actor.NodeCode != homeNode[role]):
					t.Errorf("%s from %s by %s: recorded as %+v", tr.Action, s, role, actor)
				case !allowed && structerr.Code(err) != codes.PermissionDenied:
					t.Errorf("%s from %s by %s in scope: got %v, want PermissionDenied", tr.Action, s, role, err)
				}
				// The same role outside the case's grid subtree never sees it.
				_, _, err = Authorize(callerAs(role, awayNode[role]), c, tr.Action)
				if structerr.Code(err) != codes.NotFound {
					t.Errorf("%s from %s by %s out of scope: got %v, want NotFound", tr.Action, s, role, err)
				}
			}
			if _, _, err := Authorize(admin, caseFor(s, tr.Action), tr.Action); err != nil {
				t.Errorf("%s from %s by admin: %v", tr.Action, s, err)
			}
		}
	}
}

func rolesButAdmin() []scope.Role {
	return slices.DeleteFunc(slices.Clone(scope.AllRoles), func(r scope.Role) bool { return r == scope.RoleAdmin })
}

func TestDeadlinesBySeverity(t *testing.T) {
	// 2026-05-04 09:00 UTC is 17:00 in China; "same day" ends 23:59:59 CST = 15:59:59 UTC.
	at := time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)
	if got, want := DefaultDeadlineRules["SEVERITY_MINOR"].Deadline(at), time.Date(2026, 5, 4, 15, 59, 59, 0, time.UTC); !got.Equal(want) {
		t.Errorf("minor: %v, want %v", got, want)
	}
	// 20:00 UTC is already the next day in China.
	late := time.Date(2026, 5, 4, 20, 0, 0, 0, time.UTC)
	if got, want := DefaultDeadlineRules["SEVERITY_MINOR"].Deadline(late), time.Date(2026, 5, 5, 15, 59, 59, 0, time.UTC); !got.Equal(want) {
		t.Errorf("minor late evening: %v, want %v", got, want)
	}
	if got := DefaultDeadlineRules["SEVERITY_NORMAL"].Deadline(at); !got.Equal(at.Add(72 * time.Hour)) {
		t.Errorf("normal: %v", got)
	}
	if got := DefaultDeadlineRules["SEVERITY_SERIOUS"].Deadline(at); !got.Equal(at.Add(7 * 24 * time.Hour)) {
		t.Errorf("serious: %v", got)
	}
}

func TestLifecycleAndExtensionLimit(t *testing.T) {
	rule := DefaultDeadlineRules["SEVERITY_SERIOUS"]
	now := time.Date(2026, 5, 4, 1, 0, 0, 0, time.UTC)
	c := &Case{ID: "c1", CountyCode: testCounty, TownshipCode: testTownship, VillageCode: testVillage,
		NodeCode: testVillage, Severity: "SEVERITY_SERIOUS", State: StateReported}
	sup := callerAs(scope.RoleTownshipSupervisor, testTownship)
	insp := callerAs(scope.RoleInspector, testVillage)
	step := func(who scope.Caller, a Action, in Input) error {
		t.Helper()
		actor, tr, err := Authorize(who, c, a)
		if err != nil {
			return err
		}
		_, err = Apply(c, tr, actor, in, rule, now)
		return err
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(step(sup, ActionAccept, Input{}))
	if err := step(sup, ActionDispatch, Input{}); structerr.Code(err) != codes.InvalidArgument {
		t.Fatalf("dispatch without handler: %v", err)
	}
	tooLate := now.Add(8 * 24 * time.Hour)
	if err := step(sup, ActionDispatch, Input{HandlerID: "h1", Deadline: &tooLate}); structerr.Code(err) != codes.InvalidArgument {
		t.Fatalf("dispatch past the severity deadline: %v", err)
	}
	must(step(sup, ActionDispatch, Input{HandlerID: "h1"}))
	if c.State != StateDispatched || !c.Deadline.Equal(now.Add(7*24*time.Hour)) {
		t.Fatalf("after dispatch: %s deadline %v", c.State, c.Deadline)
	}
	must(step(insp, ActionStartWork, Input{}))
	// 7 + 9 days > 15: refused; 7 + 8 = 15: allowed.
	if err := step(insp, ActionRequestExtension, Input{Note: "rain", ExtensionDays: 9}); structerr.Code(err) != codes.FailedPrecondition {
		t.Fatalf("extension past 15 days: %v", err)
	}
	must(step(insp, ActionRequestExtension, Input{Note: "rain", ExtensionDays: 8}))
	must(step(sup, ActionApproveExtension, Input{}))
	if !c.Deadline.Equal(now.Add(15*24*time.Hour)) || c.ExtensionDays != 8 || c.PendingExtensionDays != 0 {
		t.Fatalf("after approval: deadline %v ext %d pending %d", c.Deadline, c.ExtensionDays, c.PendingExtensionDays)
	}
	if err := step(insp, ActionRequestExtension, Input{Note: "more rain", ExtensionDays: 1}); structerr.Code(err) != codes.FailedPrecondition {
		t.Fatalf("extension beyond the limit after approval: %v", err)
	}
	if err := step(insp, ActionSubmitRectification, Input{Note: "cleared"}); structerr.Code(err) != codes.InvalidArgument {
		t.Fatalf("rectification without photos: %v", err)
	}
	if err := step(insp, ActionSubmitRectification, Input{Note: "cleared", Photos: []string{"abc"}}); structerr.Code(err) != codes.InvalidArgument {
		t.Fatalf("rectification with a bad hash: %v", err)
	}
	photo := strings.Repeat("ab", 32)
	must(step(insp, ActionSubmitRectification, Input{Note: "cleared", Photos: []string{photo, strings.ToUpper(photo)}}))
	if len(c.RectificationPhotos) != 1 {
		t.Fatalf("photos %v", c.RectificationPhotos)
	}
	// Verification is the township's (issue 13); a handler who is also a
	// supervisor still cannot verify their own work.
	handler := callerAs(scope.RoleTownshipSupervisor, testTownship)
	handler.PersonID = c.HandlerID
	if err := step(handler, ActionVerify, Input{}); structerr.Code(err) != codes.FailedPrecondition {
		t.Fatalf("handler verifying their own work: %v", err)
	}
	must(step(sup, ActionVerify, Input{}))
	must(step(sup, ActionClose, Input{}))
	if err := step(sup, ActionReopen, Input{}); structerr.Code(err) != codes.InvalidArgument {
		t.Fatalf("reopen without reason: %v", err)
	}
	must(step(sup, ActionReopen, Input{Note: "dumping again"}))
	if c.State != StateAccepted || c.ReopenCount != 1 || c.HandlerID != "" || c.Deadline != nil || c.ClosedAt != nil {
		t.Fatalf("after reopen: %+v", c)
	}
}

func TestOverdueDays(t *testing.T) {
	dl := time.Date(2026, 5, 4, 0, 0, 0, 0, time.UTC)
	c := &Case{State: StateInProgress, Deadline: &dl}
	if c.Overdue(dl) || c.OverdueDays(dl) != 0 {
		t.Fatal("overdue at the deadline itself")
	}
	if !c.Overdue(dl.Add(time.Hour)) || c.OverdueDays(dl.Add(time.Hour)) != 1 || c.OverdueDays(dl.Add(49*time.Hour)) != 3 {
		t.Fatalf("overdue days %d %d", c.OverdueDays(dl.Add(time.Hour)), c.OverdueDays(dl.Add(49*time.Hour)))
	}
	r := dl.Add(30 * time.Hour)
	c.State, c.RectifiedAt = StateClosed, &r
	if c.Overdue(dl.Add(100*time.Hour)) || c.OverdueDays(dl.Add(100*time.Hour)) != 2 {
		t.Fatalf("closed late case: overdue=%v days=%d", c.Overdue(dl.Add(100*time.Hour)), c.OverdueDays(dl.Add(100*time.Hour)))
	}
}
