package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
)

// route is one RPC reachable both over gRPC and as JSON.
type route struct {
	full   string // /ecogrid.v1.CaseService/ListCases
	in     protoreflect.MessageType
	out    protoreflect.MessageType
	stream bool // server streaming
	conn   *grpc.ClientConn
}

// routes lists every unary and server-streaming RPC of the services the
// gateway serves. Client-streaming uploads (photos, grid import) are
// left out: their JSON form is a stream of newline-separated messages.
func (s *stack) routes(t *testing.T) []route {
	t.Helper()
	var out []route
	for _, name := range []string{"AuthService", "GridService", "PeopleService", "FieldService", "AccountabilityService", "CaseService"} {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName("ecogrid.v1." + name))
		if err != nil {
			t.Fatal(err)
		}
		conn := s.gridd
		if name == "CaseService" {
			conn = s.cased
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			m := methods.Get(i)
			if m.IsStreamingClient() {
				continue
			}
			in, _ := protoregistry.GlobalTypes.FindMessageByName(m.Input().FullName())
			o, _ := protoregistry.GlobalTypes.FindMessageByName(m.Output().FullName())
			out = append(out, route{full: "/" + string(d.FullName()) + "/" + string(m.Name()), in: in, out: o, stream: m.IsStreamingServer(), conn: conn})
		}
	}
	return out
}

// viaGRPC calls the route with bearer (may be empty) and returns the code.
func viaGRPC(t *testing.T, r route, bearer string, req proto.Message) codes.Code {
	t.Helper()
	ctx := context.Background()
	if bearer != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", bearer)
	}
	if !r.stream {
		return status.Code(r.conn.Invoke(ctx, r.full, req, r.out.New().Interface()))
	}
	st, err := r.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, r.full)
	if err != nil {
		return status.Code(err)
	}
	if err := st.SendMsg(req); err != nil {
		return status.Code(err)
	}
	_ = st.CloseSend()
	for {
		if err := st.RecvMsg(r.out.New().Interface()); err != nil {
			if errors.Is(err, io.EOF) {
				return codes.OK
			}
			return status.Code(err)
		}
	}
}

// viaJSON posts the route's JSON twin and returns the code it answers,
// checking that the HTTP status is the one of that code and that the body
// is a google.rpc.Status.
func viaJSON(t *testing.T, base string, r route, bearer string, req proto.Message) codes.Code {
	t.Helper()
	body, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	hr, _ := http.NewRequest(http.MethodPost, base+"api"+r.full, bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		hr.Header.Set("Authorization", bearer)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusOK && !r.stream {
		return codes.OK
	}
	if r.stream && res.StatusCode == http.StatusOK {
		// A stream answers 200 and carries an error as its last line.
		lines := bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
		var last struct {
			Error *struct {
				Code codes.Code `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(lines[len(lines)-1], &last); err != nil || last.Error == nil {
			return codes.OK
		}
		return last.Error.Code
	}
	type rpcStatus struct {
		Code    codes.Code `json:"code"`
		Message string     `json:"message"`
	}
	var st rpcStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatalf("%s: HTTP %d with a body that is no status: %q", r.full, res.StatusCode, raw)
	}
	if r.stream {
		// A stream failing before its first message says so as a stream
		// would: {"error": status}, with the HTTP status of the code.
		var wrapped struct {
			Error *rpcStatus `json:"error"`
		}
		if err := json.Unmarshal(raw, &wrapped); err == nil && wrapped.Error != nil {
			st = *wrapped.Error
		}
	}
	if want := runtime.HTTPStatusFromCode(st.Code); res.StatusCode != want {
		t.Errorf("%s: HTTP %d for %s, want %d", r.full, res.StatusCode, st.Code, want)
	}
	if st.Message == "" {
		t.Errorf("%s: %s without a message", r.full, st.Code)
	}
	return st.Code
}

// TestEveryJSONRouteAnswersLikeItsGRPCTwin sends the same request to each
// RPC over gRPC and as JSON through the gateway, for callers without a
// token, with a forged token, from another township and as the county's
// administrator, and requires the same code from both.
func TestEveryJSONRouteAnswersLikeItsGRPCTwin(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole stack")
	}
	s := startStack(t)
	c := s.fileViolation(t, "gateway table test: oil on the canal")
	outsider, supervisor := "Bearer "+s.people["outsider"].token, "Bearer "+s.people["supervisor"].token
	routes := s.routes(t)
	if len(routes) < 50 {
		t.Fatalf("only %d routes found", len(routes))
	}
	type row struct {
		name   string
		bearer string
		req    func(r route) proto.Message
		only   string // one route, or every route when empty
		want   codes.Code
	}
	empty := func(r route) proto.Message { return r.in.New().Interface() }
	rows := []row{
		{name: "unauthenticated", req: empty},
		{name: "forged token", bearer: "Bearer not-a-token", req: empty},
		{name: "another township, empty request", bearer: outsider, req: empty},
		{name: "another township reads the case", bearer: outsider, only: ecogridv1.CaseService_GetCase_FullMethodName,
			req: func(route) proto.Message { return &ecogridv1.GetCaseRequest{CaseId: c.GetId()} }, want: codes.NotFound},
		{name: "another township dispatches the case", bearer: outsider, only: ecogridv1.CaseService_DispatchCase_FullMethodName,
			req: func(route) proto.Message {
				return &ecogridv1.DispatchCaseRequest{CaseId: c.GetId(), RequestId: uuid.NewString(), HandlerId: s.people["outsider"].personID}
			}, want: codes.PermissionDenied},
		{name: "another township's patrol tracks", bearer: outsider, only: ecogridv1.FieldService_ListPatrolTracks_FullMethodName,
			req: func(route) proto.Message {
				return &ecogridv1.ListPatrolTracksRequest{NodeCode: s.townA, From: timestamppb.New(time.Now().Add(-time.Hour)), To: timestamppb.Now()}
			}, want: codes.NotFound},
		{name: "supervisor's own township's patrol tracks", bearer: supervisor, only: ecogridv1.FieldService_ListPatrolTracks_FullMethodName,
			req: func(route) proto.Message {
				return &ecogridv1.ListPatrolTracksRequest{NodeCode: s.townA, From: timestamppb.New(time.Now().Add(-time.Hour)), To: timestamppb.Now()}
			}, want: codes.OK},
		{name: "unknown case", bearer: supervisor, only: ecogridv1.CaseService_GetCase_FullMethodName,
			req: func(route) proto.Message { return &ecogridv1.GetCaseRequest{CaseId: uuid.NewString()} }, want: codes.NotFound},
		{name: "case id that is no id", bearer: supervisor, only: ecogridv1.CaseService_GetCase_FullMethodName,
			req: func(route) proto.Message { return &ecogridv1.GetCaseRequest{CaseId: "nope"} }, want: codes.InvalidArgument},
		{name: "wrong password", only: ecogridv1.AuthService_Login_FullMethodName,
			req: func(route) proto.Message {
				return &ecogridv1.LoginRequest{Username: "supervisor", Password: "wrong-password-1"}
			}, want: codes.Unauthenticated},
		{name: "supervisor lists cases", bearer: supervisor, only: ecogridv1.CaseService_ListCases_FullMethodName,
			req: func(route) proto.Message { return &ecogridv1.ListCasesRequest{} }, want: codes.OK},
	}
	seen := map[codes.Code]int{}
	for _, rw := range rows {
		t.Run(rw.name, func(t *testing.T) {
			n := 0
			for _, r := range routes {
				if rw.only != "" && r.full != rw.only {
					continue
				}
				// Logging out ends the session the next call would use.
				if rw.only == "" && r.full == ecogridv1.AuthService_Logout_FullMethodName && rw.bearer != "" {
					continue
				}
				n++
				g := viaGRPC(t, r, rw.bearer, rw.req(r))
				j := viaJSON(t, s.ConsoleURL, r, rw.bearer, rw.req(r))
				seen[g]++
				if g != j {
					t.Errorf("%s: gRPC %s, JSON %s", r.full, g, j)
				}
				if rw.only != "" && g != rw.want {
					t.Errorf("%s: %s, want %s", r.full, g, rw.want)
				}
			}
			if n == 0 {
				t.Fatal("no route matched")
			}
		})
	}
	// The rows must have exercised the codes they are about.
	for _, want := range []codes.Code{codes.OK, codes.Unauthenticated, codes.PermissionDenied, codes.NotFound, codes.InvalidArgument} {
		if seen[want] == 0 {
			t.Errorf("no route answered %s: %v", want, seen)
		}
	}
	t.Logf("%d routes, codes seen: %v", len(routes), seen)
}

// TestJSONAPIRefusesWhatIsNoRequest answers bad JSON with InvalidArgument
// and an unknown route with NotFound, each as a google.rpc.Status.
func TestJSONAPIRefusesWhatIsNoRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole stack")
	}
	s := startStack(t)
	for _, tc := range []struct {
		path, body string
		want       int
	}{
		{"api/ecogrid.v1.CaseService/ListCases", "{not json", http.StatusBadRequest},
		{"api/ecogrid.v1.CaseService/NoSuchMethod", "{}", http.StatusNotFound},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.ConsoleURL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+s.people["supervisor"].token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.want || !bytes.Contains(raw, []byte(`"code"`)) {
			t.Errorf("%s %q: HTTP %d %s, want %d with a status body", tc.path, tc.body, res.StatusCode, raw, tc.want)
		}
	}
	// A request that breaks its proto's rules is HTTP 400 with the
	// status and its google.rpc.BadRequest, one violation per field, as
	// over gRPC (issue 14).
	req, _ := http.NewRequest(http.MethodPost, s.ConsoleURL+"api/ecogrid.v1.CaseService/ListCases",
		strings.NewReader(`{"page":{"pageSize":-1},"handlerId":"someone"}`))
	req.Header.Set("Authorization", "Bearer "+s.people["supervisor"].token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var st struct {
		Code    codes.Code `json:"code"`
		Details []struct {
			Type            string `json:"@type"`
			FieldViolations []struct {
				Field       string `json:"field"`
				Description string `json:"description"`
			} `json:"fieldViolations"`
		} `json:"details"`
	}
	if err := json.Unmarshal(raw, &st); err != nil || res.StatusCode != http.StatusBadRequest || st.Code != codes.InvalidArgument ||
		len(st.Details) != 1 || st.Details[0].Type != "type.googleapis.com/google.rpc.BadRequest" {
		t.Fatalf("rule-breaking request: HTTP %d %s", res.StatusCode, raw)
	}
	fields := map[string]string{}
	for _, v := range st.Details[0].FieldViolations {
		fields[v.Field] = v.Description
	}
	if fields["page.page_size"] == "" || fields["handler_id"] == "" {
		t.Errorf("field violations %v, want page.page_size and handler_id", fields)
	}
	// The document and the console are there, with a CSP that forbids inline script.
	for _, p := range []string{"api/openapi.json", "", "cases/x"} {
		res, err := http.Get(s.ConsoleURL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		csp := res.Header.Get("Content-Security-Policy")
		if res.StatusCode != http.StatusOK || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("/%s: HTTP %d, CSP %q", p, res.StatusCode, csp)
		}
	}
}
