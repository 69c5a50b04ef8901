package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/accounts"
	"ecogrid/internal/assessment"
	"ecogrid/internal/audit"
	"ecogrid/internal/auth"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/departments"
	"ecogrid/internal/grid"
	"ecogrid/internal/ledger"
	"ecogrid/internal/people"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
	"ecogrid/internal/server"
	"ecogrid/internal/webhooks"
)

// harness is a real gridd-style server (the lead's interceptor chain with
// the auth interceptors) serving PeopleService and AuthService on a fresh
// database with the two-county test grid.
type harness struct {
	pool   *pgxpool.Pool
	grid   peopletest.Grid
	tokens *auth.Tokens
	priv   ed25519.PrivateKey
	conn   *grpc.ClientConn
	people ecogridv1.PeopleServiceClient
	grid_  ecogridv1.GridServiceClient
	audit  ecogridv1.AccountabilityServiceClient
	tenure ecogridv1.AuditServiceClient
	// departments and webhooks: issue 16's management services.
	departments ecogridv1.DepartmentServiceClient
	webhooks    ecogridv1.WebhookServiceClient
	auth        ecogridv1.AuthServiceClient
	authz       *auth.Authorizer
	assess      ecogridv1.AssessmentServiceClient
	// residents: one inspector with an account per village, by village code.
	residents map[string]peopletest.Member
	// callers by role: inspector and grid chief at A1a, supervisor at A1,
	// county officer and administrator at county A.
	callers map[scope.Role]peopletest.Member
}

var testTokenConfig = auth.TokenConfig{Issuer: "ecogrid-test", Audience: "ecogrid", AccessTTL: 5 * time.Minute, Leeway: 5 * time.Second}

// newHarness starts the server; register adds further services (test
// probes) before it starts.
func newHarness(t *testing.T, limits accounts.Limits, register ...func(*grpc.Server)) *harness {
	t.Helper()
	pool := dbtest.NewPool(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{pool: pool, grid: peopletest.InsertGrid(t, pool), priv: priv, residents: map[string]peopletest.Member{}, callers: map[scope.Role]peopletest.Member{}}
	h.tokens = auth.NewTokens(testTokenConfig, auth.NewKeys(priv))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h.authz = auth.NewAuthorizer(h.tokens, pool, log)

	srv, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0"}, log, server.Options{AuthUnary: h.authz.Unary(), AuthStream: h.authz.Stream()})
	if err != nil {
		t.Fatal(err)
	}
	ecogridv1.RegisterPeopleServiceServer(srv.GRPC, people.NewService(pool, grid.NewStore(pool, grid.Config{}), nil, peopletest.Hasher, log))
	ecogridv1.RegisterAuthServiceServer(srv.GRPC, auth.NewService(pool, h.tokens, peopletest.Hasher, limits, auth.DefaultSessionConfig, log))
	ecogridv1.RegisterGridServiceServer(srv.GRPC, grid.NewService(grid.NewStore(pool, grid.Config{}), grid.NewIndex(pool, log), grid.ServiceConfig{}, log))
	ledgerPriv, _, err := ledger.NewKeyPair("ecogrid-test")
	if err != nil {
		t.Fatal(err)
	}
	ledgerKeys, err := ledger.LoadKeys(ledger.KeyConfig{PrivateKey: ledgerPriv})
	if err != nil {
		t.Fatal(err)
	}
	led := ledger.New(pool, ledgerKeys, ledger.Config{}, log)
	ecogridv1.RegisterAccountabilityServiceServer(srv.GRPC, ledger.NewService(led, log))
	ecogridv1.RegisterAuditServiceServer(srv.GRPC, audit.NewService(audit.New(pool, led), log))
	ecogridv1.RegisterDepartmentServiceServer(srv.GRPC, departments.NewService(pool, log))
	ecogridv1.RegisterWebhookServiceServer(srv.GRPC, webhooks.NewService(pool, log))
	ecogridv1.RegisterAssessmentServiceServer(srv.GRPC, assessment.NewService(assessment.New(pool, led), log))
	for _, r := range register {
		r(srv.GRPC)
	}
	if err := auth.CheckServer(srv.GRPC); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	h.conn, err = grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.conn.Close() })
	h.people = ecogridv1.NewPeopleServiceClient(h.conn)
	h.auth = ecogridv1.NewAuthServiceClient(h.conn)
	h.grid_ = ecogridv1.NewGridServiceClient(h.conn)
	h.audit = ecogridv1.NewAccountabilityServiceClient(h.conn)
	h.tenure = ecogridv1.NewAuditServiceClient(h.conn)
	h.departments = ecogridv1.NewDepartmentServiceClient(h.conn)
	h.webhooks = ecogridv1.NewWebhookServiceClient(h.conn)
	h.assess = ecogridv1.NewAssessmentServiceClient(h.conn)

	for _, v := range []string{peopletest.VillageA1a, peopletest.VillageA1b, peopletest.VillageA2a, peopletest.VillageB1a} {
		h.residents[v] = peopletest.AddMember(t, pool, h.grid[v], scope.RoleInspector, "inspector of "+v, "insp"+v)
	}
	h.callers[scope.RoleInspector] = h.residents[peopletest.VillageA1a]
	h.callers[scope.RoleGridChief] = peopletest.AddMember(t, pool, h.grid[peopletest.VillageA1a], scope.RoleGridChief, "grid chief", "chief")
	h.callers[scope.RoleTownshipSupervisor] = peopletest.AddMember(t, pool, h.grid[peopletest.TownshipA1], scope.RoleTownshipSupervisor, "supervisor", "supervisor")
	h.callers[scope.RoleCountyOfficer] = peopletest.AddMember(t, pool, h.grid[peopletest.CountyA], scope.RoleCountyOfficer, "county officer", "officer")
	h.callers[scope.RoleAdmin] = peopletest.AddMember(t, pool, h.grid[peopletest.CountyA], scope.RoleAdmin, "administrator", "admin")
	return h
}

// session opens a session for m directly in the database and returns a
// context carrying its access token.
func (h *harness) session(t *testing.T, m peopletest.Member) context.Context {
	t.Helper()
	sid := uuid.NewString()
	if _, err := h.pool.Exec(context.Background(), `INSERT INTO auth.sessions (id, account_id, person_id, expires_at)
		VALUES ($1, $2, $3, now() + interval '1 day')`, sid, m.AccountID, m.Person.ID); err != nil {
		t.Fatal(err)
	}
	tok, _, err := h.tokens.Issue(m.AccountID, m.Person.ID, sid, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return withToken(context.Background(), tok)
}

func withToken(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// freshPerson creates a person of county with no assignment.
func (h *harness) freshPerson(t *testing.T, county string) people.Person {
	t.Helper()
	p, _, err := people.NewStore(h.pool, nil).CreatePerson(context.Background(), people.SystemActor,
		people.Person{ID: uuid.NewString(), CountyCode: county, Name: "new hire " + county})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// freshAssignment assigns a new person as inspector at village.
func (h *harness) freshAssignment(t *testing.T, village string) people.Assignment {
	t.Helper()
	return peopletest.AddMember(t, h.pool, h.grid[village], scope.RoleInspector, "temporary inspector", "").Assignment
}

func withRawAuth(v string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", v)
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }

// bearerOf returns the authorization header value of an outgoing context.
func bearerOf(t *testing.T, ctx context.Context) string {
	t.Helper()
	md, _ := metadata.FromOutgoingContext(ctx)
	v := md.Get("authorization")
	if len(v) != 1 {
		t.Fatalf("no authorization header in %v", md)
	}
	return v[0]
}
