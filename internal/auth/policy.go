package auth

import (
	"fmt"
	"slices"
	"sort"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionalphapb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/scope"
)

// Rule says who may call one RPC. The role check here is the coarse gate
// ("may this role ever call it"); each service then checks every object
// against the caller's grid scope and answers NotFound outside it.
type Rule struct {
	// Public RPCs need no token (login, refresh, health, reflection).
	Public bool
	// AnyCaller RPCs need a valid token but no particular role (WhoAmI,
	// Logout: a person whose assignments all ended can still see that and
	// log out).
	AnyCaller bool
	// Roles that may call; an administrator may call everything non-public.
	Roles []scope.Role
}

func (r Rule) String() string {
	switch {
	case r.Public:
		return "public"
	case r.AnyCaller:
		return "any caller"
	}
	return fmt.Sprint(r.Roles)
}

var (
	public    = Rule{Public: true}
	anyCaller = Rule{AnyCaller: true}
)

func roles(rs ...scope.Role) Rule { return Rule{Roles: rs} }

// Role groups used below.
var (
	everyone   = roles(scope.RoleInspector, scope.RoleGridChief, scope.RoleTownshipSupervisor, scope.RoleCountyOfficer)
	patrollers = roles(scope.RoleInspector, scope.RoleGridChief, scope.RoleTownshipSupervisor)
	managers   = roles(scope.RoleGridChief, scope.RoleTownshipSupervisor, scope.RoleCountyOfficer)
	placers    = roles(scope.RoleTownshipSupervisor, scope.RoleCountyOfficer)
	county     = roles(scope.RoleCountyOfficer)
)

// Policy maps every RPC of every service ecogrid registers, by its generated
// full method name, to who may call it. A method that is not here is denied
// to everyone (PermissionDenied), and CheckServer refuses to start a server
// with such a method; TestPolicyCoversEveryMethod enumerates every service in
// ecogrid.v1 so a new RPC cannot ship without a rule.
var Policy = map[string]Rule{
	// gRPC infrastructure.
	healthpb.Health_Check_FullMethodName:                                   public,
	healthpb.Health_Watch_FullMethodName:                                   public,
	healthpb.Health_List_FullMethodName:                                    public,
	reflectionpb.ServerReflection_ServerReflectionInfo_FullMethodName:      public,
	reflectionalphapb.ServerReflection_ServerReflectionInfo_FullMethodName: public,

	// AuthService.
	ecogridv1.AuthService_Login_FullMethodName:          public,
	ecogridv1.AuthService_Refresh_FullMethodName:        public,
	ecogridv1.AuthService_Logout_FullMethodName:         anyCaller,
	ecogridv1.AuthService_WhoAmI_FullMethodName:         anyCaller,
	ecogridv1.AuthService_ChangePassword_FullMethodName: anyCaller,

	// PeopleService.
	ecogridv1.PeopleService_CreatePerson_FullMethodName:          county,
	ecogridv1.PeopleService_GetPerson_FullMethodName:             everyone,
	ecogridv1.PeopleService_ListPersons_FullMethodName:           managers,
	ecogridv1.PeopleService_CreateAccount_FullMethodName:         county,
	ecogridv1.PeopleService_UnlockAccount_FullMethodName:         county,
	ecogridv1.PeopleService_UpdatePerson_FullMethodName:          county,
	ecogridv1.PeopleService_ResetPassword_FullMethodName:         county,
	ecogridv1.PeopleService_StartAssignment_FullMethodName:       placers,
	ecogridv1.PeopleService_EndAssignment_FullMethodName:         placers,
	ecogridv1.PeopleService_TransferAssignment_FullMethodName:    placers,
	ecogridv1.PeopleService_ListAssignmentHistory_FullMethodName: everyone,
	ecogridv1.PeopleService_ListResponsible_FullMethodName:       everyone,

	// FieldService: everyone in the field patrols, reports and reads in
	// their scope (county officers patrol on inspection tours too); the
	// service scopes every object.
	ecogridv1.FieldService_StartPatrol_FullMethodName:       everyone,
	ecogridv1.FieldService_AppendTrackPoints_FullMethodName: everyone,
	ecogridv1.FieldService_EndPatrol_FullMethodName:         everyone,
	ecogridv1.FieldService_GetPatrol_FullMethodName:         everyone,
	// Inspectors read their own compliance (the service narrows an
	// inspector to their own rows); managers read their subtree's.
	ecogridv1.FieldService_GetPatrolCompliance_FullMethodName: everyone,
	// The map's patrol tracks: managers see their subtree's, an inspector
	// their own (the service narrows them).
	ecogridv1.FieldService_ListPatrolTracks_FullMethodName:  everyone,
	ecogridv1.FieldService_SubmitReport_FullMethodName:      everyone,
	ecogridv1.FieldService_SubmitReportBatch_FullMethodName: everyone,
	ecogridv1.FieldService_GetReport_FullMethodName:         everyone,
	ecogridv1.FieldService_ListReports_FullMethodName:       everyone,
	ecogridv1.FieldService_ListCategories_FullMethodName:    everyone,
	ecogridv1.FieldService_CreateCategory_FullMethodName:    county,
	ecogridv1.FieldService_UploadPhoto_FullMethodName:       everyone,
	ecogridv1.FieldService_GetUploadStatus_FullMethodName:   everyone,
	ecogridv1.FieldService_DownloadPhoto_FullMethodName:     everyone,
	ecogridv1.FieldService_ExportReports_FullMethodName:     everyone,

	// GridService: everyone reads (and exports, e.g. for offline maps) the
	// grid in their scope; the county office draws it.
	ecogridv1.GridService_CreateNode_FullMethodName:       county,
	ecogridv1.GridService_UpdateNode_FullMethodName:       county,
	ecogridv1.GridService_ImportGeoJSON_FullMethodName:    county,
	ecogridv1.GridService_GetNode_FullMethodName:          everyone,
	ecogridv1.GridService_ListChildren_FullMethodName:     everyone,
	ecogridv1.GridService_GetAncestry_FullMethodName:      everyone,
	ecogridv1.GridService_ListSubtree_FullMethodName:      everyone,
	ecogridv1.GridService_ListNodeVersions_FullMethodName: everyone,
	ecogridv1.GridService_LocatePoint_FullMethodName:      everyone,
	ecogridv1.GridService_ExportGeoJSON_FullMethodName:    everyone,

	// CaseService: the coarse gate is the union of the roles of the
	// workflow's transitions (internal/cases.Workflow), which the service
	// checks again per case state and scope.
	ecogridv1.CaseService_ListCases_FullMethodName:           everyone,
	ecogridv1.CaseService_GetCase_FullMethodName:             everyone,
	ecogridv1.CaseService_GetCaseTimeline_FullMethodName:     everyone,
	ecogridv1.CaseService_ListHandoverCases_FullMethodName:   placers,
	ecogridv1.CaseService_AcceptCase_FullMethodName:          placers,
	ecogridv1.CaseService_RejectCase_FullMethodName:          placers,
	ecogridv1.CaseService_DispatchCase_FullMethodName:        placers,
	ecogridv1.CaseService_StartWork_FullMethodName:           patrollers,
	ecogridv1.CaseService_SubmitRectification_FullMethodName: patrollers,
	ecogridv1.CaseService_VerifyRectification_FullMethodName: roles(scope.RoleInspector, scope.RoleGridChief),
	ecogridv1.CaseService_CloseCase_FullMethodName:           placers,
	ecogridv1.CaseService_ReturnCase_FullMethodName:          everyone,
	ecogridv1.CaseService_RequestExtension_FullMethodName:    patrollers,
	ecogridv1.CaseService_ApproveExtension_FullMethodName:    placers,
	ecogridv1.CaseService_DeclineExtension_FullMethodName:    placers,
	ecogridv1.CaseService_ReopenCase_FullMethodName:          placers,
	ecogridv1.CaseService_ReassignCase_FullMethodName:        placers,
	ecogridv1.CaseService_EscalateCase_FullMethodName:        county,
	ecogridv1.CaseService_ListDeadlineRules_FullMethodName:   everyone,
	ecogridv1.CaseService_SetDeadlineRule_FullMethodName:     county,

	// CaseService department steps (issue 16): the township transfers and
	// opens joint handling; department staff hold no grid grant, so their
	// steps admit any signed-in caller and the tracker checks the
	// department membership and covered area (NotFound otherwise).
	ecogridv1.CaseService_TransferCase_FullMethodName:             placers,
	ecogridv1.CaseService_OpenJointHandling_FullMethodName:        placers,
	ecogridv1.CaseService_AcceptTransfer_FullMethodName:           anyCaller,
	ecogridv1.CaseService_RefuseTransfer_FullMethodName:           anyCaller,
	ecogridv1.CaseService_CompleteJointTask_FullMethodName:        anyCaller,
	ecogridv1.CaseService_VerifyDepartmentHandling_FullMethodName: anyCaller,

	// AccountabilityService: the county office audits.
	ecogridv1.AccountabilityService_PersonHistory_FullMethodName:   county,
	ecogridv1.AccountabilityService_NodeHistory_FullMethodName:     county,
	ecogridv1.AccountabilityService_SubjectHistory_FullMethodName:  county,
	ecogridv1.AccountabilityService_GetPublicKey_FullMethodName:    county,
	ecogridv1.AccountabilityService_ListCheckpoints_FullMethodName: county,
	ecogridv1.AccountabilityService_SignCheckpoint_FullMethodName:  county,
	ecogridv1.AccountabilityService_VerifyChain_FullMethodName:     county,
	ecogridv1.AccountabilityService_Export_FullMethodName:          county,

	// WatersService (河长制): everyone reads the reaches, chiefs and signs
	// in their view; the county office imports reaches and appoints chiefs
	// within its county; managers read reach patrol compliance. The service
	// scopes every reach, chief and patrol.
	ecogridv1.WatersService_ImportReaches_FullMethodName:      county,
	ecogridv1.WatersService_ExportReaches_FullMethodName:      everyone,
	ecogridv1.WatersService_AssignChief_FullMethodName:        county,
	ecogridv1.WatersService_EndChief_FullMethodName:           county,
	ecogridv1.WatersService_ListReachChiefs_FullMethodName:    everyone,
	ecogridv1.WatersService_GetReachSign_FullMethodName:       everyone,
	ecogridv1.WatersService_GetPatrolCoverage_FullMethodName:  everyone,
	ecogridv1.WatersService_GetReachCompliance_FullMethodName: managers,
	// ZoneService and MonitoringService (issue 18): everyone reads the
	// zones, points and samples of their county (an inspector must know
	// the zones they patrol); the county office writes them. The services
	// check the county of every object (internal/zones Reads, Writes).
	ecogridv1.ZoneService_ImportZones_FullMethodName:            county,
	ecogridv1.ZoneService_ExportZones_FullMethodName:            everyone,
	ecogridv1.ZoneService_ListZones_FullMethodName:              everyone,
	ecogridv1.ZoneService_LocateZones_FullMethodName:            everyone,
	ecogridv1.ZoneService_DefineZoneKind_FullMethodName:         county,
	ecogridv1.ZoneService_ListZoneRules_FullMethodName:          everyone,
	ecogridv1.ZoneService_SetZoneRule_FullMethodName:            county,
	ecogridv1.ZoneService_GetZonePatrolQuotas_FullMethodName:    everyone,
	ecogridv1.MonitoringService_CreatePoint_FullMethodName:      county,
	ecogridv1.MonitoringService_ListPoints_FullMethodName:       everyone,
	ecogridv1.MonitoringService_RecordSample_FullMethodName:     county,
	ecogridv1.MonitoringService_ListSamples_FullMethodName:      everyone,
	ecogridv1.MonitoringService_ImportSamplesCSV_FullMethodName: county,
	// DepartmentService and WebhookService (issue 16): the county office
	// manages its county's departments, staff, taxonomy, routes and
	// webhook subscribers; the services answer NotFound for another
	// county's (internal/departments, internal/webhooks manages).
	ecogridv1.DepartmentService_CreateDepartment_FullMethodName:    county,
	ecogridv1.DepartmentService_ListDepartments_FullMethodName:     county,
	ecogridv1.DepartmentService_CoverArea_FullMethodName:           county,
	ecogridv1.DepartmentService_UncoverArea_FullMethodName:         county,
	ecogridv1.DepartmentService_AddStaff_FullMethodName:            county,
	ecogridv1.DepartmentService_EndStaff_FullMethodName:            county,
	ecogridv1.DepartmentService_ListStaff_FullMethodName:           county,
	ecogridv1.DepartmentService_ListTaxonomy_FullMethodName:        county,
	ecogridv1.DepartmentService_AddTaxonomyCategory_FullMethodName: county,
	ecogridv1.DepartmentService_SetRoute_FullMethodName:            county,
	ecogridv1.DepartmentService_ListRoutes_FullMethodName:          county,
	ecogridv1.WebhookService_CreateSubscriber_FullMethodName:       county,
	ecogridv1.WebhookService_ListSubscribers_FullMethodName:        county,
	ecogridv1.WebhookService_DisableSubscriber_FullMethodName:      county,
	ecogridv1.WebhookService_ListDeliveries_FullMethodName:         county,
	ecogridv1.WebhookService_ReplaySubscriber_FullMethodName:       county,
	// AuditService: the county office audits the people it manages.
	ecogridv1.AuditService_TenureAudit_FullMethodName: county,
	// AssessmentService (考核): the county office keeps the catalogue,
	// weights and kinds of area, enters other departments' values, reads
	// and exports the scorecards and closes periods, within its county
	// (the service checks the county of every object: NotFound outside).
	ecogridv1.AssessmentService_ListIndicators_FullMethodName:              county,
	ecogridv1.AssessmentService_DefineIndicator_FullMethodName:             county,
	ecogridv1.AssessmentService_ListWeightSets_FullMethodName:              county,
	ecogridv1.AssessmentService_SetWeights_FullMethodName:                  county,
	ecogridv1.AssessmentService_SetNodeKind_FullMethodName:                 county,
	ecogridv1.AssessmentService_RecordIndicatorValue_FullMethodName:        county,
	ecogridv1.AssessmentService_GetIndicatorValueAttachment_FullMethodName: county,
	ecogridv1.AssessmentService_GetScorecards_FullMethodName:               county,
	ecogridv1.AssessmentService_GetFigureDetail_FullMethodName:             county,
	ecogridv1.AssessmentService_ClosePeriod_FullMethodName:                 county,
}

// RuleFor returns the rule of a full method name.
func RuleFor(method string) (Rule, bool) {
	r, ok := Policy[method]
	return r, ok
}

// Allows reports whether a caller with these grants passes the rule's role
// gate. It does not check object scope.
func (r Rule) Allows(c scope.Caller) bool {
	switch {
	case r.Public, r.AnyCaller:
		return true
	case slices.ContainsFunc(c.Grants, func(g scope.Grant) bool { return g.Role == scope.RoleAdmin }):
		return true
	}
	return c.HasRole(r.Roles...)
}

// MissingRules returns the methods served by s that have no rule, sorted.
// gridd and cased call CheckServer after registering their services.
func MissingRules(s *grpc.Server) []string {
	var missing []string
	for name, info := range s.GetServiceInfo() {
		for _, m := range info.Methods {
			full := "/" + name + "/" + m.Name
			if _, ok := Policy[full]; !ok {
				missing = append(missing, full)
			}
		}
	}
	sort.Strings(missing)
	return missing
}

// CheckServer fails when a registered method has no access rule, so a
// server never starts with an RPC nobody decided about.
func CheckServer(s *grpc.Server) error {
	if m := MissingRules(s); len(m) > 0 {
		return fmt.Errorf("no access policy for %d RPCs (add them to auth.Policy): %v", len(m), m)
	}
	return nil
}
