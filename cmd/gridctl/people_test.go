package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"ecogrid/internal/auth/account"
	"ecogrid/internal/auth/password"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/people"
	"ecogrid/internal/scope"
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
	a, err := account.ByUsername(ctx, pool, "root")
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
