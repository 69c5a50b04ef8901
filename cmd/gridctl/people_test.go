package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/accounts"
	"ecogrid/internal/accounts/password"
	"ecogrid/internal/auth"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/grid"
	"ecogrid/internal/people"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
	"ecogrid/internal/server"
)

func captureStdout(t *testing.T, fn func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	err = fn()
	w.Close()
	os.Stdout = old
	var buf bytes.Buffer
	io.Copy(&buf, r) //nolint:errcheck
	return buf.String(), err
}

func TestUsersBootstrapAdmin(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	url := pool.Config().ConnString()
	out, err := captureStdout(t, func() error {
		return runUsers(ctx, []string{"bootstrap-admin", "-database-url", url, "-county", "130123", "-username", "Root", "-name", "系统管理员"})
	})
	if err != nil {
		t.Fatalf("bootstrap-admin: %v\n%s", err, out)
	}
	pw := regexp.MustCompile(`(?m)^password\s+(\S+)$`).FindStringSubmatch(out)
	if pw == nil {
		t.Fatalf("no generated password in the output:\n%s", out)
	}
	a, err := accounts.ByUsername(ctx, pool, "root")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, a.PasswordHash) {
		t.Fatal("the output shows the password hash")
	}
	if _, err := password.NewHasher(password.Default, 1).Verify(pw[1], a.PasswordHash); err != nil {
		t.Fatalf("the printed password does not match the stored hash: %v", err)
	}
	grants, err := people.ActiveGrants(ctx, pool, a.PersonID, time.Now())
	if err != nil || len(grants) != 1 || grants[0].Role != scope.RoleAdmin || grants[0].NodeCode != "130123" {
		t.Fatalf("grants of the administrator = %+v, %v", grants, err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM ledger.records WHERE county_code = '130123' AND actor_role = 'system'`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("ledger records of the bootstrap = %d, %v; want 3 (person, account, assignment)", n, err)
	}
	// A second bootstrap with the same name is refused.
	if _, err := captureStdout(t, func() error {
		return runUsers(ctx, []string{"bootstrap-admin", "-database-url", url, "-county", "130123", "-username", "root"})
	}); err == nil {
		t.Fatal("a second bootstrap with the same username succeeded")
	}
}

// TestUsersCommandsThroughServer: bootstrap an administrator, log in with
// the printed password, create a person with an account, assign, list the
// history and end the assignment, all through a real server with the auth
// interceptors.
func TestUsersCommandsThroughServer(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	url := pool.Config().ConnString()
	var villageID string
	for i, code := range []string{"130123", "130123101", "130123101201"} {
		n := peopletest.InsertNode(t, pool, code, "node "+code, float64(i))
		villageID = n.ID
	}
	out, err := captureStdout(t, func() error {
		return runUsers(ctx, []string{"bootstrap-admin", "-database-url", url, "-county", "130123", "-username", "root"})
	})
	if err != nil {
		t.Fatal(err)
	}
	pw := regexp.MustCompile(`(?m)^password\s+(\S+)$`).FindStringSubmatch(out)[1]

	pemKey, _ := auth.GenerateKeyPEM()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	authz, authSvc, err := auth.New(auth.Config{Keys: auth.KeyConfig{PrivateKeyPEM: string(pemKey)}}, pool, log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{GRPCAddr: "127.0.0.1:0"}, log, server.Options{AuthUnary: authz.Unary(), AuthStream: authz.Stream()})
	if err != nil {
		t.Fatal(err)
	}
	ecogridv1.RegisterAuthServiceServer(srv.GRPC, authSvc)
	ecogridv1.RegisterPeopleServiceServer(srv.GRPC, people.NewService(pool, grid.NewStore(pool, grid.Config{}), nil, peopletest.Hasher, log))
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(sctx) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := []string{"-addr", srv.Addr()}

	// login reads the password from stdin and prints only the token.
	r, w, _ := os.Pipe()
	w.WriteString(pw + "\n") //nolint:errcheck
	w.Close()
	oldIn := os.Stdin
	os.Stdin = r
	out, err = captureStdout(t, func() error { return runUsers(ctx, append([]string{"login", "-username", "root"}, addr...)) })
	os.Stdin = oldIn
	if err != nil {
		t.Fatalf("users login: %v", err)
	}
	token := strings.TrimSpace(out)
	if strings.Count(token, ".") != 2 || strings.Contains(token, "\n") {
		t.Fatalf("users login printed %q; want one JWT", out)
	}
	tok := []string{"-token", token}

	out, err = captureStdout(t, func() error {
		return runUsers(ctx, append(append([]string{"create", "-county", "130123", "-name", "网格员 张", "-username", "zhang"}, addr...), tok...))
	})
	if err != nil {
		t.Fatalf("users create: %v\n%s", err, out)
	}
	personID := regexp.MustCompile(`(?m)^person_id\s+(\S+)$`).FindStringSubmatch(out)[1]
	if !regexp.MustCompile(`(?m)^password\s+\S{16}$`).MatchString(out) {
		t.Fatalf("users create did not print the generated password once:\n%s", out)
	}
	out, err = captureStdout(t, func() error {
		return runUsers(ctx, append(append([]string{"assign", "-person", personID, "-node", villageID, "-role", "inspector", "-tasks", "patrol;river"}, addr...), tok...))
	})
	if err != nil {
		t.Fatalf("users assign: %v", err)
	}
	assignmentID := strings.Fields(out)[0]
	out, err = captureStdout(t, func() error {
		return runUsers(ctx, append(append([]string{"end-assignment", "-assignment", assignmentID, "-reason", "moved"}, addr...), tok...))
	})
	if err != nil || !strings.Contains(out, "last assignment") {
		t.Fatalf("users end-assignment = %v\n%s", err, out)
	}
	out, err = captureStdout(t, func() error {
		return runUsers(ctx, append(append([]string{"history", "-person", personID}, addr...), tok...))
	})
	if err != nil || !strings.Contains(out, assignmentID) || strings.Contains(out, "open") {
		t.Fatalf("users history = %v\n%s", err, out)
	}
	if _, err := captureStdout(t, func() error { return runUsers(ctx, append([]string{"whoami"}, addr...)) }); err == nil {
		t.Fatal("whoami without a token succeeded")
	}
}
