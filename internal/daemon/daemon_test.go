package daemon_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"ecogrid/internal/auth"
	"ecogrid/internal/daemon"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
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
