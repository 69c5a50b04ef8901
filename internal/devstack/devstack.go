// Package devstack brings the whole ecogrid stack up on one machine for a
// newcomer: PostgreSQL with PostGIS (a private cluster unless DATABASE_URL
// is given), NATS with JetStream (embedded unless NATS_URL is given),
// migrations, the demo county, gridd and cased — and takes it all down
// cleanly on Ctrl-C.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"ecogrid/internal/cased"
	"ecogrid/internal/database"
	"ecogrid/internal/gridd"
	"ecogrid/internal/messaging"
	"ecogrid/internal/server"
)

// Config says where the stack lives and listens.
type Config struct {
	DataDir     string // private PostgreSQL cluster and JetStream storage
	DatabaseURL string // use this server instead of a private cluster
	NATSURL     string // use this NATS instead of an embedded one
	PGPort      int    // private cluster port
	NATSPort    int    // embedded NATS port
	GriddAddr   string
	GriddMetric string
	CasedAddr   string
	CasedMetric string
	// Ready, when set, is called with the stack's addresses once it serves.
	Ready func(Addresses)
}

// Addresses is where the running stack can be reached.
type Addresses struct {
	DatabaseURL, NATSURL                             string
	GriddGRPC, GriddMetrics, CasedGRPC, CasedMetrics string
}

// Run brings the stack up, reports to out, and blocks until ctx is
// cancelled; then it stops everything it started, in reverse order.
func Run(ctx context.Context, cfg Config, out io.Writer, log *slog.Logger) (err error) {
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	addrs := Addresses{DatabaseURL: cfg.DatabaseURL, NATSURL: cfg.NATSURL}

	if addrs.DatabaseURL == "" {
		bin, major, err := FindPostgres()
		if err != nil {
			return err
		}
		pg := &Postgres{BinDir: bin, DataDir: filepath.Join(cfg.DataDir, "pg"), Port: cfg.PGPort}
		fmt.Fprintf(out, "starting PostgreSQL %d in %s on port %d\n", major, pg.DataDir, pg.Port)
		if err := pg.Start(ctx); err != nil {
			_ = pg.Stop()
			return err
		}
		cleanups = append(cleanups, func() {
			if err := pg.Stop(); err != nil {
				log.Error("stopping PostgreSQL", "err", err)
			}
		})
		addrs.DatabaseURL = pg.URL("ecogrid")
	}

	if addrs.NATSURL == "" {
		storeDir := filepath.Join(cfg.DataDir, "nats")
		ns, err := messaging.StartEmbedded(messaging.EmbeddedConfig{Port: cfg.NATSPort, StoreDir: storeDir})
		if err != nil {
			return err
		}
		cleanups = append(cleanups, func() { ns.Shutdown(); ns.WaitForShutdown() })
		addrs.NATSURL = ns.ClientURL()
		fmt.Fprintf(out, "started NATS with JetStream (fsync always) at %s, storage %s\n", addrs.NATSURL, storeDir)
	}

	pool, err := database.Open(ctx, database.Config{URL: addrs.DatabaseURL, ApplicationName: "gridctl-dev"})
	if err != nil {
		return err
	}
	applied, err := database.Migrate(ctx, pool)
	if err != nil {
		pool.Close()
		return err
	}
	fmt.Fprintf(out, "migrations: %d applied\n", len(applied))
	if err := loadDemo(ctx, pool, out); err != nil {
		pool.Close()
		return fmt.Errorf("loading the demo county: %w", err)
	}
	pool.Close()

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	ready := make(chan [2]string, 2)
	dbc := database.Config{URL: addrs.DatabaseURL}
	gcfg := gridd.Config{
		Server:   server.Config{GRPCAddr: cfg.GriddAddr, MetricsAddr: cfg.GriddMetric, ShutdownTimeout: 10 * time.Second},
		Database: dbc, NATSURL: addrs.NATSURL, StreamReplicas: 1,
		Ready: func(a, m string) { ready <- [2]string{"gridd", a + " " + m} },
	}
	ccfg := cased.Config{
		Server:   server.Config{GRPCAddr: cfg.CasedAddr, MetricsAddr: cfg.CasedMetric, ShutdownTimeout: 10 * time.Second},
		Database: dbc, NATSURL: addrs.NATSURL, StreamReplicas: 1,
		Ready: func(a, m string) { ready <- [2]string{"cased", a + " " + m} },
	}
	wg.Add(2)
	go func() { defer wg.Done(); errc <- wrap("gridd", gridd.Run(sctx, gcfg, log.With("service", "gridd"))) }()
	go func() { defer wg.Done(); errc <- wrap("cased", cased.Run(sctx, ccfg, log.With("service", "cased"))) }()
	defer wg.Wait()

	for n := 0; n < 2; {
		select {
		case r := <-ready:
			var a, m string
			fmt.Sscan(r[1], &a, &m)
			if r[0] == "gridd" {
				addrs.GriddGRPC, addrs.GriddMetrics = a, m
			} else {
				addrs.CasedGRPC, addrs.CasedMetrics = a, m
			}
			n++
		case err := <-errc:
			stop()
			if err == nil {
				err = errors.New("a service stopped during start")
			}
			return err
		case <-ctx.Done():
			return nil
		}
	}
	printBanner(out, addrs)
	if cfg.Ready != nil {
		cfg.Ready(addrs)
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "stopping the stack")
	case err = <-errc:
	}
	stop()
	wg.Wait()
	close(errc)
	for e := range errc {
		if err == nil {
			err = e
		}
	}
	return err
}

func wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

func printBanner(out io.Writer, a Addresses) {
	fmt.Fprintf(out, `
ecogrid is up.
  gridd   gRPC %s   metrics http://%s/metrics
  cased   gRPC %s   metrics http://%s/metrics
  database %s
  nats     %s
Try:
  grpcurl -plaintext %s list
  grpcurl -plaintext %s grpc.health.v1.Health/Check
Press Ctrl-C to stop everything.
`, a.GriddGRPC, a.GriddMetrics, a.CasedGRPC, a.CasedMetrics, database.Redact(a.DatabaseURL), a.NATSURL, a.GriddGRPC, a.CasedGRPC)
}
