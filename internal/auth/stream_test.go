package auth_test

import (
	"context"
	"io"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/auth/account"
	"ecogrid/internal/scope"
)

// exportProbe is an AccountabilityService whose Export streams back the id
// and roles of the caller the stream interceptor put in the context: it
// tests the stream path of the interceptors, not the ledger context.
type exportProbe struct {
	ecogridv1.UnimplementedAccountabilityServiceServer
}

func (exportProbe) Export(_ *ecogridv1.ExportRequest, ss grpc.ServerStreamingServer[ecogridv1.ExportResponse]) error {
	c, ok := scope.FromContext(ss.Context())
	if !ok {
		return status.Error(codes.Internal, "no caller in the stream context")
	}
	if err := ss.Send(&ecogridv1.ExportResponse{Chunk: []byte(c.PersonID)}); err != nil {
		return err
	}
	for _, g := range c.Grants {
		if err := ss.Send(&ecogridv1.ExportResponse{Chunk: []byte(g.Role)}); err != nil {
			return err
		}
	}
	return nil
}

func TestStreamInterceptor(t *testing.T) {
	h := newHarness(t, account.DefaultLimits, func(s *grpc.Server) { ecogridv1.RegisterAccountabilityServiceServer(s, exportProbe{}) })
	audit := ecogridv1.NewAccountabilityServiceClient(h.conn)
	read := func(ctx context.Context) ([]string, error) {
		st, err := audit.Export(ctx, &ecogridv1.ExportRequest{})
		if err != nil {
			return nil, err
		}
		var out []string
		for {
			m, err := st.Recv()
			if err == io.EOF {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			out = append(out, string(m.GetChunk()))
		}
	}
	off := h.callers[scope.RoleCountyOfficer]
	got, err := read(h.session(t, off))
	if err != nil || len(got) != 2 || got[0] != off.Person.ID || got[1] != string(scope.RoleCountyOfficer) {
		t.Fatalf("stream as county officer = %v, %v; want the caller's id and role", got, err)
	}
	if _, err := read(h.session(t, h.callers[scope.RoleTownshipSupervisor])); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("stream as supervisor = %v; want PermissionDenied (the ledger is the county office's)", err)
	}
	if _, err := read(context.Background()); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("stream without token = %v; want Unauthenticated", err)
	}
	if _, err := read(withToken(context.Background(), "a.b.c")); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("stream with a bad token = %v; want Unauthenticated", err)
	}
}
