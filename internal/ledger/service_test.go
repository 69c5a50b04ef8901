package ledger_test

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/ledger"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

func officer(county string) context.Context {
	return scope.NewContext(context.Background(), scope.Caller{PersonID: uuid.NewString(),
		Grants: []scope.Grant{{Role: scope.RoleCountyOfficer, NodeID: uuid.NewString(), NodeCode: county}}})
}

func TestHistories(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	svc := ledger.NewService(f.ledger, nil)
	alice, bob := uuid.NewString(), uuid.NewString()
	caseID := uuid.NewString()
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	add := func(county, actor, action, subjectType, subjectID, node string, at time.Time, responsible ...string) {
		e := ledger.Entry{CountyCode: county, ActorID: actor, ActorRole: "inspector", ActorNodeCode: node, Action: action,
			SubjectType: subjectType, SubjectID: subjectID, NodeCode: node, At: at}
		if actor == "" {
			e.ActorRole = "" // the system
		}
		for _, p := range responsible {
			e.Responsible = append(e.Responsible, ledger.Responsible{PersonID: p, Name: "x", Role: "grid_chief", NodeCode: node[:9]})
		}
		appendOne(t, f.pool, e)
	}
	// Alice works in village 001001 of 330106, then transfers to county 330110.
	for i := range 7 {
		add(county, alice, "report.filed", "report", uuid.NewString(), "330106001001", t0.Add(time.Duration(i)*time.Hour))
	}
	add(county, bob, "report.filed", "report", caseID, "330106002003", t0.Add(10*time.Hour), alice)
	add(county, bob, "case.opened", "case", caseID, "330106002003", t0.Add(11*time.Hour), alice, bob)
	add(county, "", "case.escalated", "case", caseID, "330106002003", t0.Add(12*time.Hour), alice)
	add("330110", alice, "assignment.started", "assignment", uuid.NewString(), "330110001", t0.Add(24*time.Hour))

	ctx := officer(county)
	// A person's history within the officer's county, paged.
	var got []*ecogridv1.LedgerRecord
	token := ""
	for {
		resp, err := svc.PersonHistory(ctx, &ecogridv1.PersonHistoryRequest{PersonId: alice, Page: &ecogridv1.PageRequest{PageSize: 4, PageToken: token}})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, resp.Records...)
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	if len(got) != 10 {
		t.Fatalf("alice's history in %s: %d records, want 10", county, len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("history out of order at %d", i)
		}
	}
	// Across the transfer, an administrator sees both counties.
	admin := scope.NewContext(context.Background(), scope.Caller{Grants: []scope.Grant{{Role: scope.RoleAdmin}}})
	resp, err := svc.PersonHistory(admin, &ecogridv1.PersonHistoryRequest{PersonId: alice, Page: &ecogridv1.PageRequest{PageSize: 100}})
	if err != nil || len(resp.Records) != 11 || resp.Records[10].CountyCode != "330110" {
		t.Fatalf("admin: %d records, err %v", len(resp.GetRecords()), err)
	}
	// The other county's officer sees only the other county.
	resp, err = svc.PersonHistory(officer("330110"), &ecogridv1.PersonHistoryRequest{PersonId: alice})
	if err != nil || len(resp.Records) != 1 {
		t.Fatalf("330110 officer: %d records, err %v", len(resp.GetRecords()), err)
	}
	// Filters: action prefix and time range.
	resp, err = svc.PersonHistory(ctx, &ecogridv1.PersonHistoryRequest{PersonId: alice, Filter: &ecogridv1.HistoryFilter{Actions: []string{"case.*"}}})
	if err != nil || len(resp.Records) != 2 {
		t.Fatalf("case.* filter: %d records, err %v", len(resp.GetRecords()), err)
	}
	resp, err = svc.PersonHistory(ctx, &ecogridv1.PersonHistoryRequest{PersonId: alice, Filter: &ecogridv1.HistoryFilter{
		FromTime: timestamppb.New(t0.Add(2 * time.Hour)), ToTime: timestamppb.New(t0.Add(5 * time.Hour))}})
	if err != nil || len(resp.Records) != 3 {
		t.Fatalf("time filter: %d records, err %v", len(resp.GetRecords()), err)
	}
	// Node subtree.
	nresp, err := svc.NodeHistory(ctx, &ecogridv1.NodeHistoryRequest{NodeCode: "330106002"})
	if err != nil || len(nresp.Records) != 3 {
		t.Fatalf("node history: %d, err %v", len(nresp.GetRecords()), err)
	}
	if nresp, err := svc.NodeHistory(ctx, &ecogridv1.NodeHistoryRequest{NodeCode: "330106"}); err != nil || len(nresp.Records) != 10 {
		t.Fatalf("county node history: %d, err %v", len(nresp.GetRecords()), err)
	}
	// Subject.
	sresp, err := svc.SubjectHistory(ctx, &ecogridv1.SubjectHistoryRequest{SubjectType: "case", SubjectId: caseID})
	if err != nil || len(sresp.Records) != 2 || sresp.Records[1].ActorId != "" || sresp.Records[1].ActorRole != "system" {
		t.Fatalf("subject history: %v, err %v", sresp.GetRecords(), err)
	}
	if len(sresp.Records[0].Responsible) != 2 || sresp.Records[0].PayloadJson != "{}" {
		t.Fatalf("record detail: %v", sresp.Records[0])
	}

	// Outside the caller's county: not found, not forbidden.
	other := officer("330110")
	for name, err := range map[string]error{
		"node":        second(svc.NodeHistory(other, &ecogridv1.NodeHistoryRequest{NodeCode: "330106002"})),
		"subject":     second(svc.SubjectHistory(other, &ecogridv1.SubjectHistoryRequest{SubjectType: "case", SubjectId: caseID})),
		"verify":      second(svc.VerifyChain(other, &ecogridv1.VerifyChainRequest{CountyCode: county})),
		"checkpoints": second(svc.ListCheckpoints(other, &ecogridv1.ListCheckpointsRequest{CountyCode: county})),
		"sign":        second(svc.SignCheckpoint(other, &ecogridv1.SignCheckpointRequest{CountyCode: county})),
	} {
		if structerr.Code(err) != codes.NotFound {
			t.Errorf("%s outside scope: %v, want NotFound", name, err)
		}
	}
	inspector := scope.NewContext(context.Background(), scope.Caller{Grants: []scope.Grant{{Role: scope.RoleInspector, NodeCode: "330106001001"}}})
	if _, err := svc.PersonHistory(inspector, &ecogridv1.PersonHistoryRequest{PersonId: alice}); structerr.Code(err) != codes.PermissionDenied {
		t.Errorf("inspector reading the ledger: %v", err)
	}
	if _, err := svc.PersonHistory(context.Background(), &ecogridv1.PersonHistoryRequest{PersonId: alice}); structerr.Code(err) != codes.Unauthenticated {
		t.Errorf("no caller: %v", err)
	}
	if _, err := svc.PersonHistory(ctx, &ecogridv1.PersonHistoryRequest{PersonId: alice, Page: &ecogridv1.PageRequest{PageToken: "garbage!"}}); structerr.Code(err) != codes.InvalidArgument {
		t.Errorf("bad token: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestServiceOverGRPC(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.build(t)
	// The auth interceptor's job, done here by a tiny stand-in.
	caller := scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleCountyOfficer, NodeCode: county}}}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			resp, err := h(scope.NewContext(ctx, caller), req)
			return resp, structerr.ToStatus(err)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			return structerr.ToStatus(h(srv, &callerStream{ServerStream: ss, ctx: scope.NewContext(ss.Context(), caller)}))
		}))
	ecogridv1.RegisterAccountabilityServiceServer(srv, ledger.NewService(f.ledger, nil))
	go srv.Serve(lis) //nolint:errcheck
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ecogridv1.NewAccountabilityServiceClient(conn)
	ctx := context.Background()

	key, err := client.GetPublicKey(ctx, &ecogridv1.GetPublicKeyRequest{})
	if err != nil || key.PublicKey != f.pub || key.KeyName != "test-ledger" {
		t.Fatalf("public key %v err %v", key, err)
	}
	f.append(t, 2)
	signed, err := client.SignCheckpoint(ctx, &ecogridv1.SignCheckpointRequest{CountyCode: county})
	if err != nil || signed.Checkpoint.Size != 42 || signed.Checkpoint.PrevSize != 40 || len(signed.Checkpoint.ConsistencyProof) == 0 {
		t.Fatalf("sign: %v err %v", signed, err)
	}
	list, err := client.ListCheckpoints(ctx, &ecogridv1.ListCheckpointsRequest{CountyCode: county, Page: &ecogridv1.PageRequest{PageSize: 3}})
	if err != nil || len(list.Checkpoints) != 3 || list.NextPageToken == "" {
		t.Fatalf("list: %v err %v", list, err)
	}
	list, err = client.ListCheckpoints(ctx, &ecogridv1.ListCheckpointsRequest{CountyCode: county, Page: &ecogridv1.PageRequest{PageSize: 3, PageToken: list.NextPageToken}})
	if err != nil || len(list.Checkpoints) != 1 || list.Checkpoints[0].Size != 42 || list.NextPageToken != "" {
		t.Fatalf("list page 2: %v err %v", list, err)
	}
	v, err := client.VerifyChain(ctx, &ecogridv1.VerifyChainRequest{CountyCode: county})
	if err != nil || !v.Ok || v.FirstBadSeq != -1 || v.Records != 42 || v.LastCheckpoint.GetSize() != 42 {
		t.Fatalf("verify: %v err %v", v, err)
	}
	stream, err := client.Export(ctx, &ecogridv1.ExportRequest{CountyCode: county})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for {
		m, err := stream.Recv()
		if err != nil {
			if status.Code(err) != codes.OK && err.Error() != "EOF" {
				t.Fatal(err)
			}
			break
		}
		buf.Write(m.Chunk)
	}
	if res := f.verifyExport(t, buf.Bytes()); !res.OK() || res.Records != 42 {
		t.Fatalf("exported over gRPC: %+v %v", res, res.Defect)
	}
	f.asSuperuser(t, `UPDATE ledger.records SET node_code = '330106009009' WHERE seq = 7`)
	v, err = client.VerifyChain(ctx, &ecogridv1.VerifyChainRequest{CountyCode: county})
	if err != nil || v.Ok || v.FirstBadSeq != 7 {
		t.Fatalf("verify tampered: %v err %v", v, err)
	}
	if _, err := client.Export(ctx, &ecogridv1.ExportRequest{CountyCode: "330110"}); err != nil {
		t.Fatal(err) // the error arrives with the first Recv
	}
}

type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *callerStream) Context() context.Context { return s.ctx }
