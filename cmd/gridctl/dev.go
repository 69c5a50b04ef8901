package main

import (
	"context"
	"flag"
	"log/slog"
	"os"

	"ecogrid/internal/devstack"
	"ecogrid/internal/flagenv"
)

func runDev(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gridctl dev", flag.ContinueOnError)
	var cfg devstack.Config
	flagenv.String(fs, &cfg.DataDir, "data", "ECOGRID_DEV_DATA", ".dev", "folder for the private PostgreSQL cluster and JetStream storage")
	flagenv.String(fs, &cfg.DatabaseURL, "database-url", "DATABASE_URL", "", "use this PostgreSQL (with PostGIS) instead of a private cluster")
	flagenv.String(fs, &cfg.NATSURL, "nats-url", "NATS_URL", "", "use this NATS (JetStream) instead of an embedded one")
	flagenv.Int(fs, &cfg.PGPort, "pg-port", "ECOGRID_DEV_PG_PORT", 55432, "port of the private PostgreSQL cluster")
	flagenv.Int(fs, &cfg.NATSPort, "nats-port", "ECOGRID_DEV_NATS_PORT", 14222, "port of the embedded NATS")
	flagenv.Int(fs, &cfg.NATSMonitorPort, "nats-monitor-port", "ECOGRID_DEV_NATS_MONITOR_PORT", 18222, "HTTP monitoring port of the embedded NATS (/varz, /jsz, /healthz); 0 turns it off")
	flagenv.Int(fs, &cfg.NATSClusterNodes, "nats-cluster", "ECOGRID_DEV_NATS_CLUSTER", 0, "run the embedded NATS as a JetStream cluster of this many nodes (3 for R3 streams) on -nats-port, -nats-port+1, …, routes on -nats-port+1000+i; 0 runs one server")
	flagenv.String(fs, &cfg.GriddAddr, "gridd-addr", "GRIDD_GRPC_ADDR", "127.0.0.1:7443", "gridd gRPC address")
	flagenv.String(fs, &cfg.GriddMetric, "gridd-metrics-addr", "GRIDD_METRICS_ADDR", "127.0.0.1:9464", "gridd /metrics address")
	flagenv.String(fs, &cfg.CasedAddr, "cased-addr", "CASED_GRPC_ADDR", "127.0.0.1:7444", "cased gRPC address")
	flagenv.String(fs, &cfg.CasedMetric, "cased-metrics-addr", "CASED_METRICS_ADDR", "127.0.0.1:9465", "cased /metrics address")
	flagenv.String(fs, &cfg.ConsoleAddr, "console-addr", "GRIDD_HTTP_ADDR", "127.0.0.1:7480", "web console and JSON API address (empty: none)")
	flagenv.String(fs, &cfg.AdminPassword, "admin-password", "ECOGRID_DEV_ADMIN_PASSWORD", devstack.DefaultAdminPassword, "password of the dev administrator 'admin' (created once)")
	if err := flagenv.Parse(fs, args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return devstack.Run(ctx, cfg, os.Stdout, log)
}
