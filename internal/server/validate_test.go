package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/server"
)

// errReached is what the stand-in handlers answer: the request passed
// validation.
var errReached = status.Error(codes.Unimplemented, "handler reached")

// noRequiredField lists the RPCs whose empty request is valid, and why. A
// new RPC whose empty request passes validation fails the walk until it has
// rules or an entry here.
var noRequiredField = map[string]string{
	ecogridv1.AuthService_Logout_FullMethodName:                 "no fields: the session is the caller's token",
	ecogridv1.AuthService_WhoAmI_FullMethodName:                 "no fields: answers about the caller's token",
	ecogridv1.AccountabilityService_GetPublicKey_FullMethodName: "no fields",
	ecogridv1.AuthService_Refresh_FullMethodName:                "a missing or malformed refresh token is Unauthenticated, as a wrong one is: the app signs in again",
}

// invalidRequest is, for an RPC whose empty request is valid (every field
// optional: filters, pages, the caller's own scope), a request with one
// field out of its rules.
var invalidRequest = map[string]string{
	ecogridv1.GridService_ListSubtree_FullMethodName:            `{"nodeId":"not-a-uuid"}`,
	ecogridv1.GridService_ExportGeoJSON_FullMethodName:          `{"maxLevel":99}`,
	ecogridv1.GridService_ImportGeoJSON_FullMethodName:          `{"header":{"totalBytes":-1}}`,
	ecogridv1.FieldService_ListReports_FullMethodName:           `{"filter":{"reporterId":"x"},"page":{"pageSize":-1}}`,
	ecogridv1.FieldService_ExportReports_FullMethodName:         `{"format":7}`,
	ecogridv1.FieldService_ListCategories_FullMethodName:        `{"countyCode":"13012"}`,
	ecogridv1.FieldService_GetPatrolCompliance_FullMethodName:   `{"nodeCode":"1301230"}`,
	ecogridv1.FieldService_UploadPhoto_FullMethodName:           `{"header":{"size":0,"sha256":"abc"}}`,
	ecogridv1.CaseService_ListCases_FullMethodName:              `{"page":{"pageSize":100000}}`,
	ecogridv1.PeopleService_ListPersons_FullMethodName:          `{"nodeCode":"13"}`,
	ecogridv1.WatersService_ExportReaches_FullMethodName:        `{"countyCode":"abc"}`,
	ecogridv1.MonitoringService_ImportSamplesCSV_FullMethodName: `{"header":{"countyCode":""}}`,
	ecogridv1.ZoneService_ImportZones_FullMethodName:            `{"header":{}}`,
}

// standInDescs builds, from the registered descriptors, a service
// description for every ecogrid.v1 service whose every handler decodes the
// request with its generated type and answers errReached.
func standInDescs(t *testing.T) ([]*grpc.ServiceDesc, []protoreflect.MethodDescriptor) {
	t.Helper()
	var descs []*grpc.ServiceDesc
	var methods []protoreflect.MethodDescriptor
	protoregistry.GlobalFiles.RangeFilesByPackage("ecogrid.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			desc := &grpc.ServiceDesc{ServiceName: string(sd.FullName()), HandlerType: (*any)(nil)}
			for j := 0; j < sd.Methods().Len(); j++ {
				md := sd.Methods().Get(j)
				methods = append(methods, md)
				in, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
				if err != nil {
					t.Fatal(err)
				}
				full := "/" + string(sd.FullName()) + "/" + string(md.Name())
				if !md.IsStreamingClient() && !md.IsStreamingServer() {
					desc.Methods = append(desc.Methods, grpc.MethodDesc{MethodName: string(md.Name()),
						Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
							req := in.New().Interface()
							if err := dec(req); err != nil {
								return nil, err
							}
							return ic(ctx, req, &grpc.UnaryServerInfo{Server: srv, FullMethod: full},
								func(context.Context, any) (any, error) { return nil, errReached })
						}})
					continue
				}
				desc.Streams = append(desc.Streams, grpc.StreamDesc{StreamName: string(md.Name()),
					ClientStreams: md.IsStreamingClient(), ServerStreams: md.IsStreamingServer(),
					Handler: func(_ any, ss grpc.ServerStream) error {
						if err := ss.RecvMsg(in.New().Interface()); err != nil {
							return err
						}
						return errReached
					}})
			}
			descs = append(descs, desc)
		}
		return true
	})
	if len(methods) < 90 {
		t.Fatalf("found %d RPCs in ecogrid.v1; the generated package is not linked", len(methods))
	}
	return descs, methods
}

func startStandIns(t *testing.T) (*grpc.ClientConn, []protoreflect.MethodDescriptor) {
	t.Helper()
	srv, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0"}, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	descs, methods := standInDescs(t)
	for _, d := range descs {
		srv.GRPC.RegisterService(d, struct{}{})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(); cancel(); <-done })
	return conn, methods
}

// call sends req to the method (unary or the first message of a stream)
// and returns the error the server answered.
func call(ctx context.Context, conn *grpc.ClientConn, md protoreflect.MethodDescriptor, req proto.Message) error {
	full := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
	out, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return err
	}
	if !md.IsStreamingClient() && !md.IsStreamingServer() {
		return conn.Invoke(ctx, full, req, out.New().Interface())
	}
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: md.IsStreamingClient(), ServerStreams: md.IsStreamingServer()}, full)
	if err != nil {
		return err
	}
	if err := st.SendMsg(req); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	return st.RecvMsg(out.New().Interface())
}

func badRequestOf(err error) *errdetails.BadRequest {
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			return br
		}
	}
	return nil
}

// TestEveryRPCRefusesAnInvalidRequestWithFieldViolations walks every RPC
// of ecogrid.v1 through the real interceptor chain: an empty request (or,
// where every field is optional, one with a field out of its rules) is
// InvalidArgument carrying a google.rpc.BadRequest with at least one field
// violation, before any handler runs.
func TestEveryRPCRefusesAnInvalidRequestWithFieldViolations(t *testing.T) {
	conn, methods := startStandIns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, md := range methods {
		full := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
		t.Run(string(md.Parent().Name())+"/"+string(md.Name()), func(t *testing.T) {
			in, _ := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
			req := in.New().Interface()
			if js, ok := invalidRequest[full]; ok {
				if err := protojson.Unmarshal([]byte(js), req); err != nil {
					t.Fatalf("invalid request %s: %v", js, err)
				}
			}
			err := call(ctx, conn, md, req)
			if why, ok := noRequiredField[full]; ok {
				if status.Code(err) != codes.Unimplemented {
					t.Fatalf("empty request of an RPC without rules (%s): %v, want the handler reached", why, err)
				}
				return
			}
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("%s passed validation (%v): add rules to its request in the proto, or an invalid request to invalidRequest", full, err)
			}
			br := badRequestOf(err)
			if br == nil || len(br.GetFieldViolations()) == 0 {
				t.Fatalf("InvalidArgument without BadRequest field violations: %v", err)
			}
			for _, v := range br.GetFieldViolations() {
				if v.GetDescription() == "" {
					t.Errorf("violation of %q has no description", v.GetField())
				}
			}
			if !strings.HasPrefix(status.Convert(err).Message(), "invalid request: ") {
				t.Errorf("message %q", status.Convert(err).Message())
			}
		})
	}
}

// TestValidRequestsReachTheHandler: rules do not refuse what the domain
// accepts — a well-formed report, a page within bounds, a node named by
// its code, an upload named only by hash.
func TestValidRequestsReachTheHandler(t *testing.T) {
	conn, methods := startStandIns(t)
	byName := map[string]protoreflect.MethodDescriptor{}
	for _, md := range methods {
		byName["/"+string(md.Parent().FullName())+"/"+string(md.Name())] = md
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sha := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		method string
		req    proto.Message
	}{
		{ecogridv1.FieldService_SubmitReport_FullMethodName, &ecogridv1.SubmitReportRequest{Report: &ecogridv1.ReportDraft{
			ReportId: "3f1c2a8e-8f1e-4a55-9d9e-0d7a1c2b3e4f", Category: "water", Severity: ecogridv1.Severity_SEVERITY_NORMAL,
			Position:    &ecogridv1.Position{Latitude: 38.05, Longitude: 114.55, CoordinateSystem: ecogridv1.CoordinateSystem_COORDINATE_SYSTEM_GCJ02},
			PhotoSha256: []string{sha, strings.ToUpper(sha)}}}},
		// A batch checks each report itself and answers per report.
		{ecogridv1.FieldService_SubmitReportBatch_FullMethodName, &ecogridv1.SubmitReportBatchRequest{Reports: []*ecogridv1.ReportDraft{{ReportId: "bad"}}}},
		// Track points are refused one by one, the rest of the batch kept.
		{ecogridv1.FieldService_AppendTrackPoints_FullMethodName, &ecogridv1.AppendTrackPointsRequest{PatrolId: "3f1c2a8e-8f1e-4a55-9d9e-0d7a1c2b3e4f",
			Points: []*ecogridv1.TrackPoint{{Position: &ecogridv1.Position{Latitude: 200}}}}},
		{ecogridv1.CaseService_ListCases_FullMethodName, &ecogridv1.ListCasesRequest{Page: &ecogridv1.PageRequest{PageSize: 500}, NodeCode: "130123101"}},
		{ecogridv1.GridService_GetNode_FullMethodName, &ecogridv1.GetNodeRequest{Code: "130123101201"}},
		{ecogridv1.FieldService_GetUploadStatus_FullMethodName, &ecogridv1.GetUploadStatusRequest{Sha256: sha}},
		{ecogridv1.PeopleService_StartAssignment_FullMethodName, &ecogridv1.StartAssignmentRequest{AssignmentId: "3f1c2a8e-8f1e-4a55-9d9e-0d7a1c2b3e4f",
			PersonId: "3f1c2a8e-8f1e-4a55-9d9e-0d7a1c2b3e40", NodeId: "130123101201", Role: ecogridv1.Role_ROLE_INSPECTOR}},
		{ecogridv1.PeopleService_UpdatePerson_FullMethodName, &ecogridv1.UpdatePersonRequest{PersonId: "3f1c2a8e-8f1e-4a55-9d9e-0d7a1c2b3e4f"}},
	} {
		if err := call(ctx, conn, byName[tc.method], tc.req); status.Code(err) != codes.Unimplemented {
			t.Errorf("%s %v: %v, want the handler reached", tc.method, tc.req, err)
		}
	}
}

// TestViolationsNameEachField: the detail lists every violated field by its
// path, with a description an app can show beside it.
func TestViolationsNameEachField(t *testing.T) {
	err := server.ValidateRequest(&ecogridv1.SubmitReportRequest{Report: &ecogridv1.ReportDraft{
		ReportId: "r-1", Category: "water",
		Position:    &ecogridv1.Position{Latitude: 91, Longitude: -181, CoordinateSystem: 9},
		PhotoSha256: []string{"nothex"}}})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("%v", err)
	}
	got := map[string]string{}
	for _, v := range badRequestOf(err).GetFieldViolations() {
		got[v.GetField()] = v.GetDescription()
	}
	for _, f := range []string{"report.report_id", "report.position.latitude", "report.position.longitude",
		"report.position.coordinate_system", "report.photo_sha256[0]"} {
		if got[f] == "" {
			t.Errorf("no violation for %s in %v", f, got)
		}
	}
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "report.report_id: must be a valid UUID") || !strings.Contains(msg, "more problems") {
		t.Errorf("message %q", msg)
	}
	if err := server.ValidateRequest(&ecogridv1.GetNodeRequest{}); badRequestOf(err) == nil {
		t.Errorf("GetNode without id or code: %v", err)
	}
}
