package fieldsim

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// countingHealth is the real health service, counting the checks it answers.
type countingHealth struct {
	*health.Server
	n atomic.Int64
}

func (h *countingHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	h.n.Add(1)
	return h.Server.Check(ctx, req)
}

func startReplica(t *testing.T, addr string) (*grpc.Server, *countingHealth, string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	h := &countingHealth{Server: health.NewServer()}
	healthpb.RegisterHealthServer(srv, h)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return srv, h, l.Addr().String()
}

// The calls of a run go to every replica named, and all of them to the
// survivor while one is down; do's retry covers the call caught by the kill.
func TestDialSpreadsOverReplicasAndMovesOffADeadOne(t *testing.T) {
	srvA, a, addrA := startReplica(t, "127.0.0.1:0")
	_, b, addrB := startReplica(t, "127.0.0.1:0")
	conn, err := dial(addrA + ", " + addrB)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	s := &Sim{cfg: Config{CallTimeout: 2 * time.Second}, m: newMetrics()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	call := func() error {
		return s.do(ctx, nil, "Health/Check", func(ctx context.Context) error {
			_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		})
	}
	for range 40 {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	if a.n.Load() == 0 || b.n.Load() == 0 {
		t.Fatalf("40 calls with both replicas up: %d to the first, %d to the second; want both used", a.n.Load(), b.n.Load())
	}
	srvA.Stop() // the first replica dies
	before := b.n.Load()
	for range 40 {
		if err := call(); err != nil {
			t.Fatalf("a call with one replica left failed: %v", err)
		}
	}
	if got := b.n.Load() - before; got != 40 {
		t.Errorf("the survivor answered %d of 40 calls after the other died", got)
	}

	// The first replica comes back on its address and rejoins.
	_, a2, _ := startReplica(t, addrA)
	deadline := time.Now().Add(30 * time.Second)
	for a2.n.Load() == 0 && time.Now().Before(deadline) {
		if err := call(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if a2.n.Load() == 0 {
		t.Error("the restarted replica got no call within 30 s")
	}
}

func TestValidateChecksEveryReplica(t *testing.T) {
	c := DefaultConfig()
	c.AdminPassword = "x"
	c.DatabaseURL = "postgres://postgres@127.0.0.1:5432/ecogrid"
	c.GriddAddr = "127.0.0.1:7443,127.0.0.1:7453"
	if err := c.Validate(); err != nil {
		t.Fatalf("two loopback replicas: %v", err)
	}
	c.CasedAddr = "127.0.0.1:7444,192.0.2.7:7454"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "192.0.2.7") {
		t.Errorf("a remote second cased replica: %v", err)
	}
	c.CasedAddr = " , "
	if err := c.Validate(); err == nil {
		t.Error("an empty replica list was accepted")
	}
	if _, err := dial(""); err == nil {
		t.Error("dial of no address succeeded")
	}
}
