package auth_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/accounts"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
)

// rankActs are the mutating PeopleService calls that act on an existing
// person (their record, account or assignments), made on target.
var rankActs = map[string]func(h *harness, ctx context.Context, target peopletest.Member) error{
	"UpdatePerson": func(h *harness, ctx context.Context, m peopletest.Member) error {
		name := "renamed"
		_, err := h.people.UpdatePerson(ctx, &ecogridv1.UpdatePersonRequest{PersonId: m.Person.ID, Name: &name})
		return err
	},
	"UnlockAccount": func(h *harness, ctx context.Context, m peopletest.Member) error {
		_, err := h.people.UnlockAccount(ctx, &ecogridv1.UnlockAccountRequest{Username: m.Username})
		return err
	},
	"ResetPassword": func(h *harness, ctx context.Context, m peopletest.Member) error {
		_, err := h.people.ResetPassword(ctx, &ecogridv1.ResetPasswordRequest{Username: m.Username})
		return err
	},
	"StartAssignment": func(h *harness, ctx context.Context, m peopletest.Member) error {
		_, err := h.people.StartAssignment(ctx, &ecogridv1.StartAssignmentRequest{AssignmentId: uuid.NewString(), PersonId: m.Person.ID,
			NodeId: h.grid[homeVillage].ID, Role: ecogridv1.Role_ROLE_INSPECTOR})
		return err
	},
	"EndAssignment": func(h *harness, ctx context.Context, m peopletest.Member) error {
		_, err := h.people.EndAssignment(ctx, &ecogridv1.EndAssignmentRequest{AssignmentId: m.Assignment.ID, Reason: "rank"})
		return err
	},
	"TransferAssignment": func(h *harness, ctx context.Context, m peopletest.Member) error {
		_, err := h.people.TransferAssignment(ctx, &ecogridv1.TransferAssignmentRequest{AssignmentId: m.Assignment.ID,
			NewAssignmentId: uuid.NewString(), NodeId: h.grid[homeVillage].ID, Role: ecogridv1.Role_ROLE_INSPECTOR, Reason: "demotion"})
		return err
	},
}

// TestNobodyActsOnAnEqualOrHigherRank: a county officer reset the admin's
// password and logged in as admin, created a login of their choosing for a
// person holding the admin role and edited the admin's record. Every role
// but admin now gets PermissionDenied for every act on a person, in its own
// scope, who holds the same role or the admin role.
func TestNobodyActsOnAnEqualOrHigherRank(t *testing.T) {
	h := newHarness(t, accounts.DefaultLimits)
	peerNode := map[scope.Role]string{
		scope.RoleInspector: homeVillage, scope.RoleGridChief: homeVillage,
		scope.RoleTownshipSupervisor: peopletest.TownshipA1, scope.RoleCountyOfficer: peopletest.CountyA,
	}
	for _, role := range []scope.Role{scope.RoleInspector, scope.RoleGridChief, scope.RoleTownshipSupervisor, scope.RoleCountyOfficer} {
		me := h.callers[role]
		for act, call := range rankActs {
			for _, higher := range []scope.Role{role, scope.RoleAdmin} {
				node := peerNode[role]
				if higher == scope.RoleAdmin {
					node = peopletest.CountyA
				}
				target := peopletest.AddMember(t, h.pool, h.grid[node], higher, "peer "+string(higher), shortName())
				err := call(h, h.session(t, me), target)
				want := codes.PermissionDenied
				if role == scope.RoleTownshipSupervisor && higher == scope.RoleAdmin && (act == "EndAssignment" || act == "TransferAssignment") {
					want = codes.NotFound // an assignment above the caller's subtree is out of sight
				}
				if status.Code(err) != want {
					t.Errorf("%s as %s on a %s = %v; want %v", act, role, higher, err, want)
				}
			}
		}
		// A login for a person holding the admin role, with a chosen password.
		adminNoLogin := peopletest.AddMember(t, h.pool, h.grid[peopletest.CountyA], scope.RoleAdmin, "admin without login", "")
		_, err := h.people.CreateAccount(h.session(t, me), &ecogridv1.CreateAccountRequest{AccountId: uuid.NewString(),
			PersonId: adminNoLogin.Person.ID, Username: shortName(), Password: "a password of my choosing"})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("CreateAccount as %s for an admin = %v; want PermissionDenied", role, err)
		}
	}
	// The report itself: {"username":"admin"} as the county officer.
	_, err := h.people.ResetPassword(h.session(t, h.callers[scope.RoleCountyOfficer]), &ecogridv1.ResetPasswordRequest{Username: h.callers[scope.RoleAdmin].Username})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("county officer resets the admin's password: %v; want PermissionDenied", err)
	}
	if _, err := h.login(h.callers[scope.RoleAdmin].Username, h.callers[scope.RoleAdmin].Password); err != nil {
		t.Fatalf("the admin's own password stopped working: %v", err)
	}
	// Below their rank the county office still manages people.
	for act, call := range rankActs {
		insp := peopletest.AddMember(t, h.pool, h.grid[peopletest.VillageA1b], scope.RoleInspector, "inspector", shortName())
		if err := call(h, h.session(t, h.callers[scope.RoleCountyOfficer]), insp); err != nil {
			t.Errorf("%s as county officer on an inspector: %v", act, err)
		}
	}
}

// TestLastAdminStays: the only administrator's assignment can be neither
// ended nor transferred away; with a second administrator it can.
func TestLastAdminStays(t *testing.T) {
	h := newHarness(t, accounts.DefaultLimits)
	adm := h.callers[scope.RoleAdmin]
	ctx := h.session(t, adm)
	for act, call := range map[string]func(h *harness, ctx context.Context, target peopletest.Member) error{
		"EndAssignment": rankActs["EndAssignment"], "TransferAssignment": rankActs["TransferAssignment"],
	} {
		if err := call(h, ctx, adm); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("%s of the last admin = %v; want FailedPrecondition", act, err)
		}
	}
	second := peopletest.AddMember(t, h.pool, h.grid[peopletest.CountyA], scope.RoleAdmin, "second admin", shortName())
	if err := rankActs["EndAssignment"](h, ctx, second); err != nil {
		t.Fatalf("ending a second admin's assignment: %v", err)
	}
	if err := rankActs["EndAssignment"](h, h.session(t, adm), adm); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("ending the last admin again = %v; want FailedPrecondition", err)
	}
}
