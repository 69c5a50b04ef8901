// Package cased assembles the case-tracking service: the JetStream consumer
// that turns violations into cases, the case workflow, and the relay that
// publishes case events. cmd/cased and `gridctl dev` both run it through Run.
package cased

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	"ecogrid/internal/database"
	"ecogrid/internal/flagenv"
	"ecogrid/internal/messaging"
	"ecogrid/internal/server"
)

// Config is cased's whole configuration, composed of its components'.
type Config struct {
	Server         server.Config
	Database       database.Config
	NATSURL        string
	StreamReplicas int

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
	flagenv.Int(fs, &c.Database.MaxConns, "database-max-conns", "DATABASE_MAX_CONNS", 0, "pool size (0: max(4, cores))")
	flagenv.Bool(fs, &c.Database.MigrateOnStart, "migrate", "ECOGRID_MIGRATE", false, "apply pending migrations at start")
	c.Database.ApplicationName = "cased"
	flagenv.String(fs, &c.NATSURL, "nats-url", "NATS_URL", messaging.DefaultURL, "NATS server URL (JetStream enabled)")
	flagenv.Int(fs, &c.StreamReplicas, "stream-replicas", "ECOGRID_STREAM_REPLICAS", 1, "JetStream stream replicas (3 in production)")
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

	srv, err := server.New(cfg.Server, log, server.Options{})
	if err != nil {
		return err
	}
	// The case service and consumer are registered here as they land.

	if cfg.Ready != nil {
		cfg.Ready(srv.Addr(), srv.MetricsAddr())
	}
	return srv.Run(ctx)
}
