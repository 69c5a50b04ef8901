package fieldsim

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/devstack"
)

func freeAddr(t *testing.T) (string, int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p := l.Addr().(*net.TCPAddr).Port
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), p
}

// startStack runs gridd and cased in this process (the dev stack's
// assembly: demo county, administrator, embedded NATS) on a fresh test
// database.
func startStack(t *testing.T) (devstack.Addresses, string) {
	t.Helper()
	dbURL := dbtest.NewURL(t)
	_, natsPort := freeAddr(t)
	ga, _ := freeAddr(t)
	gm, _ := freeAddr(t)
	ca, _ := freeAddr(t)
	cm, _ := freeAddr(t)
	const pw = "smoke-admin-2026"
	cfg := devstack.Config{DataDir: t.TempDir(), DatabaseURL: dbURL, NATSPort: natsPort,
		GriddAddr: ga, GriddMetric: gm, CasedAddr: ca, CasedMetric: cm, AdminPassword: pw}
	ready := make(chan devstack.Addresses, 1)
	cfg.Ready = func(a devstack.Addresses) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- devstack.Run(ctx, cfg, io.Discard, slog.New(slog.DiscardHandler)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("stack did not stop within a minute")
		}
	})
	select {
	case a := <-ready:
		return a, pw
	case err := <-done:
		t.Fatalf("stack stopped during start: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("stack not ready after 3 minutes")
	}
	return devstack.Addresses{}, ""
}

// TestSmokeInProcessStack runs a handful of inspectors for a few seconds
// against gridd and cased in this process and requires every
// reconciliation to be exact; then runs again with claims the server
// never acknowledged slipped into the tally and requires the
// reconciliation to name each of them, and checks that the second run
// reused the first run's people.
func TestSmokeInProcessStack(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole stack")
	}
	a, pw := startStack(t)
	cfg := DefaultConfig()
	cfg.GriddAddr, cfg.CasedAddr, cfg.DatabaseURL = a.GriddGRPC, a.CasedGRPC, a.DatabaseURL
	cfg.AdminPassword = pw
	cfg.Name = "smoke"
	cfg.Inspectors = 4
	cfg.Duration = 5 * time.Second
	cfg.CallTimeout = 3 * time.Second
	cfg.ThinkTime = 300 * time.Millisecond
	cfg.ViolationShare, cfg.OfflineShare, cfg.PhotoShare, cfg.DropShare = 0.5, 0.3, 0.7, 0.3
	// Calls still failing 10 s after the end are given up (and not
	// claimed): EndPatrol can hang until its deadline (see BENCHMARKS.md).
	cfg.DrainTimeout, cfg.GiveUpAfter = time.Minute, 10*time.Second
	ctx := context.Background()

	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	var out strings.Builder
	res.WriteSummary(&out)
	t.Logf("setup %.1fs, logins %.1fs, workload %.1fs\n%s", res.SetupSeconds, res.LoginSeconds, res.RunSeconds, out.String())
	if !res.Exact() {
		t.Fatalf("reconciliation not exact:\n%s", out.String())
	}
	w, rc := res.Workload, res.Reconciliation
	if w.Reports == 0 || w.Patrols == 0 || w.Photos == 0 || w.Violations == 0 {
		t.Fatalf("the run did too little to prove anything:\n%s", out.String())
	}
	if rc.ReportsStored != int(w.Reports) || rc.ViolationsWithOneCase != int(w.Violations) || rc.PhotosHashMatching != int(w.Photos) {
		t.Errorf("reconciliation counts disagree with the workload:\n%s", out.String())
	}
	if w.Refused != 0 {
		t.Errorf("%d calls refused:\n%s", w.Refused, out.String())
	}
	if len(rc.Ledger) == 0 || !rc.Ledger[0].OK || rc.Ledger[0].Records < int64(w.Violations) {
		t.Errorf("ledger not verified: %+v", rc.Ledger)
	}
	if res.Townships != 10 || res.Supervisors != 10 || res.Inspectors != 4 {
		t.Errorf("county shape %d townships, %d supervisors, %d inspectors", res.Townships, res.Supervisors, res.Inspectors)
	}

	// Second run: slip a report, a photo and a case step that were never
	// acknowledged into the tally when the workload ends.
	ghostReport, ghostStep := uuid.NewString(), uuid.NewString()
	ghostPhoto := strings.Repeat("ab", 32)
	testHookSim = func(s *Sim) {
		cfg2 := &s.cfg
		cfg2.OnWorkloadEnd = func() {
			s.acks.report(ghostReport, ackReport{violation: true})
			s.acks.photo(ghostPhoto, ackPhoto{size: 10, by: s.admin})
			s.acks.step(ackStep{id: ghostStep, caseID: uuid.NewString(), action: "AcceptCase"})
		}
	}
	defer func() { testHookSim = nil }()
	cfg.Duration, cfg.DrainTimeout = time.Second, 3*time.Second
	res2, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	rc2 := res2.Reconciliation
	if rc2.Exact {
		t.Fatal("reconciliation exact although a report, a photo and a step were never stored")
	}
	if rc2.ReportsMissing != 1 || rc2.ReportsStored != rc2.ReportsAcknowledged-1 {
		t.Errorf("missing reports %d (stored %d of %d), want exactly the ghost", rc2.ReportsMissing, rc2.ReportsStored, rc2.ReportsAcknowledged)
	}
	if rc2.PhotosHashMatching != rc2.PhotosAcknowledged-1 || rc2.ViolationsWithOneCase != rc2.Violations-1 ||
		rc2.ViolationLedgerRecords != rc2.Violations-1 || rc2.CaseStepsRecorded != rc2.CaseStepsAcknowledged-1 {
		t.Errorf("ghosts not each found once: %+v", rc2)
	}
	for _, want := range []string{ghostReport, ghostPhoto, ghostStep} {
		if !strings.Contains(strings.Join(rc2.Problems, "\n"), want) {
			t.Errorf("problems do not name %s:\n%s", want, strings.Join(rc2.Problems, "\n"))
		}
	}

	// Both runs used the same 14 people.
	pool, err := database.Open(ctx, database.Config{URL: a.DatabaseURL})
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var people, accounts int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM people.persons WHERE employee_code LIKE 'SIM-%'),
		(SELECT count(*) FROM auth.accounts WHERE username LIKE 'smoke-%')`).Scan(&people, &accounts); err != nil {
		t.Fatal(err)
	}
	if people != 14 || accounts != 14 {
		t.Errorf("after two runs %d simulated persons and %d accounts, want 14 each (4 inspectors, 10 supervisors)", people, accounts)
	}
}
