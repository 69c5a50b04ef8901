// Package fieldsim is a county's field staff in a box: it drives a running
// ecogrid stack through its public gRPC API as hundreds of inspectors and
// their township supervisors would — logging in, patrolling their cells
// with GPS tracks (batches sent late, twice and out of order), filing
// geotagged reports with photos (a share of them violations), going
// offline and replaying queued reports later, retrying every failed call
// with the same client ids, and working the resulting cases through
// cased — and then reconciles what was acknowledged against what
// PostgreSQL holds: every acknowledged report stored exactly once, every
// photo's hash matching the stored blob, every violation with exactly one
// case, every acknowledged case step recorded once, and each county's
// ledger verifying end to end.
//
// It is bounded in count and time and refuses targets that are not on
// this machine. cmd/fieldsim runs it from the command line; the fault
// injection harness (internal/faults) runs it while killing servers.
package fieldsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	ecogridv1 "ecogrid/api/ecogrid/v1"
)

// Config sets the size, duration and mix of a run.
type Config struct {
	// GriddAddr and CasedAddr are gRPC addresses, loopback only; a
	// comma-separated list names replicas, and the calls are spread over
	// those that are up (dial).
	GriddAddr   string
	CasedAddr   string
	DatabaseURL string // read-only reconciliation queries, loopback only

	AdminUser     string
	AdminPassword string
	// County to simulate; empty takes the administrator's county.
	County string
	// Name prefixes the simulated accounts ("<name>-<county>-i0001") and
	// seeds their deterministic ids, so a re-run reuses the same people.
	Name string

	Inspectors int
	Duration   time.Duration
	// DrainTimeout bounds the wait after the run for the violation
	// pipeline (outbox → JetStream → cased) to open every case.
	DrainTimeout time.Duration
	// CallTimeout bounds one attempt of one call.
	CallTimeout time.Duration
	// GiveUpAfter bounds the retries of one call after the run ended
	// (an app on a dead network gives up eventually).
	GiveUpAfter time.Duration

	ViolationShare float64 // share of reports that are violations
	OfflineShare   float64 // share of patrols walked without network
	PhotoShare     float64 // share of reports with photos
	DropShare      float64 // share of photo uploads cut mid-stream and resumed
	ThinkTime      time.Duration
	// LoginConcurrency bounds parallel logins (argon2id is slow by design).
	LoginConcurrency int
	// SupervisorWorkers is how many cases each supervisor works at once.
	SupervisorWorkers int
	// Seed is mixed with a per-run nonce: every run files fresh report,
	// patrol, upload and step ids (a re-used id with other content is
	// rightly refused), so runs repeat in distribution, not in ids.
	Seed uint64

	// OnWorkloadStart and OnWorkloadEnd, when set, are called when the
	// workload begins (after setup and logins) and when its Duration is
	// over (calls in flight then still get GiveUpAfter, and the
	// reconciliation waits for both): a fault injector starts hurting the
	// stack at the first and must have healed it when the second returns.
	OnWorkloadStart func()
	OnWorkloadEnd   func()

	// Progress, when set, receives a line now and then during the run.
	Progress io.Writer
	Log      *slog.Logger
}

// DefaultConfig is a 500-inspector, 5-minute run against `gridctl dev`.
func DefaultConfig() Config {
	return Config{
		GriddAddr: "127.0.0.1:7443", CasedAddr: "127.0.0.1:7444",
		AdminUser: "admin", Name: "fieldsim",
		Inspectors: 500, Duration: 5 * time.Minute, DrainTimeout: 2 * time.Minute,
		CallTimeout: 10 * time.Second, GiveUpAfter: 2 * time.Minute,
		ViolationShare: 0.3, OfflineShare: 0.2, PhotoShare: 0.6, DropShare: 0.1,
		ThinkTime: 20 * time.Second, LoginConcurrency: 4, SupervisorWorkers: 4, Seed: 1,
	}
}

// Validate checks the configuration, including that every target is on
// this machine.
func (c Config) Validate() error {
	var errs []error
	if err := checkReplicas(c.GriddAddr); err != nil {
		errs = append(errs, fmt.Errorf("gridd: %w", err))
	}
	if err := checkReplicas(c.CasedAddr); err != nil {
		errs = append(errs, fmt.Errorf("cased: %w", err))
	}
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("DATABASE_URL is needed for the reconciliation"))
	} else if err := CheckDatabaseLoopback(c.DatabaseURL); err != nil {
		errs = append(errs, err)
	}
	if c.AdminUser == "" || c.AdminPassword == "" {
		errs = append(errs, errors.New("administrator username and password are required (ECOGRID_ADMIN_USER, ECOGRID_ADMIN_PASSWORD)"))
	}
	if c.Inspectors < 1 || c.Inspectors > 5000 {
		errs = append(errs, fmt.Errorf("inspectors %d: want 1 to 5000", c.Inspectors))
	}
	if c.Duration <= 0 || c.Duration > 2*time.Hour {
		errs = append(errs, fmt.Errorf("duration %s: want more than 0 and at most 2h", c.Duration))
	}
	if !usernamePrefix.MatchString(c.Name) {
		errs = append(errs, fmt.Errorf("name %q: want 1 to 20 of a-z, 0-9 and '-'", c.Name))
	}
	for _, s := range []struct {
		n string
		v float64
	}{{"violation share", c.ViolationShare}, {"offline share", c.OfflineShare}, {"photo share", c.PhotoShare}, {"drop share", c.DropShare}} {
		if s.v < 0 || s.v > 1 {
			errs = append(errs, fmt.Errorf("%s %g: want 0 to 1", s.n, s.v))
		}
	}
	if c.LoginConcurrency < 1 || c.SupervisorWorkers < 1 || c.CallTimeout <= 0 {
		errs = append(errs, errors.New("login concurrency, supervisor workers and call timeout must be positive"))
	}
	return errors.Join(errs...)
}

// testHookSim, set by tests, sees each Sim as it starts.
var testHookSim func(*Sim)

// Sim is one run in progress.
type Sim struct {
	cfg        Config
	log        *slog.Logger
	m          *metrics
	acks       *acks
	work       workload
	loginSlots chan struct{}
	runID      string
	nonce      uint64 // mixed into every random stream: each run files new ids

	auth   ecogridv1.AuthServiceClient
	people ecogridv1.PeopleServiceClient
	grid   ecogridv1.GridServiceClient
	field  ecogridv1.FieldServiceClient
	acct   ecogridv1.AccountabilityServiceClient
	cases  ecogridv1.CaseServiceClient

	admin       *session
	county      string
	townships   []*township
	inspectors  []*inspector
	supervisors []*supervisor
}

// workload counts what the simulated people did.
type workload struct {
	Patrols          atomic.Int64
	TrackPointsSent  atomic.Int64
	TrackBatchesSent atomic.Int64
	TrackReplays     atomic.Int64
	TrackRejected    atomic.Int64
	Reports          atomic.Int64
	ReportsOffline   atomic.Int64
	Batches          atomic.Int64
	Violations       atomic.Int64
	Photos           atomic.Int64
	UploadsResumed   atomic.Int64
	CasesAccepted    atomic.Int64
	CasesRejected    atomic.Int64
	CasesClosed      atomic.Int64
	CasesUnverified  atomic.Int64
	Refused          atomic.Int64
}

// Workload is what the simulated people did, for the result.
type Workload struct {
	Patrols          int64 `json:"patrols"`
	TrackPointsSent  int64 `json:"track_points_sent"`
	TrackBatchesSent int64 `json:"track_batches_sent"`
	TrackReplays     int64 `json:"track_batches_replayed"`
	TrackRejected    int64 `json:"track_points_rejected"`
	Reports          int64 `json:"reports"`
	ReportsOffline   int64 `json:"reports_replayed_from_offline_queue"`
	Batches          int64 `json:"report_batches"`
	Violations       int64 `json:"violations"`
	Photos           int64 `json:"photos"`
	UploadsResumed   int64 `json:"uploads_resumed"`
	CasesAccepted    int64 `json:"cases_accepted"`
	CasesRejected    int64 `json:"cases_rejected"`
	CasesClosed      int64 `json:"cases_closed"`
	// CasesUnverified were rectified in a cell with no second simulated
	// inspector to verify them (the handler may not verify their own).
	CasesUnverified int64 `json:"cases_left_rectified"`
	// Refused counts calls the server refused for good (a client or
	// server bug: the simulator only sends valid requests).
	Refused int64 `json:"refused"`
}

// Result is the outcome of a run.
type Result struct {
	RunID          string     `json:"run_id"`
	County         string     `json:"county"`
	Townships      int        `json:"townships"`
	Villages       int        `json:"villages"`
	Inspectors     int        `json:"inspectors"`
	Supervisors    int        `json:"supervisors"`
	SetupSeconds   float64    `json:"setup_seconds"`
	LoginSeconds   float64    `json:"login_seconds"`
	RunSeconds     float64    `json:"run_seconds"`
	Calls          int        `json:"calls"`
	CallsPerSecond float64    `json:"calls_per_second"`
	ReportsPerSec  float64    `json:"reports_per_second"`
	Workload       Workload   `json:"workload"`
	RPCs           []RPCStats `json:"rpcs"`
	// Reconciled is false when the run was interrupted before the
	// reconciliation.
	Reconciled     bool           `json:"reconciled"`
	Reconciliation Reconciliation `json:"reconciliation"`
	RefusedSamples []string       `json:"refused_samples,omitempty"`
}

// Exact reports whether every reconciliation held.
func (r *Result) Exact() bool { return r.Reconciled && r.Reconciliation.Exact }

// Run sets up the county's people, runs the workload for cfg.Duration,
// and reconciles. The error is for a run that could not be carried out;
// a run whose reconciliation is not exact returns a Result with
// Exact() false and no error.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.GiveUpAfter <= 0 {
		cfg.GiveUpAfter = 2 * time.Minute
	}
	gconn, err := dial(cfg.GriddAddr)
	if err != nil {
		return nil, err
	}
	defer gconn.Close()
	cconn, err := dial(cfg.CasedAddr)
	if err != nil {
		return nil, err
	}
	defer cconn.Close()
	s := &Sim{
		cfg: cfg, log: cfg.Log, m: newMetrics(), acks: newAcks(),
		loginSlots: make(chan struct{}, cfg.LoginConcurrency),
		nonce:      rand.Uint64(),
		auth:       ecogridv1.NewAuthServiceClient(gconn), people: ecogridv1.NewPeopleServiceClient(gconn),
		grid: ecogridv1.NewGridServiceClient(gconn), field: ecogridv1.NewFieldServiceClient(gconn),
		acct: ecogridv1.NewAccountabilityServiceClient(gconn), cases: ecogridv1.NewCaseServiceClient(cconn),
	}
	s.runID = fmt.Sprintf("%08x", uint32(s.nonce>>32))
	if testHookSim != nil {
		testHookSim(s)
	}
	res := &Result{RunID: s.runID}

	t0 := time.Now()
	if err := s.setup(ctx); err != nil {
		return nil, fmt.Errorf("setting up the county's people: %w", err)
	}
	res.SetupSeconds = time.Since(t0).Seconds()
	t1 := time.Now()
	if err := s.loginAll(ctx); err != nil {
		return nil, fmt.Errorf("logging everyone in: %w", err)
	}
	res.LoginSeconds = time.Since(t1).Seconds()
	res.County, res.Townships, res.Inspectors, res.Supervisors = s.county, len(s.townships), len(s.inspectors), len(s.supervisors)
	for _, t := range s.townships {
		res.Villages += len(t.villages)
	}
	fmt.Fprintf(cfg.Progress, "fieldsim %s: county %s, %d townships, %d villages, %d inspectors, %d supervisors (setup %.1fs, logins %.1fs)\n",
		s.runID, s.county, res.Townships, res.Villages, res.Inspectors, res.Supervisors, res.SetupSeconds, res.LoginSeconds)

	// Setup and logins are not part of the workload figures.
	s.m = newMetrics()
	t2 := time.Now()
	if cfg.OnWorkloadStart != nil {
		cfg.OnWorkloadStart()
	}
	s.runWorkload(ctx)
	res.RunSeconds = time.Since(t2).Seconds()

	res.RPCs = s.m.snapshot()
	for _, r := range res.RPCs {
		res.Calls += r.OK
	}
	res.CallsPerSecond = float64(res.Calls) / res.RunSeconds
	res.Workload = s.workloadSnapshot()
	res.ReportsPerSec = float64(res.Workload.Reports) / res.RunSeconds
	res.RefusedSamples = s.acks.refusedSamples()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	fmt.Fprintf(cfg.Progress, "fieldsim %s: workload done in %.1fs; reconciling\n", s.runID, res.RunSeconds)
	rec, err := s.reconcile(ctx)
	if err != nil {
		return res, fmt.Errorf("reconciling: %w", err)
	}
	res.Reconciliation, res.Reconciled = *rec, true
	return res, nil
}

func (s *Sim) workloadSnapshot() Workload {
	w := &s.work
	return Workload{
		Patrols: w.Patrols.Load(), TrackPointsSent: w.TrackPointsSent.Load(), TrackBatchesSent: w.TrackBatchesSent.Load(),
		TrackReplays: w.TrackReplays.Load(), TrackRejected: w.TrackRejected.Load(), Reports: w.Reports.Load(),
		ReportsOffline: w.ReportsOffline.Load(), Batches: w.Batches.Load(), Violations: w.Violations.Load(),
		Photos: w.Photos.Load(), UploadsResumed: w.UploadsResumed.Load(), CasesAccepted: w.CasesAccepted.Load(),
		CasesRejected: w.CasesRejected.Load(), CasesClosed: w.CasesClosed.Load(), CasesUnverified: w.CasesUnverified.Load(),
		Refused: w.Refused.Load(),
	}
}

// runWorkload runs every inspector and supervisor until cfg.Duration has
// passed, then lets each finish what it started (flushing offline queues)
// within cfg.GiveUpAfter.
func (s *Sim) runWorkload(ctx context.Context) {
	work, cancelWork := context.WithTimeout(ctx, s.cfg.Duration)
	defer cancelWork()
	// Calls started before the end may retry for GiveUpAfter more.
	ops, cancelOps := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelOps()
	healed := make(chan struct{})
	finished := make(chan struct{}) // every inspector and supervisor is through
	go func() {
		defer close(healed)
		select {
		case <-ctx.Done():
			cancelOps()
		case <-work.Done():
			// The faults stop with the work; calls still in flight then
			// get GiveUpAfter on a healed stack (no longer than it takes
			// the last of them to finish).
			if s.cfg.OnWorkloadEnd != nil {
				s.cfg.OnWorkloadEnd()
			}
			select {
			case <-ctx.Done():
			case <-finished:
			case <-time.After(s.cfg.GiveUpAfter):
			}
			cancelOps()
		case <-ops.Done():
		}
	}()
	var wg sync.WaitGroup
	for _, in := range s.inspectors {
		wg.Go(func() { in.run(work, ops) })
	}
	for _, sup := range s.supervisors {
		wg.Go(func() { sup.run(work, ops) })
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(s.cfg.Progress, "  %s reports %d (violations %d), photos %d, patrols %d, cases closed %d\n",
					time.Now().Format("15:04:05"), s.work.Reports.Load(), s.work.Violations.Load(), s.work.Photos.Load(),
					s.work.Patrols.Load(), s.work.CasesClosed.Load())
			}
		}
	}()
	wg.Wait()
	close(finished)
	cancelWork()
	close(done)
	<-healed
}
