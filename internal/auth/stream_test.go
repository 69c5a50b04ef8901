package auth_test

import (
	"context"
	"io"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/accounts"
	"ecogrid/internal/scope"
)

// exportProbe is a FieldService whose ExportReports streams back the id
// and roles of the caller the stream interceptor put in the context: it
// tests the stream path of the interceptors, not the field context.
type exportProbe struct {
	ecogridv1.UnimplementedFieldServiceServer
}

func (exportProbe) ExportReports(_ *ecogridv1.ExportReportsRequest, ss grpc.ServerStreamingServer[ecogridv1.ExportReportsResponse]) error {
	c, ok := scope.FromContext(ss.Context())
	if !ok {
		return status.Error(codes.Internal, "no caller in the stream context")
	}
	if err := ss.Send(&ecogridv1.ExportReportsResponse{Data: []byte(c.PersonID)}); err != nil {
		return err
	}
	for _, g := range c.Grants {
		if err := ss.Send(&ecogridv1.ExportReportsResponse{Data: []byte(g.Role)}); err != nil {
			return err
		}
	}
	return nil
}

func TestStreamInterceptor(t *testing.T) {
	h := newHarness(t, accounts.DefaultLimits, func(s *grpc.Server) { ecogridv1.RegisterFieldServiceServer(s, exportProbe{}) })
	field := ecogridv1.NewFieldServiceClient(h.conn)
	read := func(ctx context.Context) ([]string, error) {
		st, err := field.ExportReports(ctx, &ecogridv1.ExportReportsRequest{})
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
			out = append(out, string(m.GetData()))
		}
	}
	off := h.callers[scope.RoleCountyOfficer]
	got, err := read(h.session(t, off))
	if err != nil || len(got) != 2 || got[0] != off.Person.ID || got[1] != string(scope.RoleCountyOfficer) {
		t.Fatalf("stream as county officer = %v, %v; want the caller's id and role", got, err)
	}
	// A person whose only assignment has ended holds no role: the stream
	// is refused at the gate, with the same token that worked before.
	insp := h.callers[scope.RoleInspector]
	ctx := h.session(t, insp)
	if _, err := read(ctx); err != nil {
		t.Fatalf("stream as inspector: %v", err)
	}
	if _, err := h.people.EndAssignment(h.session(t, off), &ecogridv1.EndAssignmentRequest{AssignmentId: insp.Assignment.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := read(ctx); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("stream after the assignment ended = %v; want PermissionDenied", err)
	}
	if _, err := read(context.Background()); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("stream without token = %v; want Unauthenticated", err)
	}
	if _, err := read(withToken(context.Background(), "a.b.c")); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("stream with a bad token = %v; want Unauthenticated", err)
	}
}
