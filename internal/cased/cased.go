// Package cased assembles the case-tracking service: the JetStream consumer
// that turns violations into cases, the case workflow, and the relay that
// publishes case events. cmd/cased and `gridctl dev` both run it through Run.
package cased

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/auth"
	"ecogrid/internal/cases"
	"ecogrid/internal/database"
	"ecogrid/internal/flagenv"
	"ecogrid/internal/messaging"
	"ecogrid/internal/outbox"
	"ecogrid/internal/server"
)

// Config is cased's whole configuration, composed of its components'.
type Config struct {
	Server         server.Config
	Database       database.Config
	NATSURL        string
	StreamReplicas int

	Auth       auth.Config // verifies access tokens (gridd's public key is enough)
	Consumer   cases.ConsumerConfig
	Background cases.BackgroundConfig
	Relay      outbox.RelayConfig

	// Ready, when set, is called once the server listens (dev stack, tests).
	Ready func(grpcAddr, metricsAddr string)
}

// RegisterFlags defines cased's flags, each with an environment fallback.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	flagenv.String(fs, &c.Server.GRPCAddr, "grpc-addr", "CASED_GRPC_ADDR", "127.0.0.1:7444", "gRPC listen address")
	flagenv.String(fs, &c.Server.MetricsAddr, "metrics-addr", "CASED_METRICS_ADDR", "127.0.0.1:9465", "Prometheus /metrics listen address (empty disables)")
	flagenv.String(fs, &c.Server.TLSCertFile, "tls-cert", "CASED_TLS_CERT", "", "PEM certificate file; with -tls-key enables TLS")
	flagenv.String(fs, &c.Server.TLSKeyFile, "tls-key", "CASED_TLS_KEY", "", "PEM private key file")
	flagenv.Duration(fs, &c.Server.ShutdownTimeout, "shutdown-timeout", "CASED_SHUTDOWN_TIMEOUT", 0, "how long in-flight calls may run after SIGTERM (default 30s)")
	flagenv.String(fs, &c.Database.URL, "database-url", "DATABASE_URL", database.DefaultURL, "PostgreSQL URL")
	flagenv.Int(fs, &c.Database.MaxConns, "database-max-conns", "DATABASE_MAX_CONNS", 16, "pool size: one per worker plus relay, sweeper, reconciler and RPCs")
	flagenv.Bool(fs, &c.Database.MigrateOnStart, "migrate", "ECOGRID_MIGRATE", false, "apply pending migrations at start")
	c.Database.ApplicationName = "cased"
	flagenv.String(fs, &c.NATSURL, "nats-url", "NATS_URL", messaging.DefaultURL, "NATS server URL (JetStream enabled)")
	flagenv.Int(fs, &c.StreamReplicas, "stream-replicas", "ECOGRID_STREAM_REPLICAS", 1, "JetStream stream replicas (3 in production)")
	c.Auth.RegisterFlags(fs)
	flagenv.Int(fs, &c.Consumer.MaxDeliver, "max-deliver", "CASED_MAX_DELIVER", 8, "deliveries of a failing violation before it is dead-lettered")
	flagenv.Int(fs, &c.Consumer.Workers, "workers", "CASED_WORKERS", 4, "concurrent violation handlers")
	flagenv.Duration(fs, &c.Background.SweepInterval, "overdue-sweep", "CASED_OVERDUE_SWEEP", time.Minute, "how often overdue cases are escalated")
	flagenv.Duration(fs, &c.Background.ReconcileInterval, "reconcile-interval", "CASED_RECONCILE_INTERVAL", time.Minute, "how often violations without a case are looked for")
	flagenv.Duration(fs, &c.Background.Reconcile.Grace, "reconcile-grace", "CASED_RECONCILE_GRACE", 2*time.Minute, "how long a violation may take to become a case before reconciliation")
	host, _ := os.Hostname()
	c.Relay.Name = "cased@" + host
}

// Run serves until ctx is cancelled.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	pool, err := database.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.Database.MigrateOnStart {
		if _, err := database.Migrate(ctx, pool); err != nil {
			return err
		}
	}
	nc, js, err := messaging.Connect(ctx, cfg.NATSURL, "cased", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := messaging.EnsureStreams(ctx, js, messaging.StreamConfig{Replicas: cfg.StreamReplicas}); err != nil {
		return fmt.Errorf("creating streams: %w", err)
	}

	authz, _, err := auth.New(cfg.Auth, pool, log.With("component", "auth"))
	if err != nil {
		return err
	}
	tracker := cases.NewTracker(pool, log.With("component", "cases"))
	consumer := cases.NewConsumer(js, tracker, cfg.Consumer, log.With("component", "consumer"))
	relay := outbox.NewRelay(pool, js, cfg.Relay, log.With("component", "outbox_relay"))
	srv, err := server.New(cfg.Server, log, server.Options{AuthUnary: authz.Unary(), AuthStream: authz.Stream()})
	if err != nil {
		return err
	}
	if err := cases.RegisterMetrics(srv.Registry); err != nil {
		return err
	}
	if err := outbox.RegisterMetrics(srv.Registry, pool); err != nil {
		return err
	}
	ecogridv1.RegisterCaseServiceServer(srv.GRPC, cases.NewService(tracker, log))
	if err := auth.CheckServer(srv.GRPC); err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ignoreCanceled(consumer.Run(gctx)) })
	g.Go(func() error { return ignoreCanceled(tracker.RunBackground(gctx, cfg.Background)) })
	g.Go(func() error { return ignoreCanceled(relay.Run(gctx)) })
	g.Go(func() error {
		if cfg.Ready != nil {
			cfg.Ready(srv.Addr(), srv.MetricsAddr())
		}
		return srv.Run(gctx)
	})
	return g.Wait()
}

func ignoreCanceled(err error) error {
	if err == context.Canceled {
		return nil
	}
	return err
}
