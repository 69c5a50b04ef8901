package daemon_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"ecogrid/internal/auth"
	"ecogrid/internal/daemon"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/messaging"
	"ecogrid/internal/messaging/natstest"
	"ecogrid/internal/server"
)

func testConfig(t *testing.T) daemon.Config {
	t.Helper()
	pem, err := auth.GenerateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return daemon.Config{
		Server:   server.Config{GRPCAddr: "127.0.0.1:0", ShutdownTimeout: time.Second},
		Database: database.Config{URL: dbtest.NewURL(t)},
		NATSURL:  natstest.Start(t).URL(),
		Auth:     auth.Config{Keys: auth.KeyConfig{PrivateKeyPEM: string(pem)}},
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// The listener waits for every ServeAfter gate while workers already run;
// then health answers SERVING, and cancelling the context stops it all.
func TestProcessServesAfterGatesAndStopsOnCancel(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	addrc := make(chan string, 1)
	cfg.Ready = func(grpcAddr, _ string) { addrc <- grpcAddr }
	gate := make(chan struct{})
	workerRan := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, "test", cfg, quiet, func(_ context.Context, p *daemon.Process) error {
			if p.Pool == nil || p.JS == nil || p.AuthService == nil || p.Authorizer == nil {
				return errors.New("process lacks a shared part")
			}
			p.Go(func(ctx context.Context) error { close(workerRan); <-ctx.Done(); return ctx.Err() })
			p.ServeAfter(gate)
			return nil
		})
	}()
	select {
	case <-workerRan:
	case err := <-done:
		t.Fatalf("Run ended early: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("worker did not start")
	}
	select {
	case <-addrc:
		t.Fatal("served before the gate opened")
	case <-time.After(200 * time.Millisecond):
	}
	close(gate)
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("Run ended: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("not serving after the gate opened")
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
	defer hcancel()
	res, err := healthpb.NewHealthClient(conn).Check(hctx, &healthpb.HealthCheckRequest{})
	if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", res, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("did not stop")
	}
}

// A failing worker stops the process with its error; a failing assembly
// stops it at start and frees the port.
func TestWorkerOrAssemblyFailureStopsTheProcess(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	boom := errors.New("worker broke")
	err := daemon.Run(context.Background(), "test", cfg, quiet, func(_ context.Context, p *daemon.Process) error {
		p.Go(func(context.Context) error { return boom })
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want the worker's error", err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().String()
	l.Close()
	cfg.Server.GRPCAddr = port
	err = daemon.Run(context.Background(), "test", cfg, quiet, func(context.Context, *daemon.Process) error {
		return errors.New("cannot assemble")
	})
	if err == nil || !strings.Contains(err.Error(), "cannot assemble") {
		t.Fatalf("Run = %v", err)
	}
	l, err = net.Listen("tcp", port)
	if err != nil {
		t.Fatalf("port still held after a failed start: %v", err)
	}
	l.Close()
}

// Health follows the dependencies: NOT_SERVING (and /healthz 503 saying
// why) while NATS is down or PostgreSQL is gone, SERVING again once NATS
// is back. The process connects to the secured bus as gridd.
func TestHealthReflectsPostgresAndNATS(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	bus := natstest.Start(t, natstest.Secured())
	cfg.NATSURL, cfg.NATS = bus.URL(), bus.Credentials(messaging.RoleGridd)
	cfg.Server.MetricsAddr = "127.0.0.1:0"
	cfg.HealthInterval = 100 * time.Millisecond
	type addrs struct{ grpc, metrics string }
	addrc := make(chan addrs, 1)
	cfg.Ready = func(g, m string) { addrc <- addrs{g, m} }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, "gridd", cfg, quiet, func(context.Context, *daemon.Process) error { return nil })
	}()
	var a addrs
	select {
	case a = <-addrc:
	case err := <-done:
		t.Fatalf("Run ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("not serving")
	}
	conn, err := grpc.NewClient(a.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	// waitFor polls until gRPC health and /healthz both say want.
	waitFor := func(what string, want healthpb.HealthCheckResponse_ServingStatus, bodyHas string) {
		t.Helper()
		wantCode := http.StatusOK
		if want != healthpb.HealthCheckResponse_SERVING {
			wantCode = http.StatusServiceUnavailable
		}
		deadline := time.Now().Add(20 * time.Second)
		var last string
		for time.Now().Before(deadline) {
			hctx, hcancel := context.WithTimeout(ctx, 2*time.Second)
			res, err := health.Check(hctx, &healthpb.HealthCheckRequest{})
			hcancel()
			resp, herr := http.Get("http://" + a.metrics + "/healthz")
			if err == nil && herr == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				last = fmt.Sprintf("grpc %v, http %d %q", res.GetStatus(), resp.StatusCode, body)
				if res.GetStatus() == want && resp.StatusCode == wantCode && strings.Contains(string(body), bodyHas) {
					return
				}
			} else {
				last = fmt.Sprintf("grpc err %v, http err %v", err, herr)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s: health is %s", what, last)
	}
	waitFor("at start", healthpb.HealthCheckResponse_SERVING, "ok")

	bus.Shutdown()
	waitFor("NATS down", healthpb.HealthCheckResponse_NOT_SERVING, "NATS is")
	bus.Restart(t)
	waitFor("NATS back", healthpb.HealthCheckResponse_SERVING, "ok")

	u, err := url.Parse(cfg.Database.URL)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(ctx, dbtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `DROP DATABASE `+pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()+` WITH (FORCE)`); err != nil {
		t.Fatal(err)
	}
	waitFor("database gone", healthpb.HealthCheckResponse_NOT_SERVING, "PostgreSQL does not answer")
	cancel()
	<-done
}
