// Package faults runs the whole ecogrid stack on this machine in a form
// that can be hurt: a private PostgreSQL cluster that can be shut down
// with -m immediate (a crash, as far as the data is concerned), NATS
// with JetStream that can be stopped for a minute, and gridd and cased as
// subprocesses of their built binaries that can be SIGKILLed and
// restarted. The fault scenarios (faults_test.go, build tag "faults",
// run by scripts/faults.sh) drive fieldsim through it and require every
// reconciliation to stay exact.
package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"ecogrid/internal/auth"
	"ecogrid/internal/database"
	"ecogrid/internal/devstack"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/demo"
	"ecogrid/internal/ledger"
	"ecogrid/internal/messaging"
)

// Stack is a running ecogrid that faults can be injected into.
type Stack struct {
	Dir           string
	DatabaseURL   string
	NATSURL       string
	GriddAddr     string
	CasedAddr     string
	County        string
	AdminUser     string
	AdminPassword string
	PhotoDir      string

	// Gridd and Cased are the first replica of each, the ones the
	// single-server scenarios hurt; Gridds and Caseds hold every replica
	// running (AddReplicas starts a second of each).
	Gridd, Cased   *Proc
	Gridds, Caseds []*Proc

	// common is the environment every server gets (database, NATS, log
	// level); authKey, authPub and ledgerKey are the key files.
	common                      []string
	authKey, authPub, ledgerKey string

	pg        *devstack.Postgres
	natsMu    sync.Mutex
	nats      *natsserver.Server
	natsPort  int
	natsStore string
	natsUsers map[messaging.Role]messaging.Credentials
	cluster   *messaging.Cluster // NATS as a cluster (cluster.go), else nil
	out       io.Writer
	binDir    string
}

// Build compiles gridd, cased and gridctl from the module at root into dir.
func Build(ctx context.Context, root, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(os.PathSeparator), "./cmd/gridd", "./cmd/cased", "./cmd/gridctl")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// ModuleRoot is the folder holding go.mod, found from the working folder up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working folder")
		}
		dir = parent
	}
}

// FreePort asks the kernel for an unused loopback port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start brings the stack up in dir using the binaries in binDir:
// PostgreSQL, NATS, migrations, the demo county, an administrator, keys,
// then gridd and cased. out receives progress lines.
func Start(ctx context.Context, dir, binDir string, out io.Writer) (*Stack, error) {
	return StartWith(ctx, dir, binDir, out, Options{})
}

// StartWith is Start with options (NATS as a cluster: cluster.go).
func StartWith(ctx context.Context, dir, binDir string, out io.Writer, opts Options) (*Stack, error) {
	s := &Stack{Dir: dir, County: demo.DemoCountyCode, AdminUser: "faults-admin", AdminPassword: "faults-Admin-2026!", out: out,
		PhotoDir: filepath.Join(dir, "photos"), natsStore: filepath.Join(dir, "nats")}
	ok := false
	defer func() {
		if !ok {
			s.Stop()
		}
	}()
	bin, _, err := devstack.FindPostgres()
	if err != nil {
		return nil, err
	}
	ports := make([]int, 6)
	for i := range ports {
		if ports[i], err = FreePort(); err != nil {
			return nil, err
		}
	}
	s.pg = &devstack.Postgres{BinDir: bin, DataDir: filepath.Join(dir, "pg"), Port: ports[0]}
	if err := s.pg.Start(ctx); err != nil {
		return nil, err
	}
	s.DatabaseURL = s.pg.URL("ecogrid")
	s.natsPort = ports[1]
	// The bus is secured as in production: gridd and cased connect as
	// their own users (messaging.Permissions).
	s.natsUsers = map[messaging.Role]messaging.Credentials{}
	for _, r := range messaging.Roles() {
		s.natsUsers[r] = messaging.Credentials{User: string(r), Password: rand.Text()}
	}
	if err := s.startNATS(opts); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "faults: PostgreSQL on %d, NATS at %s, data in %s\n", ports[0], s.NATSURL, dir)

	if err := s.prepareDatabase(ctx, binDir); err != nil {
		return nil, err
	}
	authKey, authPub, ledgerKey, err := s.writeKeys()
	if err != nil {
		return nil, err
	}
	s.binDir, s.authKey, s.authPub, s.ledgerKey = binDir, authKey, authPub, ledgerKey
	// CASED_OVERDUE_SWEEP: the overdue sweeper runs every 2 s instead of
	// every minute, so that a scenario making cases overdue sees them
	// escalated (once) within the run.
	s.common = []string{"DATABASE_URL=" + s.DatabaseURL, "NATS_URL=" + s.NATSURL, "ECOGRID_LOG_LEVEL=info", "CASED_OVERDUE_SWEEP=2s"}
	s.Gridd = s.griddProc(1, ports[2], ports[3])
	s.Cased = s.casedProc(1, ports[4], ports[5])
	s.GriddAddr, s.CasedAddr = s.Gridd.Addr, s.Cased.Addr
	s.Gridds, s.Caseds = []*Proc{s.Gridd}, []*Proc{s.Cased}
	if err := s.Gridd.Start(ctx); err != nil {
		return nil, err
	}
	if err := s.Cased.Start(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "faults: gridd on %s (pid %d), cased on %s (pid %d)\n", s.GriddAddr, s.Gridd.Pid(), s.CasedAddr, s.Cased.Pid())
	ok = true
	return s, nil
}

// griddProc is gridd replica n (1, 2 …) on the given gRPC and metrics
// ports. Every replica shares the database, NATS, the keys and the photo
// folder (as they would share a bucket); each has its own log and its own
// ledger witness folder (a witness is a local file of one machine).
func (s *Stack) griddProc(n, grpcPort, metricsPort int) *Proc {
	addr := fmt.Sprintf("127.0.0.1:%d", grpcPort)
	return &Proc{Name: replicaName("gridd", n), Bin: filepath.Join(s.binDir, "gridd"), Addr: addr, Log: filepath.Join(s.Dir, replicaName("gridd", n)+".log"),
		Env: append(natsEnv(s.common, s.natsUsers[messaging.RoleGridd]), "GRIDD_GRPC_ADDR="+addr, fmt.Sprintf("GRIDD_METRICS_ADDR=127.0.0.1:%d", metricsPort),
			auth.EnvKeyFile+"="+s.authKey, ledger.EnvKeyFile+"="+s.ledgerKey, "ECOGRID_PHOTO_DIR="+s.PhotoDir,
			"ECOGRID_WITNESS_DIR="+filepath.Join(s.Dir, replicaName("witness", n)))}
}

// casedProc is cased replica n on the given gRPC and metrics ports.
func (s *Stack) casedProc(n, grpcPort, metricsPort int) *Proc {
	addr := fmt.Sprintf("127.0.0.1:%d", grpcPort)
	return &Proc{Name: replicaName("cased", n), Bin: filepath.Join(s.binDir, "cased"), Addr: addr, Log: filepath.Join(s.Dir, replicaName("cased", n)+".log"),
		Env: append(natsEnv(s.common, s.natsUsers[messaging.RoleCased]), "CASED_GRPC_ADDR="+addr, fmt.Sprintf("CASED_METRICS_ADDR=127.0.0.1:%d", metricsPort),
			auth.EnvPublicKeys+"="+s.authPub)}
}

// replicaName is "gridd" for the first replica (the names and log files
// the single-server scenarios always had), "gridd-2" for the second.
func replicaName(base string, n int) string {
	if n == 1 {
		return base
	}
	return fmt.Sprintf("%s-%d", base, n)
}

// AddReplicas starts a second gridd and a second cased beside the first
// ones (same database, NATS, keys and photo folder), unless they run.
func (s *Stack) AddReplicas(ctx context.Context) error {
	if len(s.Gridds) > 1 {
		return nil
	}
	ports := make([]int, 4)
	for i := range ports {
		var err error
		if ports[i], err = FreePort(); err != nil {
			return err
		}
	}
	g, c := s.griddProc(2, ports[0], ports[1]), s.casedProc(2, ports[2], ports[3])
	if err := g.Start(ctx); err != nil {
		return err
	}
	s.Gridds = append(s.Gridds, g)
	if err := c.Start(ctx); err != nil {
		return err
	}
	s.Caseds = append(s.Caseds, c)
	fmt.Fprintf(s.out, "faults: second replicas: gridd on %s (pid %d), cased on %s (pid %d)\n", g.Addr, g.Pid(), c.Addr, c.Pid())
	return nil
}

// RemoveReplicas stops the second replicas (SIGTERM), leaving one of each.
func (s *Stack) RemoveReplicas() {
	for _, p := range append(s.Caseds[1:], s.Gridds[1:]...) {
		p.Stop()
	}
	s.Gridds, s.Caseds = s.Gridds[:1], s.Caseds[:1]
}

// Addrs lists the addresses of procs, comma-separated (fieldsim's form).
func Addrs(procs []*Proc) string {
	var a []string
	for _, p := range procs {
		a = append(a, p.Addr)
	}
	return strings.Join(a, ",")
}

// Procs is every server process running, first replicas first.
func (s *Stack) Procs() []*Proc {
	return append(slices.Clone(s.Gridds), s.Caseds...)
}

// prepareDatabase migrates, imports the demo county and bootstraps the
// administrator with the gridctl binary, as an operator would.
func (s *Stack) prepareDatabase(ctx context.Context, binDir string) error {
	pool, err := database.Open(ctx, database.Config{URL: s.DatabaseURL, ApplicationName: "faults"})
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := database.Migrate(ctx, pool); err != nil {
		return err
	}
	gridStore := grid.NewStore(pool, grid.Config{})
	nodes, err := gridStore.CountNodes(ctx)
	if err != nil {
		return err
	}
	if nodes == 0 {
		if _, err := gridStore.ImportGeoJSON(ctx, bytes.NewReader(demo.County()), grid.ImportOptions{}); err != nil {
			return fmt.Errorf("importing the demo county: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "gridctl"), "users", "bootstrap-admin", "-county", s.County,
		"-username", s.AdminUser, "-password-stdin")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+s.DatabaseURL)
	cmd.Stdin = strings.NewReader(s.AdminPassword + "\n")
	if out, err := cmd.CombinedOutput(); err != nil && !strings.Contains(string(out), "already exists") {
		return fmt.Errorf("gridctl users bootstrap-admin: %v\n%s", err, out)
	}
	return nil
}

func (s *Stack) writeKeys() (authKey, authPub, ledgerKey string, err error) {
	authKey, authPub, ledgerKey = filepath.Join(s.Dir, "auth.pem"), filepath.Join(s.Dir, "auth.pub"), filepath.Join(s.Dir, "ledger.key")
	if _, err := os.Stat(authKey); err == nil {
		return authKey, authPub, ledgerKey, nil
	}
	pemKey, err := auth.GenerateKeyPEM()
	if err != nil {
		return "", "", "", err
	}
	keys, err := auth.LoadKeys(auth.KeyConfig{PrivateKeyPEM: string(pemKey)})
	if err != nil {
		return "", "", "", err
	}
	pub, err := keys.PublicKeyPEM()
	if err != nil {
		return "", "", "", err
	}
	skey, _, err := ledger.NewKeyPair(ledger.DefaultKeyName)
	if err != nil {
		return "", "", "", err
	}
	for _, f := range []struct {
		path string
		data []byte
	}{{authKey, pemKey}, {authPub, pub}, {ledgerKey, []byte(skey)}} {
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return "", "", "", err
		}
	}
	return authKey, authPub, ledgerKey, nil
}

// natsEnv is env with a service's NATS user added (a new slice).
func natsEnv(env []string, c messaging.Credentials) []string {
	return append(slices.Clone(env), "NATS_USER="+c.User, "NATS_PASSWORD="+c.Password)
}

// StartNATS (re)starts the embedded NATS server on the stack's port with
// its JetStream storage kept (on a cluster: every stopped node, until all
// are caught up).
func (s *Stack) StartNATS() error {
	if s.cluster != nil {
		return s.startClusterNodes()
	}
	s.natsMu.Lock()
	defer s.natsMu.Unlock()
	if s.nats != nil {
		return nil
	}
	ns, err := messaging.StartEmbedded(messaging.EmbeddedConfig{Port: s.natsPort, StoreDir: s.natsStore, Users: s.natsUsers})
	if err != nil {
		return err
	}
	s.nats = ns
	return nil
}

// StopNATS shuts NATS down (every node of a cluster); clients see their
// connection drop.
func (s *Stack) StopNATS() {
	if s.cluster != nil {
		s.cluster.Shutdown()
		return
	}
	s.natsMu.Lock()
	defer s.natsMu.Unlock()
	if s.nats != nil {
		s.nats.Shutdown()
		s.nats.WaitForShutdown()
		s.nats = nil
	}
}

// CrashPostgres stops PostgreSQL with an immediate shutdown (no
// checkpoint: the restart replays the WAL, as after a power cut) and
// starts it again.
func (s *Stack) CrashPostgres(ctx context.Context) error {
	if err := s.pg.Crash(ctx); err != nil {
		return err
	}
	return s.pg.Start(ctx)
}

// Stop takes everything down; safe to call on a half-started stack.
func (s *Stack) Stop() {
	procs := append(slices.Clone(s.Caseds), s.Gridds...)
	if len(procs) == 0 { // a half-started stack
		procs = []*Proc{s.Cased, s.Gridd}
	}
	for _, p := range procs {
		if p != nil {
			p.Stop()
		}
	}
	s.StopNATS()
	if s.pg != nil {
		if err := s.pg.Stop(); err != nil {
			fmt.Fprintf(s.out, "faults: stopping PostgreSQL: %v\n", err)
		}
	}
}

// Proc is a server subprocess that can be killed and restarted. When it
// exits on its own it is restarted after a second, as systemd's
// Restart=always or a Kubernetes pod would, and counted in Exits.
type Proc struct {
	Name, Bin, Addr, Log string
	Env                  []string

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	exits []string
	kills []time.Time
	ctx   context.Context
}

// Kills lists when the process was SIGKILLed by Kill.
func (p *Proc) Kills() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.kills)
}

// Exits lists the times the process exited without being told to.
func (p *Proc) Exits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.exits...)
}

// Start runs the binary and waits until its health check answers SERVING.
func (p *Proc) Start(ctx context.Context) error {
	done, err := p.spawn(ctx)
	if err != nil {
		return err
	}
	return p.waitHealthy(ctx, done)
}

func (p *Proc) spawn(ctx context.Context) (chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ctx = ctx
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(p.Bin)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so a Ctrl-C on the test reaches it only
	// through Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		err := cmd.Wait()
		f.Close()
		close(done)
		p.mu.Lock()
		unexpected := p.cmd == cmd
		if unexpected {
			p.cmd, p.done = nil, nil
			p.exits = append(p.exits, fmt.Sprintf("%s %v", time.Now().Format("15:04:05"), err))
		}
		ctx := p.ctx
		p.mu.Unlock()
		if unexpected && ctx.Err() == nil {
			time.Sleep(time.Second)
			if _, err := p.spawn(ctx); err != nil {
				p.mu.Lock()
				p.exits = append(p.exits, "restart failed: "+err.Error())
				p.mu.Unlock()
			}
		}
	}()
	return done, nil
}

func (p *Proc) waitHealthy(ctx context.Context, done chan struct{}) error {
	conn, err := grpc.NewClient(p.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(90 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%s exited during start; see %s", p.Name, p.Log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy after 90s; see %s", p.Name, p.Log)
		}
	}
}

// Pid is the running process's id, 0 when none.
func (p *Proc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// take detaches the running process so its exit is not taken for a crash.
func (p *Proc) take() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd, done := p.cmd, p.done
	p.cmd, p.done = nil, nil
	return cmd, done
}

// Kill sends SIGKILL (no graceful shutdown, no deferred cleanup) and
// waits for the process to be gone.
func (p *Proc) Kill() {
	cmd, done := p.take()
	if cmd == nil {
		return
	}
	p.mu.Lock()
	p.kills = append(p.kills, time.Now())
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Stop sends SIGTERM and waits; SIGKILL after 30 s.
func (p *Proc) Stop() {
	cmd, done := p.take()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// Restart kills the process with SIGKILL and starts it again.
func (p *Proc) Restart(ctx context.Context) error {
	p.Kill()
	return p.Start(ctx)
}

// Healthy waits until the process (perhaps being restarted after a crash)
// answers its health check.
func (p *Proc) Healthy(ctx context.Context) error {
	return p.waitHealthy(ctx, make(chan struct{}))
}
