package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/server"
)

// sleeper is a test service whose Sleep runs pg_sleep(seconds) in the
// database with the call's context, and whose Fail returns a bare error.
type sleeper struct {
	pool    *pgxpool.Pool
	started chan struct{}
}

func (s *sleeper) sleep(ctx context.Context, in *wrapperspb.DoubleValue) (*wrapperspb.StringValue, error) {
	if s.started != nil {
		close(s.started)
	}
	if _, err := s.pool.Exec(ctx, `SELECT pg_sleep($1)`, in.Value); err != nil {
		return nil, err
	}
	return wrapperspb.String("slept"), nil
}

var sleeperDesc = grpc.ServiceDesc{
	ServiceName: "ecogrid.test.Sleeper",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Sleep", Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.DoubleValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				return srv.(*sleeper).sleep(ctx, req.(*wrapperspb.DoubleValue))
			}
			return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/ecogrid.test.Sleeper/Sleep"}, h)
		}},
		{MethodName: "Fail", Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				if req.(*wrapperspb.StringValue).Value == "panic" {
					panic("boom")
				}
				return nil, errors.New("secret detail: password=hunter2")
			}
			return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/ecogrid.test.Sleeper/Fail"}, h)
		}},
	},
}

type harness struct {
	srv    *server.Server
	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, svc *sleeper, cfg server.Config) *harness {
	t.Helper()
	if cfg.GRPCAddr == "" {
		cfg.GRPCAddr = "127.0.0.1:0"
	}
	if cfg.MetricsAddr == "" {
		cfg.MetricsAddr = "127.0.0.1:0"
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(cfg, log, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv.GRPC.RegisterService(&sleeperDesc, svc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{srv: srv, conn: conn, cancel: cancel, done: done}
	t.Cleanup(func() { conn.Close(); cancel(); <-done })
	return h
}

func (h *harness) sleep(ctx context.Context, seconds float64) (*wrapperspb.StringValue, error) {
	out := new(wrapperspb.StringValue)
	err := h.conn.Invoke(ctx, "/ecogrid.test.Sleeper/Sleep", wrapperspb.Double(seconds), out)
	return out, err
}

func TestHealthReflectionAndMetrics(t *testing.T) {
	t.Parallel()
	h := start(t, &sleeper{}, server.Config{})
	ctx := context.Background()
	resp, err := healthpb.NewHealthClient(h.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health %v %v", resp, err)
	}
	stream, err := reflectionpb.NewServerReflectionClient(h.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	rr, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rr.GetListServicesResponse().GetService() {
		names = append(names, s.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "ecogrid.test.Sleeper") {
		t.Fatalf("reflection lists %v", names)
	}
	// One call so the histogram has a sample, then scrape.
	if _, err := h.sleep(ctx, 0); err == nil {
		t.Fatal("Sleep without a database should fail")
	}
	res, err := http.Get("http://" + h.srv.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `grpc_server_handled_total{grpc_code="Internal",grpc_method="Sleep"`) {
		t.Fatalf("metrics %d:\n%.2000s", res.StatusCode, body)
	}
}

func TestErrorsAreMaskedAndPanicsRecovered(t *testing.T) {
	t.Parallel()
	h := start(t, &sleeper{}, server.Config{})
	for _, in := range []string{"error", "panic"} {
		err := h.conn.Invoke(context.Background(), "/ecogrid.test.Sleeper/Fail", wrapperspb.String(in), new(wrapperspb.StringValue))
		st := status.Convert(err)
		if st.Code() != codes.Internal || strings.Contains(st.Message(), "hunter2") {
			t.Errorf("%s: got %v %q, want masked Internal", in, st.Code(), st.Message())
		}
	}
	// The server is still up after the panic.
	if _, err := healthpb.NewHealthClient(h.conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
}

func TestShutdownLetsInFlightCallFinish(t *testing.T) {
	t.Parallel()
	svc := &sleeper{pool: dbtest.NewPool(t), started: make(chan struct{})}
	h := start(t, svc, server.Config{ShutdownTimeout: 20 * time.Second})
	var wg sync.WaitGroup
	var out *wrapperspb.StringValue
	var callErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		out, callErr = h.sleep(context.Background(), 1.5)
	}()
	<-svc.started
	h.cancel() // what SIGTERM does through signal.NotifyContext
	wg.Wait()
	if callErr != nil || out.GetValue() != "slept" {
		t.Fatalf("in-flight call during shutdown: %v %v", out, callErr)
	}
	if err := <-h.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	h.done <- nil // for cleanup
	// New calls are refused once stopped.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := h.sleep(ctx, 0); err == nil {
		t.Fatal("call after shutdown succeeded")
	}
}

func TestDeadlineCancelsSQL(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	h := start(t, &sleeper{pool: pool}, server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := h.sleep(ctx, 60)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	// The statement must be cancelled on the server, not left sleeping.
	var running int
	for range 100 {
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state = 'active' AND query LIKE 'SELECT pg_sleep%'`).Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%d pg_sleep statements still running after the deadline", running)
}

func TestListenerInUseFailsClearly(t *testing.T) {
	t.Parallel()
	h := start(t, &sleeper{}, server.Config{})
	_, err := server.New(server.Config{GRPCAddr: h.srv.Addr()}, slog.Default(), server.Options{})
	if err == nil || !strings.Contains(err.Error(), "is another server using the port") {
		t.Fatalf("got %v", err)
	}
}
