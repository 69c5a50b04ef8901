// Package gridd assembles the field-facing service: grid, people and
// assignments, auth, patrols, reports, photos, the accountability ledger's
// read side, and the outbox relay that publishes violations to JetStream.
// cmd/gridd and `gridctl dev` both run it through Run.
package gridd

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

// Config is gridd's whole configuration, composed of its components'.
type Config struct {
	Server         server.Config
	Database       database.Config
	NATSURL        string
	StreamReplicas int

	// Ready, when set, is called once the server listens (dev stack, tests).
	Ready func(grpcAddr, metricsAddr string)
}

// RegisterFlags defines gridd's flags, each with an environment fallback.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	flagenv.String(fs, &c.Server.GRPCAddr, "grpc-addr", "GRIDD_GRPC_ADDR", "127.0.0.1:7443", "gRPC listen address")
	flagenv.String(fs, &c.Server.MetricsAddr, "metrics-addr", "GRIDD_METRICS_ADDR", "127.0.0.1:9464", "Prometheus /metrics listen address (empty disables)")
	flagenv.String(fs, &c.Server.TLSCertFile, "tls-cert", "GRIDD_TLS_CERT", "", "PEM certificate file; with -tls-key enables TLS")
	flagenv.String(fs, &c.Server.TLSKeyFile, "tls-key", "GRIDD_TLS_KEY", "", "PEM private key file")
	flagenv.Duration(fs, &c.Server.ShutdownTimeout, "shutdown-timeout", "GRIDD_SHUTDOWN_TIMEOUT", 0, "how long in-flight calls may run after SIGTERM (default 30s)")
	flagenv.Int(fs, &c.Server.MaxRecvMsgBytes, "max-recv-bytes", "GRIDD_MAX_RECV_BYTES", 4<<20, "largest request message in bytes")
	flagenv.Int(fs, &c.Server.MaxConcurrentStreams, "max-concurrent-streams", "GRIDD_MAX_CONCURRENT_STREAMS", 512, "concurrent calls per client connection")
	flagenv.String(fs, &c.Database.URL, "database-url", "DATABASE_URL", database.DefaultURL, "PostgreSQL URL")
	flagenv.Int(fs, &c.Database.MaxConns, "database-max-conns", "DATABASE_MAX_CONNS", 0, "pool size (0: max(4, cores))")
	flagenv.Bool(fs, &c.Database.MigrateOnStart, "migrate", "ECOGRID_MIGRATE", false, "apply pending migrations at start")
	c.Database.ApplicationName = "gridd"
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
		applied, err := database.Migrate(ctx, pool)
		if err != nil {
			return err
		}
		log.Info("migrations applied", "count", len(applied))
	}
	nc, js, err := messaging.Connect(ctx, cfg.NATSURL, "gridd", log)
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
	// Services are registered here as the bounded contexts land.

	if cfg.Ready != nil {
		cfg.Ready(srv.Addr(), srv.MetricsAddr())
	}
	return srv.Run(ctx)
}
