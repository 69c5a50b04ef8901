package devstack_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/devstack"
	"ecogrid/internal/messaging"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// syncBuffer is a bytes.Buffer safe for the stack's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestDevStackStartsAndStopsCleanly runs the whole stack with a private
// PostgreSQL cluster and an embedded NATS, checks that both services answer
// health and metrics, stops it, and checks that no port or server process
// is left behind.
func TestDevStackStartsAndStopsCleanly(t *testing.T) {
	if _, _, err := devstack.FindPostgres(); err != nil {
		t.Fatalf("the dev stack needs PostgreSQL server binaries with PostGIS: %v", err)
	}
	// The data folder is relative, as gridctl dev's default ".dev" is.
	t.Chdir(t.TempDir())
	dir := ".dev"
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]int{"pg": freePort(t), "nats": freePort(t), "natsmon": freePort(t), "gridd": freePort(t), "gm": freePort(t), "cased": freePort(t), "cm": freePort(t)}
	cfg := devstack.Config{
		DataDir: dir, PGPort: ports["pg"], NATSPort: ports["nats"], NATSMonitorPort: ports["natsmon"],
		GriddAddr: addr(ports["gridd"]), GriddMetric: addr(ports["gm"]),
		CasedAddr: addr(ports["cased"]), CasedMetric: addr(ports["cm"]),
	}
	readyc := make(chan devstack.Addresses, 1)
	cfg.Ready = func(a devstack.Addresses) { readyc <- a }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- devstack.Run(ctx, cfg, &out, slog.New(slog.NewTextHandler(io.Discard, nil))) }()

	var a devstack.Addresses
	select {
	case a = <-readyc:
	case err := <-done:
		t.Fatalf("stack stopped during start: %v\n%s", err, out.String())
	case <-time.After(3 * time.Minute):
		t.Fatalf("stack not ready after 3 minutes:\n%s", out.String())
	}
	for _, target := range []string{a.GriddGRPC, a.CasedGRPC} {
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		conn.Close()
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%s health: %v %v", target, resp, err)
		}
	}
	checkMetrics(t, a)
	checkSecuredNATS(t, a, out.String())
	if !strings.Contains(out.String(), "grpcurl -plaintext "+a.GriddGRPC+" list") {
		t.Errorf("banner lacks the grpcurl line:\n%s", out.String())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stack stopped with %v\n%s", err, out.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("stack did not stop within 2 minutes")
	}
	for name, p := range ports {
		l, err := net.Listen("tcp", addr(p))
		if err != nil {
			t.Errorf("port %d (%s) still in use after stop: %v", p, name, err)
			continue
		}
		l.Close()
	}
	if _, err := os.Stat(filepath.Join(dir, "pg", "postmaster.pid")); !os.IsNotExist(err) {
		t.Errorf("PostgreSQL still running (postmaster.pid present): %v", err)
	}
	if out, _ := exec.Command("pgrep", "-f", "-a", filepath.Join(abs, "pg")).Output(); len(out) > 0 {
		t.Errorf("processes left behind:\n%s", out)
	}
}

// checkSecuredNATS: the dev stack's NATS refuses a client without a user,
// lets the integrator in with the password the stack wrote but not publish
// a violation, never prints a password, and serves its monitoring port.
func checkSecuredNATS(t *testing.T, a devstack.Addresses, banner string) {
	t.Helper()
	ctx := context.Background()
	if _, _, err := messaging.Connect(ctx, a.NATSURL, "anonymous", nil); err == nil {
		t.Error("the dev NATS accepted a client without a user")
	}
	integrator := string(messaging.Integrator(a.CountyCode))
	pw, err := os.ReadFile(filepath.Join(a.NATSPasswordDir, "nats-"+integrator+".password"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(banner, strings.TrimSpace(string(pw))) {
		t.Error("the banner prints a NATS password")
	}
	nc, _, err := messaging.ConnectAs(ctx, a.NATSURL, messaging.Credentials{User: integrator, Password: strings.TrimSpace(string(pw))}, "integrator", nil)
	if err != nil {
		t.Fatalf("integrator: %v", err)
	}
	defer nc.Close()
	errc := make(chan error, 1)
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errc <- err:
		default:
		}
	})
	if err := nc.Publish(messaging.ViolationSubject(a.CountyCode), []byte("forged")); err != nil {
		t.Fatal(err)
	}
	nc.Flush() //nolint:errcheck
	select {
	case err := <-errc:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("integrator publishing a violation: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("integrator published a violation without a permissions violation")
	}
	res, err := http.Get("http://" + a.NATSMonitor + "/varz")
	if err != nil {
		t.Fatalf("NATS monitoring: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("NATS /varz: %d", res.StatusCode)
	}
}

// checkMetrics scrapes both services: the exposition passes `promtool
// check metrics` (the Debian package prometheus, which the test command
// installs), and each carries the operator's metrics of issue 14: build,
// pool, login failures (gridd), consumer lag, dead letters, open cases and
// outbox backlog (cased).
func checkMetrics(t *testing.T, a devstack.Addresses) {
	t.Helper()
	// A wrong password, so that the failure counter has counted.
	conn, err := grpc.NewClient(a.GriddGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = ecogridv1.NewAuthServiceClient(conn).Login(context.Background(), &ecogridv1.LoginRequest{Username: "admin", Password: "not the password"})
	conn.Close()
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("login with a wrong password: %v", err)
	}
	promtool, lookErr := exec.LookPath("promtool")
	if lookErr != nil && os.Getenv("ECOGRID_REQUIRE_PROMTOOL") != "" {
		t.Fatalf("promtool (Debian package prometheus) is missing: %v", lookErr)
	}
	want := map[string][]string{
		a.GriddMetrics: {`ecogrid_build_info{goversion="go`, `service="gridd"`, `ecogrid_db_pool_connections{state="idle"}`,
			"ecogrid_db_pool_acquires_total", `ecogrid_auth_login_failures_total{reason="credentials"} 1`,
			`ecogrid_auth_lockouts_total{key="account"} 0`, "ecogrid_outbox_backlog_events"},
		a.CasedMetrics: {`service="cased"`, "ecogrid_db_pool_max_connections",
			`ecogrid_jetstream_consumer_pending_messages{consumer="cased-violations",stream="VIOLATIONS"}`,
			`ecogrid_jetstream_consumer_ack_pending_messages{consumer="cased-violations",stream="VIOLATIONS"}`,
			"ecogrid_dead_letter_messages 0", `ecogrid_jetstream_stream_messages{stream="DLQ"} 0`,
			"ecogrid_outbox_backlog_events"},
	}
	for m, names := range want {
		var body []byte
		// The consumer is created as cased starts; scrape until it shows.
		for deadline := time.Now().Add(30 * time.Second); ; {
			res, err := http.Get("http://" + m + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, err = io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("%s/metrics: %d %v", m, res.StatusCode, err)
			}
			if strings.Contains(string(body), "ecogrid_jetstream_consumer_pending_messages") || m == a.GriddMetrics || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		for _, n := range names {
			if !strings.Contains(string(body), n) {
				t.Errorf("%s/metrics lacks %s", m, n)
			}
		}
		if lookErr != nil {
			t.Logf("promtool not installed: exposition of %s not linted", m)
			continue
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics on %s/metrics: %v\n%s", m, err, out)
		}
	}
}

// freeBase finds a port p below the ephemeral range with p+i and
// p+1000+i free for i < n (a dev cluster's client and route ports), and
// a monitoring base likewise.
func freeBase(t *testing.T, n int, offsets ...int) int {
	t.Helper()
	for range 200 {
		base := 20000 + rand.IntN(10000)
		ok := true
		for i := range n {
			for _, off := range offsets {
				l, err := net.Listen("tcp", addr(base+off+i))
				if err != nil {
					ok = false
					break
				}
				l.Close()
			}
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

// `gridctl dev -nats-cluster 3`: the stack runs on a 3-node JetStream
// cluster, secured as the single server is, with R3 streams; the banner
// names every node; gridd and cased serve; everything stops cleanly.
func TestDevStackRunsNATSAsACluster(t *testing.T) {
	natsPort := freeBase(t, 3, 0, 1000)
	monPort := freeBase(t, 3, 0)
	cfg := devstack.Config{DataDir: t.TempDir(), DatabaseURL: dbtest.NewURL(t), NATSPort: natsPort, NATSMonitorPort: monPort,
		NATSClusterNodes: 3, GriddAddr: addr(freePort(t)), GriddMetric: addr(freePort(t)),
		CasedAddr: addr(freePort(t)), CasedMetric: addr(freePort(t))}
	readyc := make(chan devstack.Addresses, 1)
	cfg.Ready = func(a devstack.Addresses) { readyc <- a }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- devstack.Run(ctx, cfg, &out, slog.New(slog.DiscardHandler)) }()
	var a devstack.Addresses
	select {
	case a = <-readyc:
	case err := <-done:
		t.Fatalf("stack stopped during start: %v\n%s", err, out.String())
	case <-time.After(3 * time.Minute):
		t.Fatalf("stack not ready after 3 minutes:\n%s", out.String())
	}
	if len(a.NATSNodes) != 3 || len(strings.Split(a.NATSURL, ",")) != 3 {
		t.Fatalf("NATS nodes %q, URL %q: want 3", a.NATSNodes, a.NATSURL)
	}
	for i := range 3 {
		if url := "nats://" + addr(natsPort+i); !strings.Contains(out.String(), url) {
			t.Errorf("banner lacks node URL %s:\n%s", url, out.String())
		}
	}
	for _, target := range []string{a.GriddGRPC, a.CasedGRPC} {
		conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		conn.Close()
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("%s health: %v %v", target, resp, err)
		}
	}
	pw, err := os.ReadFile(filepath.Join(a.NATSPasswordDir, "nats-gridd.password"))
	if err != nil {
		t.Fatal(err)
	}
	nc, js, err := messaging.ConnectAs(ctx, a.NATSURL, messaging.Credentials{User: "gridd", Password: strings.TrimSpace(string(pw))}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{messaging.StreamViolations, messaging.StreamCases, messaging.StreamDeadLetter} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info := st.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("stream %s: replicas %d, cluster %+v; want R3", name, info.Config.Replicas, info.Cluster)
		}
	}
	nc.Close()
	checkSecuredNATS(t, a, out.String())

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stack stopped with %v\n%s", err, out.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("stack did not stop within 2 minutes")
	}
	for i := range 3 {
		for _, p := range []int{natsPort + i, natsPort + 1000 + i, monPort + i} {
			l, err := net.Listen("tcp", addr(p))
			if err != nil {
				t.Errorf("port %d still in use after stop: %v", p, err)
				continue
			}
			l.Close()
		}
	}
}

// -nats-cluster with NATS_URL set is refused: which NATS is meant?
func TestDevStackRefusesANATSClusterBesideNATSURL(t *testing.T) {
	err := devstack.Run(context.Background(), devstack.Config{DataDir: t.TempDir(), NATSURL: "nats://127.0.0.1:4222", NATSClusterNodes: 3}, io.Discard, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "unset one of them") {
		t.Fatalf("got %v", err)
	}
}
