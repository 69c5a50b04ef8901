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
	c.Server.RegisterFlags(fs, "CASED", "127.0.0.1:7444", "127.0.0.1:9465")
	c.Database.RegisterFlags(fs, "cased")
	messaging.RegisterFlags(fs, &c.NATSURL, &c.StreamReplicas)
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
	g.Go(func() error { return server.Background(consumer.Run(gctx)) })
	g.Go(func() error { return server.Background(tracker.RunBackground(gctx, cfg.Background)) })
	g.Go(func() error { return server.Background(relay.Run(gctx)) })
	g.Go(func() error {
		if cfg.Ready != nil {
			cfg.Ready(srv.Addr(), srv.MetricsAddr())
		}
		return srv.Run(gctx)
	})
	return g.Wait()
}
