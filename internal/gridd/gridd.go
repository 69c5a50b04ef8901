// Package gridd assembles the field-facing service: grid, people and
// assignments, auth, patrols, reports, photos, the accountability ledger's
// read side and checkpointer, and the outbox relay that publishes
// violations to JetStream. cmd/gridd and `gridctl dev` both run it through
// Run.
package gridd

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
	"ecogrid/internal/field"
	"ecogrid/internal/field/blob"
	"ecogrid/internal/flagenv"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/gridadapt"
	"ecogrid/internal/ledger"
	"ecogrid/internal/messaging"
	"ecogrid/internal/outbox"
	"ecogrid/internal/people"
	"ecogrid/internal/server"
)

// Config is gridd's whole configuration, composed of its components'.
type Config struct {
	Server         server.Config
	Database       database.Config
	NATSURL        string
	StreamReplicas int

	Auth       auth.Config      // access-token key, lifetimes, login limits
	LedgerKeys ledger.KeyConfig // checkpoint signing key (ECOGRID_LEDGER_KEY_FILE)
	Ledger     ledger.Config    // checkpoint interval, witness folder
	PhotoDir   string           // content-addressed photo store
	Field      field.Config     // report, track and photo limits
	Relay      outbox.RelayConfig

	// Ready, when set, is called once the server listens (dev stack, tests).
	Ready func(grpcAddr, metricsAddr string)
}

// RegisterFlags defines gridd's flags, each with an environment fallback.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Server.RegisterFlags(fs, "GRIDD", "127.0.0.1:7443", "127.0.0.1:9464")
	c.Database.RegisterFlags(fs, "gridd")
	messaging.RegisterFlags(fs, &c.NATSURL, &c.StreamReplicas)
	c.Auth.RegisterFlags(fs)
	c.LedgerKeys = ledger.KeyConfigFromEnv()
	flagenv.String(fs, &c.LedgerKeys.PrivateKeyFile, "ledger-key-file", ledger.EnvKeyFile, c.LedgerKeys.PrivateKeyFile, "note private key file signing ledger checkpoints ('gridctl audit keygen' makes one)")
	flagenv.Duration(fs, &c.Ledger.CheckpointInterval, "checkpoint-interval", "ECOGRID_CHECKPOINT_INTERVAL", ledger.DefaultCheckpointInterval, "how often grown ledger chains are signed")
	flagenv.String(fs, &c.Ledger.WitnessDir, "witness-dir", "ECOGRID_WITNESS_DIR", "", "folder outside the database keeping each chain's latest checkpoint (refuses rollbacks)")
	flagenv.String(fs, &c.PhotoDir, "photo-dir", "ECOGRID_PHOTO_DIR", "/var/lib/ecogrid/photos", "content-addressed photo storage")
	c.Field = field.DefaultConfig()
	flagenv.Int(fs, &c.Field.MaxPhotoBytes, "max-photo-bytes", "ECOGRID_MAX_PHOTO_BYTES", c.Field.MaxPhotoBytes, "largest photo accepted")
	flagenv.Duration(fs, &c.Field.AbandonedUploadAge, "abandoned-upload-age", "ECOGRID_ABANDONED_UPLOAD_AGE", c.Field.AbandonedUploadAge, "unfinished uploads older than this are removed")
	host, _ := os.Hostname()
	c.Relay.Name = "gridd@" + host
}

// Run serves until ctx is cancelled. The server, the grid index, the
// checkpointer, the photo janitor and the outbox relay run together: when
// one fails, all stop and Run returns the error.
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

	authz, authSvc, err := auth.New(cfg.Auth, pool, log.With("component", "auth"))
	if err != nil {
		return err
	}
	if authSvc == nil {
		return fmt.Errorf("gridd signs access tokens: set %s to its Ed25519 key ('gridctl users keygen')", auth.EnvKeyFile)
	}
	ledgerKeys, err := ledger.LoadKeys(cfg.LedgerKeys)
	if err != nil {
		return err
	}
	blobs, err := blob.NewFS(cfg.PhotoDir)
	if err != nil {
		return fmt.Errorf("photo storage %s: %v (set ECOGRID_PHOTO_DIR to a writable folder)", cfg.PhotoDir, err)
	}
	hasher := authSvc.Hasher() // one bound on concurrent argon2id for logins and account admin

	gridStore := grid.NewStore(pool, grid.Config{})
	index := grid.NewIndex(pool, log.With("component", "grid_index"))
	led := ledger.New(pool, ledgerKeys, cfg.Ledger, log.With("component", "ledger"))
	openCases := cases.NewTracker(pool, log.With("component", "cases")).HandoverLister()
	relay := outbox.NewRelay(pool, js, cfg.Relay, log.With("component", "outbox_relay"))

	srv, err := server.New(cfg.Server, log, server.Options{AuthUnary: authz.Unary(), AuthStream: authz.Stream()})
	if err != nil {
		return err
	}
	fld, err := field.New(field.Deps{
		Pool:      pool,
		Locator:   gridadapt.Locator{Index: index},
		Directory: field.PeopleDirectory{},
		Tasks:     gridadapt.TaskSource{Store: gridStore},
		Ledger:    field.ChainLedger{},
		Blobs:     blobs,
		Logger:    log.With("component", "field"),
		Metrics:   srv.Registry,
	}, cfg.Field)
	if err != nil {
		return err
	}
	ecogridv1.RegisterGridServiceServer(srv.GRPC, grid.NewService(gridStore, index, grid.ServiceConfig{}, log))
	ecogridv1.RegisterPeopleServiceServer(srv.GRPC, people.NewService(pool, gridadapt.NodeResolver{Store: gridStore}, openCases, hasher, log))
	ecogridv1.RegisterAuthServiceServer(srv.GRPC, authSvc)
	ecogridv1.RegisterFieldServiceServer(srv.GRPC, field.NewService(fld, log))
	ecogridv1.RegisterAccountabilityServiceServer(srv.GRPC, ledger.NewService(led, log))
	if err := ledger.RegisterMetrics(srv.Registry, pool); err != nil {
		return err
	}
	if err := outbox.RegisterMetrics(srv.Registry, pool); err != nil {
		return err
	}
	if err := index.RegisterMetrics(srv.Registry); err != nil {
		return err
	}
	// Deny by default: refuse to serve an RPC the access policy does not name.
	if err := auth.CheckServer(srv.GRPC); err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return server.Background(index.Run(gctx)) })
	// Point location is served from the index: wait for its first load.
	select {
	case <-index.Ready():
	case <-gctx.Done():
		return g.Wait()
	}
	if ledgerKeys.Signer() != nil {
		g.Go(func() error { return server.Background(led.RunCheckpointer(gctx)) })
	} else {
		log.Warn("no ledger signing key: checkpoints are not signed (set " + ledger.EnvKeyFile + ")")
	}
	g.Go(func() error { fld.RunJanitor(gctx, time.Hour); return nil })
	g.Go(func() error { return server.Background(relay.Run(gctx)) })
	g.Go(func() error { auth.RunMaintenance(gctx, pool, log.With("component", "auth")); return nil })
	g.Go(func() error {
		if cfg.Ready != nil {
			cfg.Ready(srv.Addr(), srv.MetricsAddr())
		}
		err := srv.Run(gctx)
		if err == nil && ctx.Err() == nil {
			// A background task failed and cancelled gctx; its error is
			// what Wait reports.
			return nil
		}
		return err
	})
	return g.Wait()
}
