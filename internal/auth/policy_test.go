package auth_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionalphapb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	ecogridv1 "ecogrid/api/ecogrid/v1" // also registers every ecogrid.v1 service descriptor
	"ecogrid/internal/auth"
	"ecogrid/internal/scope"
)

// allMethods lists the full method names of every service in package
// ecogrid.v1 (found through the protobuf registry, so a new .proto file or
// RPC is picked up without touching this test) plus health and reflection.
func allMethods(t *testing.T) []string {
	t.Helper()
	var out []string
	protoregistry.GlobalFiles.RangeFilesByPackage("ecogrid.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				out = append(out, "/"+string(sd.FullName())+"/"+string(sd.Methods().Get(j).Name()))
			}
		}
		return true
	})
	if len(out) == 0 {
		t.Fatal("no ecogrid.v1 services registered")
	}
	for _, sd := range []grpc.ServiceDesc{healthpb.Health_ServiceDesc, reflectionpb.ServerReflection_ServiceDesc, reflectionalphapb.ServerReflection_ServiceDesc} {
		for _, m := range sd.Methods {
			out = append(out, "/"+sd.ServiceName+"/"+m.MethodName)
		}
		for _, s := range sd.Streams {
			out = append(out, "/"+sd.ServiceName+"/"+s.StreamName)
		}
	}
	return out
}

// TestPolicyCoversEveryMethod fails when any RPC of any service has no
// access rule (it would be denied to everyone at run time, and gridd or
// cased would refuse to start), and when a rule names a method that no
// longer exists.
func TestPolicyCoversEveryMethod(t *testing.T) {
	methods := allMethods(t)
	known := map[string]bool{}
	for _, m := range methods {
		known[m] = true
		if _, ok := auth.RuleFor(m); !ok {
			t.Errorf("%s has no rule in auth.Policy", m)
		}
	}
	for m, r := range auth.Policy {
		if !known[m] {
			t.Errorf("auth.Policy has a rule for %s, which no service defines", m)
		}
		if !r.Public && !r.AnyCaller && len(r.Roles) == 0 {
			t.Errorf("rule for %s allows nobody but administrators; say so with explicit roles", m)
		}
		for _, role := range r.Roles {
			if !role.Valid() {
				t.Errorf("rule for %s names unknown role %q", m, role)
			}
		}
	}
}

// TestOnlyLoginRefreshHealthReflectionArePublic guards against an RPC
// being made public by mistake.
func TestOnlyLoginRefreshHealthReflectionArePublic(t *testing.T) {
	for m, r := range auth.Policy {
		if !r.Public {
			continue
		}
		switch {
		case strings.HasPrefix(m, "/grpc.health.v1.Health/"),
			strings.HasPrefix(m, "/grpc.reflection."),
			m == "/ecogrid.v1.AuthService/Login", m == "/ecogrid.v1.AuthService/Refresh":
		default:
			t.Errorf("%s is public; only login, refresh, health and reflection may be", m)
		}
	}
}

func TestRuleAllows(t *testing.T) {
	insp := scope.Caller{Grants: []scope.Grant{{Role: scope.RoleInspector, NodeCode: "130123101201"}}}
	admin := scope.Caller{Grants: []scope.Grant{{Role: scope.RoleAdmin, NodeCode: "130123"}}}
	none := scope.Caller{}
	county, _ := auth.RuleFor("/ecogrid.v1.PeopleService/CreatePerson")
	who, _ := auth.RuleFor("/ecogrid.v1.AuthService/WhoAmI")
	for _, tc := range []struct {
		rule auth.Rule
		c    scope.Caller
		want bool
	}{
		{county, insp, false}, {county, admin, true}, {county, none, false},
		{who, none, true}, {who, insp, true},
	} {
		if got := tc.rule.Allows(tc.c); got != tc.want {
			t.Errorf("%v.Allows(%+v) = %v; want %v", tc.rule, tc.c.Grants, got, tc.want)
		}
	}
}

func TestCheckServerRefusesUnruledMethods(t *testing.T) {
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, healthpb.UnimplementedHealthServer{})
	if err := auth.CheckServer(s); err != nil {
		t.Fatalf("CheckServer with health only: %v", err)
	}
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "ecogrid.v1.NewService",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "DoThing", Handler: nil}},
	}, struct{}{})
	err := auth.CheckServer(s)
	if err == nil || !strings.Contains(err.Error(), "/ecogrid.v1.NewService/DoThing") {
		t.Fatalf("CheckServer with an unruled method = %v; want it named", err)
	}
}

func TestAuthorizeDeniesUnknownMethod(t *testing.T) {
	authz := auth.NewAuthorizer(nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	_, err := authz.Authorize(context.Background(), "/ecogrid.v1.NewService/DoThing")
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("Authorize(unknown method) = %v; want PermissionDenied", err)
	}
	ctx, err := authz.Authorize(context.Background(), healthpb.Health_Check_FullMethodName)
	if err != nil || ctx == nil {
		t.Fatalf("Authorize(health) = %v; want public", err)
	}
}

func TestCheckScope(t *testing.T) {
	sup := scope.Caller{Grants: []scope.Grant{{Role: scope.RoleTownshipSupervisor, NodeCode: "130123101"}}}
	if err := auth.CheckScope(sup, "130123101201", "report"); err != nil {
		t.Fatalf("village inside the township: %v", err)
	}
	for _, code := range []string{"130123102201", "130123", ""} {
		if err := auth.CheckScope(sup, code, "report"); status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "report not found") {
			t.Errorf("CheckScope(%q) = %v; want NotFound naming the report", code, err)
		}
	}
	if err := auth.CheckScope(sup, "130123101201", "case", scope.RoleInspector); status.Code(err) != codes.NotFound {
		t.Errorf("CheckScope with a role the caller lacks = %v; want NotFound", err)
	}
}

// TestInspectorsReadTheirOwnCompliance: an inspector could not read their
// own patrol compliance (the gate admitted managers only).
func TestInspectorsReadTheirOwnCompliance(t *testing.T) {
	rule, ok := auth.RuleFor(ecogridv1.FieldService_GetPatrolCompliance_FullMethodName)
	if !ok || !rule.Allows(scope.Caller{Grants: []scope.Grant{{Role: scope.RoleInspector, NodeCode: "130123101201"}}}) {
		t.Fatalf("GetPatrolCompliance rule %v refuses an inspector", rule)
	}
}
