// Package server builds ecogrid's gRPC servers: the interceptor chain,
// health and reflection, the Prometheus /metrics port, message and stream
// limits, TLS, and graceful shutdown that lets in-flight calls finish.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// Config is a server's network and limits configuration.
type Config struct {
	GRPCAddr             string        // host:port of the gRPC listener
	MetricsAddr          string        // host:port of the /metrics HTTP listener; empty disables it
	MaxRecvMsgBytes      int           // largest request message; photos stream in chunks below it
	MaxSendMsgBytes      int           // largest response message
	MaxConcurrentStreams uint32        // per connection
	ShutdownTimeout      time.Duration // how long in-flight calls may take to finish on SIGTERM
	TLSCertFile          string        // PEM certificate; with TLSKeyFile enables TLS
	TLSKeyFile           string
}

func (c *Config) defaults() {
	if c.MaxRecvMsgBytes == 0 {
		c.MaxRecvMsgBytes = 4 << 20
	}
	if c.MaxSendMsgBytes == 0 {
		c.MaxSendMsgBytes = 16 << 20
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = 512
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
}

// Options are the parts a service brings to the chain.
type Options struct {
	// Auth interceptors (from internal/auth) run after logging and metrics
	// and before validation.
	AuthUnary  grpc.UnaryServerInterceptor
	AuthStream grpc.StreamServerInterceptor
	// Registry receives the server's metrics; nil makes a new one.
	Registry *prometheus.Registry
}

// Server is a gRPC server with its health service and metrics endpoint.
type Server struct {
	GRPC     *grpc.Server
	Health   *health.Server
	Registry *prometheus.Registry

	cfg      Config
	log      *slog.Logger
	lis      net.Listener
	mlis     net.Listener
	metrics  *grpcprom.ServerMetrics
	services []string

	healthMu  sync.Mutex
	unhealthy string // why the dependencies are down; "" when serving
}

// SetUnhealthy turns health (gRPC health for every service and the
// server, and /healthz) NOT_SERVING with reason, or back to SERVING when
// reason is "": a process whose database or broker is unreachable should
// be taken out of rotation, not sent calls that fail.
func (s *Server) SetUnhealthy(reason string) {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	s.unhealthy = reason
	s.applyHealth()
}

// applyHealth sets every status from s.unhealthy; healthMu is held.
func (s *Server) applyHealth() {
	st := healthpb.HealthCheckResponse_SERVING
	if s.unhealthy != "" {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	for name := range s.GRPC.GetServiceInfo() {
		s.Health.SetServingStatus(name, st)
	}
	s.Health.SetServingStatus("", st)
}

// healthz answers 200 "ok" while serving, else 503 with the reason.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	s.healthMu.Lock()
	reason := s.unhealthy
	s.healthMu.Unlock()
	if reason != "" {
		http.Error(w, "not serving: "+reason, http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ok\n")) //nolint:errcheck
}

// New listens on the configured addresses and builds the server. Services
// are registered on s.GRPC before Run.
func New(cfg Config, log *slog.Logger, opts Options) (*Server, error) {
	cfg.defaults()
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets([]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}),
	))
	reg.MustRegister(metrics)

	var creds credentials.TransportCredentials
	if cfg.TLSCertFile != "" || cfg.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading TLS certificate %s / key %s: %v", cfg.TLSCertFile, cfg.TLSKeyFile, err)
		}
		creds = credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}

	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return nil, fmt.Errorf("gRPC listener %s: %v (is another server using the port?)", cfg.GRPCAddr, err)
	}
	var mlis net.Listener
	if cfg.MetricsAddr != "" {
		mlis, err = net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			lis.Close()
			return nil, fmt.Errorf("metrics listener %s: %v (is another server using the port?)", cfg.MetricsAddr, err)
		}
	}

	logOpts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithFieldsFromContext(func(ctx context.Context) logging.Fields {
			if id := RequestID(ctx); id != "" {
				return logging.Fields{"request_id", id}
			}
			return nil
		}),
	}
	recoveryOpt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in handler", "panic", fmt.Sprint(p), "request_id", RequestID(ctx))
		return status.Error(codes.Internal, "internal error")
	})
	logger := interceptorLogger(log)

	// Interceptor order, outermost first:
	//   1. recovery    — a panic anywhere below becomes Internal, never a crash;
	//   2. request id  — taken from x-request-id or made, echoed in the header;
	//   3. logging     — one line per finished call with code and duration;
	//   4. metrics     — Prometheus counters and handling-time histograms;
	//   5. auth        — token → scope.Caller, role policy (internal/auth);
	//   6. validation  — every request (and each streamed message) is checked
	//                    against its proto's protovalidate rules; violations
	//                    become InvalidArgument with BadRequest details;
	//   7. errors      — the handler's error becomes a gRPC status in one
	//                    place (structerr.ToStatus); internal errors are
	//                    logged in full and masked for the client.
	unary := []grpc.UnaryServerInterceptor{
		recovery.UnaryServerInterceptor(recoveryOpt),
		requestIDUnary,
		logging.UnaryServerInterceptor(logger, logOpts...),
		metrics.UnaryServerInterceptor(),
	}
	stream := []grpc.StreamServerInterceptor{
		recovery.StreamServerInterceptor(recoveryOpt),
		requestIDStream,
		logging.StreamServerInterceptor(logger, logOpts...),
		metrics.StreamServerInterceptor(),
	}
	if opts.AuthUnary != nil {
		unary = append(unary, opts.AuthUnary)
	}
	if opts.AuthStream != nil {
		stream = append(stream, opts.AuthStream)
	}
	unary = append(unary, validateUnary, errorsUnary(log))
	stream = append(stream, validateStream, errorsStream(log))

	sopts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgBytes),
		grpc.MaxSendMsgSize(cfg.MaxSendMsgBytes),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute, Time: 2 * time.Minute, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 20 * time.Second, PermitWithoutStream: true}),
	}
	if creds != nil {
		sopts = append(sopts, grpc.Creds(creds))
	}
	gs := grpc.NewServer(sopts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	if err := registerReflection(gs); err != nil {
		log.Error("reflection serves descriptors without documentation", "err", err)
	}

	return &Server{GRPC: gs, Health: hs, Registry: reg, cfg: cfg, log: log, lis: lis, mlis: mlis, metrics: metrics}, nil
}

// Addr is the bound gRPC address (useful with port 0).
func (s *Server) Addr() string { return s.lis.Addr().String() }

// MetricsAddr is the bound /metrics address, or "" when disabled.
func (s *Server) MetricsAddr() string {
	if s.mlis == nil {
		return ""
	}
	return s.mlis.Addr().String()
}

// Close releases the listeners of a server that will not Run (start-up
// failed after New).
func (s *Server) Close() {
	s.GRPC.Stop()
	s.lis.Close() //nolint:errcheck
	if s.mlis != nil {
		s.mlis.Close() //nolint:errcheck
	}
}

// Run serves until ctx is cancelled, then shuts down gracefully: health
// turns NOT_SERVING, new calls are refused, in-flight calls get up to
// ShutdownTimeout to finish, then the rest are cut. A Serve failure is
// returned, so the process stops rather than limping on.
func (s *Server) Run(ctx context.Context) error {
	s.metrics.InitializeMetrics(s.GRPC)
	s.healthMu.Lock()
	s.applyHealth()
	s.healthMu.Unlock()

	errc := make(chan error, 2)
	go func() {
		if err := s.GRPC.Serve(s.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("gRPC serve: %w", err)
		}
	}()
	var hs *http.Server
	if s.mlis != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{Registry: s.Registry}))
		mux.HandleFunc("/healthz", s.healthz)
		hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := hs.Serve(s.mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("metrics serve: %w", err)
			}
		}()
	}
	s.log.Info("serving", "grpc_addr", s.Addr(), "metrics_addr", s.MetricsAddr(), "tls", s.cfg.TLSCertFile != "")

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout.String())
	s.Health.Shutdown()
	done := make(chan struct{})
	go func() { s.GRPC.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.cfg.ShutdownTimeout):
		s.log.Warn("shutdown timeout: cutting remaining calls")
		s.GRPC.Stop()
		<-done
	}
	if hs != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx) //nolint:errcheck
	}
	return runErr
}

func interceptorLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}
