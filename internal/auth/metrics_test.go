package auth_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"ecogrid/internal/accounts"
	"ecogrid/internal/auth"
	"ecogrid/internal/scope"
)

// counter reads one labelled counter of the auth metrics from reg.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// Failed logins and the lockouts they begin are counted for the
// operator's alerts; a lock that has run out is no lock (the next wrong
// password is a plain wrong password, not "try again after" a past time).
func TestLoginFailureAndLockoutMetrics(t *testing.T) {
	limits := accounts.DefaultLimits
	limits.AccountFailures, limits.AccountWindow, limits.AccountLockout = 3, 700*time.Millisecond, time.Second
	h := newHarness(t, limits)
	reg := prometheus.NewRegistry()
	if err := auth.RegisterMetrics(reg); err != nil {
		t.Fatal(err)
	}
	failures := func() float64 { return counter(t, reg, "ecogrid_auth_login_failures_total", "reason", "credentials") }
	locked := func() float64 { return counter(t, reg, "ecogrid_auth_login_failures_total", "reason", "locked") }
	lockouts := func() float64 { return counter(t, reg, "ecogrid_auth_lockouts_total", "key", "account") }
	f0, l0, o0 := failures(), locked(), lockouts()

	insp := h.callers[scope.RoleInspector]
	for range 2 {
		if _, err := h.login(insp.Username, "wrong password"); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("wrong password = %v", err)
		}
	}
	if _, err := h.login(insp.Username, "wrong password"); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("third failure = %v; want the lockout", err)
	}
	if _, err := h.login(insp.Username, insp.Password); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("login while locked = %v", err)
	}
	if f, l, o := failures()-f0, locked()-l0, lockouts()-o0; f != 3 || l != 1 || o != 1 {
		t.Fatalf("counted %v wrong credentials, %v refused while locked, %v lockouts; want 3, 1, 1", f, l, o)
	}
	time.Sleep(1100 * time.Millisecond) // lock and window have run out
	if _, err := h.login(insp.Username, "wrong password"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("a wrong password after the lock ran out = %v; want Unauthenticated", err)
	}
	if o := lockouts() - o0; o != 1 {
		t.Fatalf("lockouts = %v after the lock ran out; want still 1", o)
	}
}
