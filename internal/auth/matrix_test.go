package auth_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/accounts"
	"ecogrid/internal/auth"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
)

// homeVillage holds the objects every test caller may see; awayVillage is,
// per role, a village outside the caller's scope: the neighbouring village
// for the village-level roles (so two inspectors try each other's ids), the
// other township's village for the supervisor, the other county for the
// county office (and for the administrator, who sees everything).
const homeVillage = peopletest.VillageA1a

var awayVillage = map[scope.Role]string{
	scope.RoleInspector:          peopletest.VillageA1b,
	scope.RoleGridChief:          peopletest.VillageA1b,
	scope.RoleTownshipSupervisor: peopletest.VillageA2a,
	scope.RoleCountyOfficer:      peopletest.VillageB1a,
	scope.RoleAdmin:              peopletest.VillageB1a,
}

// matrixRow makes one RPC as the caller in ctx about the objects of a
// village. noObject marks RPCs that touch no scoped object.
type matrixRow struct {
	noObject bool
	// filtered RPCs answer a list narrowed to the caller's scope (OK, with
	// nothing from outside it) instead of NotFound; the call checks that.
	filtered bool
	call     func(t *testing.T, h *harness, ctx context.Context, me peopletest.Member, village string) error
}

// matrixIndicator is the external indicator the assessment rows define.
var matrixIndicator = &ecogridv1.Indicator{Code: "water_quality", Name: "水质达标率", Unit: "%", Direction: "higher", Best: 100, Worst: 60, Source: "external"}

// recordMatrixValue defines the external indicator (errors ignored: the
// caller may not) and enters a value for v's village as the caller.
func recordMatrixValue(ctx context.Context, h *harness, v, id string) (*ecogridv1.RecordIndicatorValueResponse, error) {
	_, _ = h.assess.DefineIndicator(ctx, &ecogridv1.DefineIndicatorRequest{CountyCode: v[:6], Indicator: matrixIndicator})
	return h.assess.RecordIndicatorValue(ctx, &ecogridv1.RecordIndicatorValueRequest{ValueId: id, NodeCode: v, Period: "2025-12",
		Indicator: "water_quality", Value: 90, EvidenceNote: "县环境监测站月报", AttachmentName: "m.txt", Attachment: []byte("evidence")})
}

func shortName() string { return "u" + uuid.NewString()[:8] }

// matrix has a row for every non-public RPC of the services the harness
// serves, keyed by generated full method name. Other services add their
// rows (and register their service in the harness) the same way.
var matrix = map[string]matrixRow{
	ecogridv1.PeopleService_CreatePerson_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.people.CreatePerson(ctx, &ecogridv1.CreatePersonRequest{PersonId: uuid.NewString(), CountyCode: v[:6], Name: "new person"})
		return err
	}},
	ecogridv1.PeopleService_GetPerson_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.people.GetPerson(ctx, &ecogridv1.GetPersonRequest{PersonId: h.residents[v].Person.ID})
		return err
	}},
	ecogridv1.PeopleService_ListPersons_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		resp, err := h.people.ListPersons(ctx, &ecogridv1.ListPersonsRequest{NodeCode: v})
		if err == nil && !slices.ContainsFunc(resp.GetPersons(), func(p *ecogridv1.Person) bool { return p.GetId() == h.residents[v].Person.ID }) {
			t.Errorf("ListPersons(%s) misses the village's inspector", v)
		}
		return err
	}},
	ecogridv1.PeopleService_CreateAccount_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		p := h.freshPerson(t, v[:6])
		_, err := h.people.CreateAccount(ctx, &ecogridv1.CreateAccountRequest{AccountId: uuid.NewString(), PersonId: p.ID, Username: shortName(), Password: "a long enough password"})
		return err
	}},
	ecogridv1.PeopleService_UnlockAccount_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.people.UnlockAccount(ctx, &ecogridv1.UnlockAccountRequest{Username: h.residents[v].Username})
		return err
	}},
	ecogridv1.PeopleService_UpdatePerson_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		phone := "139" + uuid.NewString()[:8]
		_, err := h.people.UpdatePerson(ctx, &ecogridv1.UpdatePersonRequest{PersonId: h.residents[v].Person.ID, Phone: &phone})
		return err
	}},
	ecogridv1.PeopleService_ResetPassword_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		p := h.freshPerson(t, v[:6])
		m := peopletest.AddAccount(t, h.pool, p, shortName())
		resp, err := h.people.ResetPassword(ctx, &ecogridv1.ResetPasswordRequest{Username: m.Username})
		if err == nil {
			if _, err := h.login(m.Username, resp.GetGeneratedPassword()); err != nil {
				t.Errorf("login with the reset password: %v", err)
			}
		}
		return err
	}},
	ecogridv1.PeopleService_StartAssignment_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		p := h.freshPerson(t, v[:6])
		_, err := h.people.StartAssignment(ctx, &ecogridv1.StartAssignmentRequest{AssignmentId: uuid.NewString(), PersonId: p.ID,
			NodeId: h.grid[v].ID, Role: ecogridv1.Role_ROLE_INSPECTOR, Tasks: []string{"patrol"}})
		return err
	}},
	ecogridv1.PeopleService_EndAssignment_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.people.EndAssignment(ctx, &ecogridv1.EndAssignmentRequest{AssignmentId: h.freshAssignment(t, v).ID, Reason: "matrix"})
		return err
	}},
	ecogridv1.PeopleService_TransferAssignment_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.people.TransferAssignment(ctx, &ecogridv1.TransferAssignmentRequest{AssignmentId: h.freshAssignment(t, v).ID,
			NewAssignmentId: uuid.NewString(), NodeId: h.grid[v].ID, Role: ecogridv1.Role_ROLE_GRID_CHIEF, Reason: "promotion"})
		return err
	}},
	ecogridv1.PeopleService_ListAssignmentHistory_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.people.ListAssignmentHistory(ctx, &ecogridv1.ListAssignmentHistoryRequest{PersonId: h.residents[v].Person.ID})
		return err
	}},
	ecogridv1.PeopleService_ListResponsible_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.people.ListResponsible(ctx, &ecogridv1.ListResponsibleRequest{NodeCode: v})
		return err
	}},
	// GridService reads: the village node itself.
	ecogridv1.GridService_GetNode_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.grid_.GetNode(ctx, &ecogridv1.GetNodeRequest{NodeId: h.grid[v].ID})
		if err == nil {
			_, err = h.grid_.GetNode(ctx, &ecogridv1.GetNodeRequest{Code: v}) // by code answers the same
		}
		return err
	}},
	ecogridv1.GridService_ListChildren_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.grid_.ListChildren(ctx, &ecogridv1.ListChildrenRequest{NodeId: h.grid[v].ID})
		return err
	}},
	ecogridv1.GridService_GetAncestry_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.grid_.GetAncestry(ctx, &ecogridv1.GetAncestryRequest{NodeId: h.grid[v].ID})
		return err
	}},
	ecogridv1.GridService_ListSubtree_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.grid_.ListSubtree(ctx, &ecogridv1.ListSubtreeRequest{NodeId: h.grid[v].ID})
		return err
	}},
	ecogridv1.GridService_ListNodeVersions_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.grid_.ListNodeVersions(ctx, &ecogridv1.ListNodeVersionsRequest{NodeId: h.grid[v].ID})
		return err
	}},
	ecogridv1.GridService_ExportGeoJSON_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		st, err := h.grid_.ExportGeoJSON(ctx, &ecogridv1.ExportGeoJSONRequest{NodeId: h.grid[v].ID})
		if err != nil {
			return err
		}
		for {
			if _, err := st.Recv(); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
		}
	}},

	// AccountabilityService: the county office audits its county.
	ecogridv1.AccountabilityService_PersonHistory_FullMethodName: {filtered: true, call: func(t *testing.T, h *harness, ctx context.Context, me peopletest.Member, v string) error {
		resp, err := h.audit.PersonHistory(ctx, &ecogridv1.PersonHistoryRequest{PersonId: h.residents[v].Person.ID})
		if err == nil && (len(resp.GetRecords()) > 0) != sees(me, v) {
			t.Errorf("PersonHistory of the inspector of %s: %d records; want visible=%v", v, len(resp.GetRecords()), sees(me, v))
		}
		return err
	}},
	ecogridv1.AccountabilityService_NodeHistory_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.audit.NodeHistory(ctx, &ecogridv1.NodeHistoryRequest{NodeCode: v})
		return err
	}},
	ecogridv1.AccountabilityService_SubjectHistory_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.audit.SubjectHistory(ctx, &ecogridv1.SubjectHistoryRequest{SubjectType: "assignment", SubjectId: h.residents[v].Assignment.ID})
		return err
	}},
	ecogridv1.AccountabilityService_GetPublicKey_FullMethodName: {noObject: true, call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, _ string) error {
		_, err := h.audit.GetPublicKey(ctx, &ecogridv1.GetPublicKeyRequest{})
		return err
	}},
	ecogridv1.AccountabilityService_ListCheckpoints_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.audit.ListCheckpoints(ctx, &ecogridv1.ListCheckpointsRequest{CountyCode: v[:6]})
		return err
	}},
	ecogridv1.AccountabilityService_SignCheckpoint_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.audit.SignCheckpoint(ctx, &ecogridv1.SignCheckpointRequest{CountyCode: v[:6]})
		return err
	}},
	ecogridv1.AccountabilityService_VerifyChain_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		resp, err := h.audit.VerifyChain(ctx, &ecogridv1.VerifyChainRequest{CountyCode: v[:6]})
		if err == nil && !resp.GetOk() {
			t.Errorf("VerifyChain(%s) reports a problem: %v", v[:6], resp)
		}
		return err
	}},
	ecogridv1.AccountabilityService_Export_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		st, err := h.audit.Export(ctx, &ecogridv1.ExportRequest{CountyCode: v[:6]})
		if err != nil {
			return err
		}
		for {
			if _, err := st.Recv(); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
		}
	}},
	ecogridv1.AuditService_TenureAudit_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		resp, err := h.tenure.TenureAudit(ctx, &ecogridv1.TenureAuditRequest{ReportId: uuid.NewString(), PersonId: h.residents[v].Person.ID})
		if err == nil && (resp.GetSummary().GetPosts() != 1 || len(resp.GetReportJson()) == 0) {
			t.Errorf("TenureAudit of the inspector of %s = %v; want their one post and a report", v, resp.GetSummary())
		}
		return err
	}},

	// AssessmentService: the county office of the village's county.
	ecogridv1.AssessmentService_ListIndicators_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		resp, err := h.assess.ListIndicators(ctx, &ecogridv1.ListIndicatorsRequest{CountyCode: v[:6]})
		if err == nil && len(resp.GetIndicators()) < 10 {
			t.Errorf("ListIndicators = %d indicators; want the built-in ones", len(resp.GetIndicators()))
		}
		return err
	}},
	ecogridv1.AssessmentService_DefineIndicator_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.assess.DefineIndicator(ctx, &ecogridv1.DefineIndicatorRequest{CountyCode: v[:6], Indicator: matrixIndicator})
		return err
	}},
	ecogridv1.AssessmentService_ListWeightSets_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.assess.ListWeightSets(ctx, &ecogridv1.ListWeightSetsRequest{CountyCode: v[:6]})
		return err
	}},
	ecogridv1.AssessmentService_SetWeights_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.assess.SetWeights(ctx, &ecogridv1.SetWeightsRequest{CountyCode: v[:6], AreaKind: "urban", Weights: map[string]float64{"on_time_closure": 1}})
		return err
	}},
	ecogridv1.AssessmentService_SetNodeKind_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.assess.SetNodeKind(ctx, &ecogridv1.SetNodeKindRequest{NodeCode: v, AreaKind: "ecological"})
		return err
	}},
	ecogridv1.AssessmentService_RecordIndicatorValue_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := recordMatrixValue(ctx, h, v, uuid.NewString())
		return err
	}},
	ecogridv1.AssessmentService_GetIndicatorValueAttachment_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		id := uuid.NewString()
		_, _ = recordMatrixValue(ctx, h, v, id)
		resp, err := h.assess.GetIndicatorValueAttachment(ctx, &ecogridv1.GetIndicatorValueAttachmentRequest{ValueId: id})
		if err == nil && string(resp.GetData()) != "evidence" {
			t.Errorf("attachment = %q", resp.GetData())
		}
		return err
	}},
	ecogridv1.AssessmentService_GetScorecards_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		resp, err := h.assess.GetScorecards(ctx, &ecogridv1.GetScorecardsRequest{CountyCode: v[:6], Period: "2025-12", Level: ecogridv1.ScorecardLevel_SCORECARD_LEVEL_VILLAGE})
		if err == nil && !slices.ContainsFunc(resp.GetScorecards(), func(s *ecogridv1.Scorecard) bool { return s.GetCode() == v }) {
			t.Errorf("GetScorecards of %s has no scorecard of %s", v[:6], v)
		}
		return err
	}},
	ecogridv1.AssessmentService_GetFigureDetail_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.assess.GetFigureDetail(ctx, &ecogridv1.GetFigureDetailRequest{CountyCode: v[:6], Period: "2025-12",
			Level: ecogridv1.ScorecardLevel_SCORECARD_LEVEL_VILLAGE, Code: v, Indicator: "on_time_closure"})
		return err
	}},
	ecogridv1.AssessmentService_ClosePeriod_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
		_, err := h.assess.ClosePeriod(ctx, &ecogridv1.ClosePeriodRequest{CountyCode: v[:6], Period: "2025-11"})
		return err
	}},

	ecogridv1.AuthService_WhoAmI_FullMethodName: {noObject: true, call: func(t *testing.T, h *harness, ctx context.Context, me peopletest.Member, _ string) error {
		resp, err := h.auth.WhoAmI(ctx, &ecogridv1.WhoAmIRequest{})
		if err == nil && (resp.GetPerson().GetId() != me.Person.ID || len(resp.GetGrants()) != 1) {
			t.Errorf("WhoAmI = %v; want %s with one grant", resp, me.Person.ID)
		}
		return err
	}},
	ecogridv1.AuthService_Logout_FullMethodName: {noObject: true, call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, _ string) error {
		_, err := h.auth.Logout(ctx, &ecogridv1.LogoutRequest{})
		return err
	}},
	ecogridv1.AuthService_ChangePassword_FullMethodName: {noObject: true, call: func(t *testing.T, h *harness, ctx context.Context, me peopletest.Member, _ string) error {
		_, err := h.auth.ChangePassword(ctx, &ecogridv1.ChangePasswordRequest{CurrentPassword: me.Password, NewPassword: me.Password})
		return err
	}},
}

// sees reports whether the test caller me may see the objects of village v.
func sees(me peopletest.Member, v string) bool { return me.Caller().Covers(v) }

// scopeTestedElsewhere lists RPCs of the served services whose object
// scope needs fixtures this harness does not build (geometry that nests,
// the loaded spatial index), with the test that covers it. Their role gate
// is still checked for every role by TestRoleGateEveryRPC.
var scopeTestedElsewhere = map[string]string{
	ecogridv1.GridService_CreateNode_FullMethodName:    "internal/grid service_test.go",
	ecogridv1.GridService_UpdateNode_FullMethodName:    "internal/grid service_test.go",
	ecogridv1.GridService_ImportGeoJSON_FullMethodName: "internal/grid import_test.go",
	ecogridv1.GridService_LocatePoint_FullMethodName:   "internal/grid service_test.go",

	// WatersService: reaches need the county's geometry and imported
	// rivers; the waters tests check each RPC in and out of scope.
	ecogridv1.WatersService_ImportReaches_FullMethodName:      "internal/waters service_test.go, import_test.go",
	ecogridv1.WatersService_ExportReaches_FullMethodName:      "internal/waters service_test.go",
	ecogridv1.WatersService_AssignChief_FullMethodName:        "internal/waters chiefs_test.go",
	ecogridv1.WatersService_EndChief_FullMethodName:           "internal/waters chiefs_test.go",
	ecogridv1.WatersService_ListReachChiefs_FullMethodName:    "internal/waters service_test.go",
	ecogridv1.WatersService_GetReachSign_FullMethodName:       "internal/waters service_test.go",
	ecogridv1.WatersService_GetPatrolCoverage_FullMethodName:  "internal/waters service_test.go",
	ecogridv1.WatersService_GetReachCompliance_FullMethodName: "internal/waters service_test.go",
}

// expectedCode is what the policy and the scope rules say a call must
// answer: PermissionDenied when the role may never make the call, NotFound
// for an object outside the caller's scope, OK otherwise.
func expectedCode(method string, role scope.Role, inScope bool) codes.Code {
	rule, ok := auth.RuleFor(method)
	if !ok || !rule.Allows(scope.Caller{Grants: []scope.Grant{{Role: role}}}) {
		return codes.PermissionDenied
	}
	if inScope || role == scope.RoleAdmin || matrix[method].noObject || matrix[method].filtered {
		return codes.OK
	}
	return codes.NotFound
}

// servicesTestedElsewhere are ecogrid.v1 services this harness does not
// serve; their object scope is covered by their own matrix tests, their
// role gate by TestRoleGateEveryRPC. A new service must be served here or
// named here.
var servicesTestedElsewhere = map[string]string{
	ecogridv1.FieldService_ServiceDesc.ServiceName: "internal/field service_test.go",
	ecogridv1.CaseService_ServiceDesc.ServiceName:  "internal/cases authority tests",
	// Zones and samples need a county's geometry and rules; their county
	// and role checks are walked per RPC in those packages' service tests.
	ecogridv1.ZoneService_ServiceDesc.ServiceName:       "internal/zones service_test.go",
	ecogridv1.MonitoringService_ServiceDesc.ServiceName: "internal/monitoring service_test.go",
}

// TestAuthorizationMatrix makes every RPC of the ecogrid.v1 services (read
// from the generated descriptors, so a new RPC without a row fails here)
// as every role, about an object in the caller's own scope, in a sibling
// scope and in another county, and checks the exact status code. The
// inspector's sibling object is the neighbouring village's inspector's, so
// the two swap each other's ids. Targets of a higher rank:
// TestNobodyActsOnAnEqualOrHigherRank.
func TestAuthorizationMatrix(t *testing.T) {
	h := newHarness(t, accounts.DefaultLimits)
	for _, full := range allMethods(t) {
		service, m, _ := strings.Cut(strings.TrimPrefix(full, "/"), "/")
		if !strings.HasPrefix(service, "ecogrid.v1.") {
			continue // health and reflection: public, TestPolicyCoversEveryMethod
		}
		row, ok := matrix[full]
		if rule, _ := auth.RuleFor(full); rule.Public {
			continue // Login and Refresh: TestLogin*, TestRefresh*
		}
		if _, elsewhere := scopeTestedElsewhere[full]; elsewhere {
			continue
		}
		if _, elsewhere := servicesTestedElsewhere[service]; elsewhere {
			continue
		}
		if !ok {
			t.Errorf("%s has no row in the authorization matrix", full)
			continue
		}
		for _, role := range scope.AllRoles {
			me := h.callers[role]
			for _, where := range []struct {
				name, village string
				in            bool
			}{{"own_scope", homeVillage, true}, {"sibling_scope", awayVillage[role], false}, {"other_county", peopletest.VillageB1a, false}} {
				t.Run(fmt.Sprintf("%s/%s/%s", m, role, where.name), func(t *testing.T) {
					err := row.call(t, h, h.session(t, me), me, where.village)
					if got, want := status.Code(err), expectedCode(full, role, where.in); got != want {
						t.Errorf("%s as %s about village %s = %v (%v); want %v", m, role, where.village, got, err, want)
					}
				})
			}
		}
	}
}

func methodNames(ms []grpc.MethodDesc) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.MethodName)
	}
	return out
}

func streamNames(ss []grpc.StreamDesc) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.StreamName)
	}
	return out
}

// TestInspectorsSwapIDs: each of two inspectors of neighbouring villages
// asks for the other's objects on every read and list RPC and gets
// NotFound, while their own are found.
func TestInspectorsSwapIDs(t *testing.T) {
	h := newHarness(t, accounts.DefaultLimits)
	a, b := h.residents[peopletest.VillageA1a], h.residents[peopletest.VillageA1b]
	for _, pair := range [][2]peopletest.Member{{a, b}, {b, a}} {
		me, other := pair[0], pair[1]
		ctx := h.session(t, me)
		myVillage, otherVillage := me.Assignment.NodeCode, other.Assignment.NodeCode
		check := func(what string, err error, want codes.Code) {
			t.Helper()
			if status.Code(err) != want {
				t.Errorf("%s as %s: %v; want %v", what, me.Username, err, want)
			}
		}
		_, err := h.people.GetPerson(ctx, &ecogridv1.GetPersonRequest{PersonId: other.Person.ID})
		check("GetPerson(other)", err, codes.NotFound)
		_, err = h.people.GetPerson(ctx, &ecogridv1.GetPersonRequest{PersonId: me.Person.ID})
		check("GetPerson(self)", err, codes.OK)
		_, err = h.people.ListAssignmentHistory(ctx, &ecogridv1.ListAssignmentHistoryRequest{PersonId: other.Person.ID})
		check("ListAssignmentHistory(other)", err, codes.NotFound)
		_, err = h.people.ListResponsible(ctx, &ecogridv1.ListResponsibleRequest{NodeCode: otherVillage})
		check("ListResponsible(other village)", err, codes.NotFound)
		_, err = h.people.ListResponsible(ctx, &ecogridv1.ListResponsibleRequest{NodeCode: myVillage})
		check("ListResponsible(own village)", err, codes.OK)
		_, err = h.people.ListPersons(ctx, &ecogridv1.ListPersonsRequest{NodeCode: myVillage})
		check("ListPersons", err, codes.PermissionDenied)
		// A made-up id answers exactly like another's id.
		_, err = h.people.GetPerson(ctx, &ecogridv1.GetPersonRequest{PersonId: uuid.NewString()})
		check("GetPerson(unknown)", err, codes.NotFound)
	}
}

// TestListsShowOnlyScope: unfiltered lists of every manager contain exactly
// the persons in scope.
func TestListsShowOnlyScope(t *testing.T) {
	h := newHarness(t, accounts.DefaultLimits)
	for role, wantVillages := range map[scope.Role][]string{
		scope.RoleGridChief:          {peopletest.VillageA1a},
		scope.RoleTownshipSupervisor: {peopletest.VillageA1a, peopletest.VillageA1b},
		scope.RoleCountyOfficer:      {peopletest.VillageA1a, peopletest.VillageA1b, peopletest.VillageA2a},
	} {
		resp, err := h.people.ListPersons(h.session(t, h.callers[role]), &ecogridv1.ListPersonsRequest{})
		if err != nil {
			t.Fatalf("ListPersons as %s: %v", role, err)
		}
		var got []string
		for _, p := range resp.GetPersons() {
			got = append(got, p.GetId())
		}
		for v, r := range h.residents {
			if slices.Contains(got, r.Person.ID) != slices.Contains(wantVillages, v) {
				t.Errorf("ListPersons as %s: inspector of %s listed=%v; want %v", role, v, slices.Contains(got, r.Person.ID), slices.Contains(wantVillages, v))
			}
		}
	}
}

// TestRoleGateEveryRPC runs the interceptor's decision for every RPC of
// every ecogrid.v1 service (from the proto registry) × every role, with a
// real token and session: PermissionDenied exactly when the policy says the
// role may never call it, Unauthenticated without a token for every
// non-public RPC. The object-scope half of the matrix is per service
// (TestAuthorizationMatrix and each service's own tests).
func TestRoleGateEveryRPC(t *testing.T) {
	h := newHarness(t, accounts.DefaultLimits)
	incoming := func(ctx context.Context) context.Context {
		md, _ := metadata.FromOutgoingContext(ctx)
		return metadata.NewIncomingContext(context.Background(), md)
	}
	sessions := map[scope.Role]context.Context{}
	for _, role := range scope.AllRoles {
		sessions[role] = incoming(h.session(t, h.callers[role]))
	}
	for _, method := range allMethods(t) {
		rule, _ := auth.RuleFor(method)
		_, err := h.authz.Authorize(context.Background(), method)
		if want := map[bool]codes.Code{true: codes.OK, false: codes.Unauthenticated}[rule.Public]; status.Code(err) != want {
			t.Errorf("%s without a token = %v; want %v", method, err, want)
		}
		for _, role := range scope.AllRoles {
			ctx, err := h.authz.Authorize(sessions[role], method)
			want := codes.OK
			if !rule.Allows(scope.Caller{Grants: []scope.Grant{{Role: role}}}) {
				want = codes.PermissionDenied
			}
			if status.Code(err) != want {
				t.Errorf("%s as %s = %v; want %v", method, role, err, want)
				continue
			}
			if err == nil && !rule.Public {
				if c, ok := scope.FromContext(ctx); !ok || c.PersonID != h.callers[role].Person.ID {
					t.Errorf("%s as %s: caller in context = %+v, %v", method, role, c, ok)
				}
			}
		}
	}
}
