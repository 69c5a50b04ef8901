//go:build faults

package faults

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ecogrid/internal/fieldsim"
	"ecogrid/internal/messaging"
)

// Scenario durations and sizes come from the environment, so that
// scripts/faults.sh can run the full version (5 minutes, 500 inspectors,
// a kill every 30 s, NATS down for 60 s) or a short one.
func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", name, v, err)
		}
		return d
	}
	return def
}

func envInt(t *testing.T, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", name, v, err)
		}
		return n
	}
	return def
}

// scenario is one kind of fault, injected from the moment the workload
// starts until stop is closed; it must leave the stack healthy.
type scenario struct {
	name   string
	inject func(ctx context.Context, t *testing.T, s *Stack, stop <-chan struct{}) (faults int)
}

// natsNodesOf names the scenarios that run on a stack whose NATS is a
// cluster of that many nodes (a stack of its own, started after the
// single server's scenarios); the others run on one NATS server.
var natsNodesOf = map[string]int{"nats-node-kill": 3, "nats-leader-kill": 3}

// withReplicas names the scenarios run with two gridd and two cased
// (fieldsim spreading its calls over both), checked for double work.
var withReplicas = map[string]bool{"replicas-sigkill": true}

// every runs f every period until stop.
func every(stop <-chan struct{}, period time.Duration, f func()) int {
	n := 0
	for {
		select {
		case <-stop:
			return n
		case <-time.After(period):
			f()
			n++
		}
	}
}

// TestFaults brings up a private stack and, for each scenario, runs
// fieldsim while injecting the fault, then requires every reconciliation
// to be exact: nothing acknowledged lost, nothing duplicated, one case
// per violation, every case step recorded once, the ledger verifying.
func TestFaults(t *testing.T) {
	duration := envDuration(t, "FAULTS_DURATION", 5*time.Minute)
	inspectors := envInt(t, "FAULTS_INSPECTORS", 500)
	killEvery := envDuration(t, "FAULTS_KILL_EVERY", 30*time.Second)
	natsOutage := envDuration(t, "FAULTS_NATS_OUTAGE", 60*time.Second)
	pgEvery := envDuration(t, "FAULTS_PG_EVERY", 60*time.Second)
	think := envDuration(t, "FAULTS_THINK", fieldsim.DefaultConfig().ThinkTime)
	natsKillEvery := envDuration(t, "FAULTS_NATS_KILL_EVERY", 30*time.Second)
	natsNodeDown := envDuration(t, "FAULTS_NATS_NODE_DOWN", 10*time.Second)
	only := os.Getenv("FAULTS_SCENARIOS")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	// FAULTS_BIN names a folder with already built gridd, cased and
	// gridctl (to test exactly those binaries); by default they are built.
	bin := os.Getenv("FAULTS_BIN")
	if bin == "" {
		bin = t.TempDir()
		if err := Build(ctx, root, bin); err != nil {
			t.Fatal(err)
		}
	}
	dir := os.Getenv("FAULTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	// One stack per kind of NATS, started when its first scenario comes
	// (the cluster's in dir/nats-cluster-stack) and stopped when the
	// other kind's begin.
	var s *Stack
	var used []*Stack
	stackFor := func(natsNodes int) *Stack {
		if s != nil && (s.cluster != nil) == (natsNodes > 1) {
			return s
		}
		if s != nil {
			s.Stop()
		}
		sdir := dir
		if natsNodes > 1 {
			sdir = filepath.Join(dir, "nats-cluster-stack")
		}
		var err error
		if s, err = StartWith(ctx, sdir, bin, os.Stderr, Options{NATSNodes: natsNodes}); err != nil {
			t.Fatal(err)
		}
		used = append(used, s)
		return s
	}
	defer func() {
		if s != nil {
			s.Stop()
		}
	}()
	// natsNodeKill shuts a node of the cluster down every natsKillEvery
	// for natsNodeDown: the VIOLATIONS stream's leader or a follower.
	natsNodeKill := func(leader bool) func(ctx context.Context, t *testing.T, s *Stack, stop <-chan struct{}) int {
		return func(ctx context.Context, t *testing.T, s *Stack, stop <-chan struct{}) int {
			return every(stop, natsKillEvery, func() {
				o, err := s.KillNATSNode(ctx, messaging.StreamViolations, leader, natsNodeDown)
				if err != nil {
					t.Errorf("NATS node outage: %v", err)
					return
				}
				if o.Replicas != messaging.ClusterReplicas {
					t.Errorf("stream %s has %d replicas on the cluster, want %d", o.StreamName, o.Replicas, messaging.ClusterReplicas)
				}
				fmt.Fprintf(os.Stderr, "faults: %s\n", o)
			})
		}
	}

	scenarios := []scenario{
		// The same workload with no fault: the figures to compare with.
		{"baseline", func(ctx context.Context, t *testing.T, s *Stack, stop <-chan struct{}) int {
			<-stop
			return 0
		}},
		{"gridd-sigkill", func(ctx context.Context, t *testing.T, s *Stack, stop <-chan struct{}) int {
			return every(stop, killEvery, func() {
				if err := s.Gridd.Restart(ctx); err != nil {
					t.Errorf("restarting gridd: %v", err)
				}
			})
		}},
		{"cased-sigkill", func(ctx context.Context, t *testing.T, s *Stack, stop <-chan struct{}) int {
			return every(stop, killEvery, func() {
				if err := s.Cased.Restart(ctx); err != nil {
					t.Errorf("restarting cased: %v", err)
				}
			})
		}},
		{"nats-outage", func(ctx context.Context, t *testing.T, s *Stack, stop <-chan struct{}) int {
			// One outage of natsOutage, starting a quarter into the run.
			select {
			case <-stop:
				return 0
			case <-time.After(duration / 4):
			}
			s.StopNATS()
			fmt.Fprintf(os.Stderr, "faults: NATS stopped for %s\n", natsOutage)
			time.Sleep(natsOutage) // even past the workload's end: the pipeline must catch up afterwards
			if err := s.StartNATS(); err != nil {
				t.Errorf("restarting NATS: %v", err)
			}
			fmt.Fprintln(os.Stderr, "faults: NATS back")
			return 1
		}},
		{"postgres-immediate", func(ctx context.Context, t *testing.T, s *Stack, stop <-chan struct{}) int {
			return every(stop, pgEvery, func() {
				start := time.Now()
				if err := s.CrashPostgres(ctx); err != nil {
					t.Errorf("crashing PostgreSQL: %v", err)
				}
				fmt.Fprintf(os.Stderr, "faults: PostgreSQL immediate shutdown and restart took %s\n", time.Since(start).Round(time.Millisecond))
			})
		}},
		// NATS as a 3-node cluster with R3 streams: a follower of the
		// VIOLATIONS stream shut down and restarted, then its leader.
		{"nats-node-kill", natsNodeKill(false)},
		{"nats-leader-kill", natsNodeKill(true)},
		// Two gridd and two cased; one of each SIGKILLed every killEvery,
		// the first replicas, then the second ones, and so on.
		{"replicas-sigkill", func(ctx context.Context, t *testing.T, s *Stack, stop <-chan struct{}) int {
			return killReplicas(ctx, t, s, stop, killEvery)
		}},
	}

	// The single server's scenarios first, then the cluster's: each kind
	// of stack is started once.
	slices.SortStableFunc(scenarios, func(a, b scenario) int { return cmp.Compare(natsNodesOf[a.name], natsNodesOf[b.name]) })
	var summary []string
	for _, sc := range scenarios {
		if only != "" && !strings.Contains(","+only+",", ","+sc.name+",") {
			continue
		}
		s := stackFor(natsNodesOf[sc.name])
		t.Run(sc.name, func(t *testing.T) {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			var injected int
			var watch *replicaWatch
			if withReplicas[sc.name] {
				if err := s.AddReplicas(ctx); err != nil {
					t.Fatalf("starting the second replicas: %v", err)
				}
				defer s.RemoveReplicas()
				var err error
				if watch, err = startReplicaWatch(ctx, s); err != nil {
					t.Fatal(err)
				}
				defer watch.close()
			}
			cfg := fieldsim.DefaultConfig()
			cfg.GriddAddr, cfg.CasedAddr, cfg.DatabaseURL = Addrs(s.Gridds), Addrs(s.Caseds), s.DatabaseURL
			cfg.AdminUser, cfg.AdminPassword = s.AdminUser, s.AdminPassword
			cfg.Name = "faults"
			cfg.Inspectors, cfg.Duration, cfg.ThinkTime = inspectors, duration, think
			cfg.DrainTimeout = 3*time.Minute + natsOutage
			cfg.Progress = os.Stderr
			cfg.OnWorkloadStart = func() {
				wg.Go(func() { injected = sc.inject(ctx, t, s, stop) })
				if watch != nil {
					wg.Go(func() { watch.makeOverdue(ctx, stop) })
				}
			}
			cfg.OnWorkloadEnd = func() {
				close(stop)
				wg.Wait()
				// Whatever was hurt must serve again before the reconciliation.
				if err := s.StartNATS(); err != nil {
					t.Errorf("NATS: %v", err)
				}
				for _, p := range s.Procs() {
					if err := p.Healthy(ctx); err != nil {
						t.Errorf("%s: %v", p.Name, err)
					}
				}
			}
			res, err := fieldsim.Run(ctx, cfg)
			if res != nil {
				res.WriteSummary(os.Stdout)
			}
			if err != nil {
				t.Fatalf("fieldsim: %v", err)
			}
			rc := res.Reconciliation
			chains := "ledger verified"
			for _, l := range rc.Ledger {
				if !l.OK {
					chains = "LEDGER FAILED " + l.Message
				}
			}
			line := fmt.Sprintf("%-20s faults %3d | reports acknowledged %6d stored %6d missing %d duplicated %d | photos %5d/%5d hash ok | cases %5d/%5d violations, %d extra | steps %5d/%5d | %s (%d records) | gridd exits %d, cased exits %d",
				sc.name, injected, rc.ReportsAcknowledged, rc.ReportsStored, rc.ReportsMissing, rc.ReportsDuplicated,
				rc.PhotosHashMatching, rc.PhotosAcknowledged, rc.ViolationsWithOneCase, rc.Violations, rc.CasesForNonViolations,
				rc.CaseStepsRecorded, rc.CaseStepsAcknowledged, chains, ledgerRecords(rc), exits(s.Gridds), exits(s.Caseds))
			summary = append(summary, line)
			if !res.Exact() {
				t.Errorf("not exact under %s:\n%s", sc.name, strings.Join(rc.Problems, "\n"))
			}
			if watch != nil {
				checks, err := watch.check(ctx, cfg.DrainTimeout)
				if err != nil {
					t.Fatalf("double-work checks: %v", err)
				}
				summary = append(summary, fmt.Sprintf("%-20s %s", "", checks))
				if len(checks.problems) > 0 {
					t.Errorf("double work under %s:\n%s", sc.name, strings.Join(checks.problems, "\n"))
				}
			}
			if injected == 0 && sc.name != "baseline" {
				t.Errorf("no fault was injected: the run (%s) is shorter than the fault period", duration)
			}
		})
	}
	fmt.Println("\nfault scenarios:")
	for _, l := range summary {
		fmt.Println("  " + l)
	}
	for _, s := range used {
		for _, p := range []*Proc{s.Gridd, s.Cased} {
			for _, e := range p.Exits() {
				fmt.Printf("  %s exited by itself at %s (restarted); log %s\n", p.Name, e, p.Log)
			}
		}
	}
}

// exits counts the unexpected exits of procs.
func exits(procs []*Proc) int {
	n := 0
	for _, p := range procs {
		n += len(p.Exits())
	}
	return n
}

func ledgerRecords(rc fieldsim.Reconciliation) int64 {
	var n int64
	for _, l := range rc.Ledger {
		n += l.Records
	}
	return n
}
