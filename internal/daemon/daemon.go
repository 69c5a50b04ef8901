// Package daemon is the start-up every ecogrid server process shares: the
// PostgreSQL pool and migrations, the NATS connection and JetStream streams,
// the access-token interceptors, the gRPC server with health, reflection and
// /metrics, and the supervision of background workers next to it. gridd and
// cased each describe only what they serve (an Assemble function that
// registers services and workers); everything else is here once.
//
// It sits above auth in the layering (platform → … → auth → daemon →
// gridd, cased), so it may build the token interceptors itself.
package daemon

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"

	"ecogrid/internal/auth"
	"ecogrid/internal/database"
	"ecogrid/internal/flagenv"
	"ecogrid/internal/messaging"
	"ecogrid/internal/server"
)

// Config is what every server process needs, composed into each binary's
// own configuration.
type Config struct {
	Server   server.Config
	Database database.Config
	NATSURL  string
	// NATS are this process's NATS user and password (see
	// messaging.Permissions); unset connects without credentials.
	NATS messaging.Credentials
	// StreamReplicas of the JetStream streams; 0 chooses by the server (1
	// alone, 3 on a cluster: messaging.StreamConfig).
	StreamReplicas int
	Auth           auth.Config

	// HealthInterval is how often PostgreSQL and NATS are checked for
	// health (DefaultHealthInterval when 0).
	HealthInterval time.Duration

	// Ready, when set, is called once the server listens (dev stack, tests).
	Ready func(grpcAddr, metricsAddr string)
}

// RegisterFlags defines the shared flags. envPrefix names the binary's own
// variables (GRIDD_GRPC_ADDR …); name is the PostgreSQL application name.
func (c *Config) RegisterFlags(fs *flag.FlagSet, name, envPrefix, grpcAddr, metricsAddr string) {
	c.Server.RegisterFlags(fs, envPrefix, grpcAddr, metricsAddr)
	c.Database.RegisterFlags(fs, name)
	messaging.RegisterFlags(fs, &c.NATSURL, &c.StreamReplicas)
	messaging.RegisterCredentialFlags(fs, &c.NATS)
	flagenv.Duration(fs, &c.HealthInterval, "health-interval", "ECOGRID_HEALTH_INTERVAL", DefaultHealthInterval, "how often PostgreSQL and NATS are checked; health is NOT_SERVING while either is down")
	c.Auth.RegisterFlags(fs)
}

// Process is a server process being assembled: the shared connections an
// Assemble function builds its services from, and the places it registers
// them. Registering a gRPC service or a background worker is one line.
type Process struct {
	Name   string
	Log    *slog.Logger
	Pool   *pgxpool.Pool
	NATS   *nats.Conn
	JS     jetstream.JetStream
	Server *server.Server
	// Authorizer checks every call's access token against the policy.
	Authorizer *auth.Authorizer
	// AuthService logs people in; nil when the process holds only public
	// keys (cased).
	AuthService *auth.Service

	workers []func(context.Context) error
	gates   []<-chan struct{}
}

// RegisterService adds a gRPC service. Process is a grpc.ServiceRegistrar,
// so the generated functions take it as it is:
// ecogridv1.RegisterCaseServiceServer(p, cases.NewService(…)).
func (p *Process) RegisterService(desc *grpc.ServiceDesc, impl any) {
	p.Server.GRPC.RegisterService(desc, impl)
}

var _ grpc.ServiceRegistrar = (*Process)(nil)

// Go adds a background worker running beside the server until the process
// stops. A worker returning an error (other than the cancellation of its
// context) stops the whole process with that error; returning nil ends
// only the worker.
func (p *Process) Go(run func(ctx context.Context) error) {
	p.workers = append(p.workers, func(ctx context.Context) error { return server.Background(run(ctx)) })
}

// ServeAfter holds the gRPC listener back until ready is closed (the grid
// index's first load, say); the workers already run meanwhile.
func (p *Process) ServeAfter(ready <-chan struct{}) { p.gates = append(p.gates, ready) }

// Assemble builds a binary's services and workers on p.
type Assemble func(ctx context.Context, p *Process) error

// Run starts a server process and serves until ctx is cancelled: it opens
// the pool (migrating when configured), connects to NATS and ensures the
// streams, builds the auth interceptors and the server, lets assemble add
// the binary's services and workers, refuses to serve an RPC the access
// policy does not name, and runs workers and server together: when one
// fails, all stop and Run returns the error.
func Run(ctx context.Context, name string, cfg Config, log *slog.Logger, assemble Assemble) error {
	pool, err := database.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.Database.MigrateOnStart {
		applied, err := database.Migrate(ctx, pool)
		if err != nil {
			return err
		}
		log.Info("migrations applied", "count", len(applied))
	}
	nc, js, err := messaging.ConnectAs(ctx, cfg.NATSURL, cfg.NATS, name, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := messaging.EnsureStreams(ctx, js, messaging.StreamConfig{Replicas: cfg.StreamReplicas, Log: log}); err != nil {
		return fmt.Errorf("creating streams: %w", err)
	}
	authz, authSvc, err := auth.New(cfg.Auth, pool, log.With("component", "auth"))
	if err != nil {
		return err
	}
	srv, err := server.New(cfg.Server, log, server.Options{AuthUnary: authz.Unary(), AuthStream: authz.Stream()})
	if err != nil {
		return err
	}
	if err := registerProcessMetrics(srv.Registry, name, pool); err != nil {
		srv.Close()
		return err
	}
	if authSvc != nil { // the process that logs people in
		if err := auth.RegisterMetrics(srv.Registry); err != nil {
			srv.Close()
			return err
		}
	}
	p := &Process{Name: name, Log: log, Pool: pool, NATS: nc, JS: js, Server: srv, Authorizer: authz, AuthService: authSvc}
	// Sessions and grants from a cache kept current by PostgreSQL's change
	// notices, instead of two reads per call.
	if err := auth.RegisterCacheMetrics(srv.Registry); err != nil {
		srv.Close()
		return err
	}
	p.Go(func(ctx context.Context) error { authz.RunCache(ctx, pool, auth.CacheConfig{}); return nil })
	if err := assemble(ctx, p); err != nil {
		srv.Close()
		return err
	}
	p.Go(func(ctx context.Context) error { return p.watchDependencies(ctx, cfg.HealthInterval) })
	// Deny by default: refuse to serve an RPC the access policy does not name.
	if err := auth.CheckServer(srv.GRPC); err != nil {
		srv.Close()
		return err
	}
	return p.run(ctx, cfg.Ready)
}

func (p *Process) run(ctx context.Context, ready func(grpcAddr, metricsAddr string)) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, w := range p.workers {
		g.Go(func() error { return w(gctx) })
	}
	for _, gate := range p.gates {
		select {
		case <-gate:
		case <-gctx.Done():
			p.Server.Close()
			return g.Wait()
		}
	}
	g.Go(func() error {
		if ready != nil {
			ready(p.Server.Addr(), p.Server.MetricsAddr())
		}
		err := p.Server.Run(gctx)
		if err == nil && ctx.Err() == nil {
			// A worker failed and cancelled gctx; its error is what Wait
			// reports.
			return nil
		}
		return err
	})
	return g.Wait()
}
