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
	"net"
	"os"
	"time"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/assessment"
	"ecogrid/internal/audit"
	"ecogrid/internal/auth"
	"ecogrid/internal/cases"
	"ecogrid/internal/daemon"
	"ecogrid/internal/departments"
	"ecogrid/internal/field"
	"ecogrid/internal/field/blob"
	"ecogrid/internal/flagenv"
	"ecogrid/internal/gateway"
	"ecogrid/internal/grid"
	"ecogrid/internal/grid/gridadapt"
	"ecogrid/internal/ledger"
	"ecogrid/internal/monitoring"
	"ecogrid/internal/outbox"
	"ecogrid/internal/people"
	"ecogrid/internal/waters"
	"ecogrid/internal/zones"
)

// Config is gridd's whole configuration, composed of its components'.
type Config struct {
	daemon.Config // server, database, NATS, access tokens, Ready

	LedgerKeys ledger.KeyConfig // checkpoint signing key (ECOGRID_LEDGER_KEY_FILE)
	Ledger     ledger.Config    // checkpoint interval, witness folder
	PhotoDir   string           // content-addressed photo store (with S3: partial uploads only)
	// PhotoS3 puts photos in an S3-compatible bucket, which every replica
	// shares; Endpoint empty keeps them in PhotoDir.
	PhotoS3 blob.S3Config
	Field   field.Config // report, track and photo limits
	Relay   outbox.RelayConfig
	// Gateway is the JSON API and web console (GriddAddr is gridd's own).
	Gateway gateway.Config
}

// RegisterFlags defines gridd's flags, each with an environment fallback.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Config.RegisterFlags(fs, "gridd", "GRIDD", "127.0.0.1:7443", "127.0.0.1:9464")
	c.LedgerKeys = ledger.KeyConfigFromEnv()
	flagenv.String(fs, &c.LedgerKeys.PrivateKeyFile, "ledger-key-file", ledger.EnvKeyFile, c.LedgerKeys.PrivateKeyFile, "note private key file signing ledger checkpoints ('gridctl audit keygen' makes one)")
	flagenv.Duration(fs, &c.Ledger.CheckpointInterval, "checkpoint-interval", "ECOGRID_CHECKPOINT_INTERVAL", ledger.DefaultCheckpointInterval, "how often grown ledger chains are signed")
	flagenv.String(fs, &c.Ledger.WitnessDir, "witness-dir", "ECOGRID_WITNESS_DIR", "", "folder outside the database keeping each chain's latest checkpoint (refuses rollbacks)")
	flagenv.String(fs, &c.PhotoDir, "photo-dir", "ECOGRID_PHOTO_DIR", "/var/lib/ecogrid/photos", "content-addressed photo storage")
	flagenv.String(fs, &c.PhotoS3.Endpoint, "photo-s3-endpoint", "ECOGRID_PHOTO_S3_ENDPOINT", "", "S3-compatible server keeping photos, http(s)://host:port (empty: photos stay in -photo-dir; set it when more than one gridd runs)")
	flagenv.String(fs, &c.PhotoS3.Bucket, "photo-s3-bucket", "ECOGRID_PHOTO_S3_BUCKET", "ecogrid-photos", "bucket of the photos (created when missing)")
	flagenv.String(fs, &c.PhotoS3.Region, "photo-s3-region", "ECOGRID_PHOTO_S3_REGION", "us-east-1", "region of the bucket")
	flagenv.String(fs, &c.PhotoS3.AccessKey, "photo-s3-access-key", "ECOGRID_PHOTO_S3_ACCESS_KEY", "", "access key signing S3 requests")
	flagenv.Secret(fs, &c.PhotoS3.SecretKey, "photo-s3-secret-key", "ECOGRID_PHOTO_S3_SECRET_KEY", "secret key signing S3 requests (prefer the environment to the command line)")
	flagenv.Bool(fs, &c.PhotoS3.PathStyle, "photo-s3-path-style", "ECOGRID_PHOTO_S3_PATH_STYLE", true, "address the bucket as endpoint/bucket (MinIO, versitygw, Ceph) rather than bucket.endpoint")
	flagenv.Duration(fs, &c.PhotoS3.Timeout, "photo-s3-timeout", "ECOGRID_PHOTO_S3_TIMEOUT", 30*time.Second, "longest wait for an S3 answer before the call is Unavailable")
	c.Field = field.DefaultConfig()
	flagenv.Int(fs, &c.Field.MaxPhotoBytes, "max-photo-bytes", "ECOGRID_MAX_PHOTO_BYTES", c.Field.MaxPhotoBytes, "largest photo accepted")
	flagenv.Duration(fs, &c.Field.AbandonedUploadAge, "abandoned-upload-age", "ECOGRID_ABANDONED_UPLOAD_AGE", c.Field.AbandonedUploadAge, "unfinished uploads older than this are removed")
	flagenv.String(fs, &c.Gateway.HTTPAddr, "http-addr", "GRIDD_HTTP_ADDR", "", "JSON API and web console listener, e.g. 127.0.0.1:7480 (empty: none; gridctl dev serves it on 127.0.0.1:7480)")
	flagenv.String(fs, &c.Gateway.CasedAddr, "cased-addr", "GRIDD_CASED_ADDR", "127.0.0.1:7444", "cased's gRPC address, which the JSON API forwards case calls to")
	flagenv.String(fs, &c.Gateway.TLSCAFile, "gateway-ca-file", "GRIDD_GATEWAY_CA_FILE", "", "PEM the JSON API checks gridd's and cased's TLS certificates against (empty: plaintext)")
	flagenv.String(fs, &c.Gateway.TileURL, "console-tile-url", "ECOGRID_CONSOLE_TILE_URL", "", "optional XYZ tile layer under the console's grid map, e.g. https://…/{z}/{x}/{y}.png")
	host, _ := os.Hostname()
	c.Relay.Name = "gridd@" + host
}

// Run serves until ctx is cancelled. The server, the grid index, the
// checkpointer, the photo janitor and the outbox relay run together: when
// one fails, all stop and Run returns the error.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	return daemon.Run(ctx, "gridd", cfg.Config, log, func(ctx context.Context, p *daemon.Process) error {
		return assemble(ctx, cfg, p)
	})
}

// openPhotoStore is the bucket when one is configured (partial uploads
// then stay in PhotoDir), else the folder.
func openPhotoStore(ctx context.Context, cfg Config) (blob.Store, error) {
	if cfg.PhotoS3.Enabled() {
		s, err := blob.NewS3(ctx, cfg.PhotoS3, cfg.PhotoDir)
		if err != nil {
			return nil, fmt.Errorf("photo storage: %v (check ECOGRID_PHOTO_S3_ENDPOINT, _BUCKET, _ACCESS_KEY and _SECRET_KEY)", err)
		}
		return s, nil
	}
	s, err := blob.NewFS(cfg.PhotoDir)
	if err != nil {
		return nil, fmt.Errorf("photo storage %s: %v (set ECOGRID_PHOTO_DIR to a writable folder)", cfg.PhotoDir, err)
	}
	return s, nil
}

// assemble registers gridd's services and workers on the shared process.
// An extra service or worker is one line here.
func assemble(ctx context.Context, cfg Config, p *daemon.Process) error {
	log, pool := p.Log, p.Pool
	if p.AuthService == nil {
		return fmt.Errorf("gridd signs access tokens: set %s to its Ed25519 key ('gridctl users keygen')", auth.EnvKeyFile)
	}
	ledgerKeys, err := ledger.LoadKeys(cfg.LedgerKeys)
	if err != nil {
		return err
	}
	blobs, err := openPhotoStore(ctx, cfg)
	if err != nil {
		return err
	}
	hasher := p.AuthService.Hasher() // one bound on concurrent argon2id for logins and account admin
	reg := p.Server.Registry

	gridStore := grid.NewStore(pool, grid.Config{})
	index := grid.NewIndex(pool, log.With("component", "grid_index"))
	led := ledger.New(pool, ledgerKeys, cfg.Ledger, log.With("component", "ledger"))
	// The cases tracker hands a leaving person's open cases to their
	// successor inside the transaction that ends the post (people.DutyHandover).
	handover := cases.NewTracker(pool, log.With("component", "cases"))
	relay := outbox.NewRelay(pool, p.JS, cfg.Relay, log.With("component", "outbox_relay"))
	zoneIndex := zones.NewIndex(pool, log.With("component", "zone_index"))
	water := monitoring.New(pool, index, zoneIndex, log.With("component", "monitoring"))
	reaches := waters.NewStore(pool, gridStore)
	reachIndex := waters.NewIndex(reaches, log.With("component", "reach_index"))
	fld, err := field.New(field.Deps{
		Pool:    pool,
		Locator: gridadapt.Locator{Index: index},
		Blobs:   blobs,
		Logger:  log.With("component", "field"),
		Metrics: reg,
		Reaches: reachIndex,
		Chiefs:  reaches,
		Zones:   zoneIndex,
	}, cfg.Field)
	if err != nil {
		return err
	}

	ecogridv1.RegisterGridServiceServer(p, grid.NewService(gridStore, index, grid.ServiceConfig{Places: locatePlaces(zoneIndex, reachIndex)}, log))
	ecogridv1.RegisterPeopleServiceServer(p, people.NewService(pool, gridStore, handover, hasher, log))
	ecogridv1.RegisterAuthServiceServer(p, p.AuthService)
	ecogridv1.RegisterFieldServiceServer(p, field.NewService(fld, log))
	ecogridv1.RegisterAccountabilityServiceServer(p, ledger.NewService(led, log).WithNames(historyNames{pool: pool, grid: gridStore}))
	ecogridv1.RegisterWatersServiceServer(p, waters.NewService(reaches, reachIndex, field.Tracks{Q: pool}, log))
	zoneService := zones.NewService(zones.NewStore(pool), zoneIndex, log)
	zoneService.Tracks = field.Tracks{Q: pool}
	ecogridv1.RegisterZoneServiceServer(p, zoneService)
	ecogridv1.RegisterMonitoringServiceServer(p, monitoring.NewService(water, log))
	ecogridv1.RegisterAuditServiceServer(p, audit.NewService(audit.New(pool, led), log.With("component", "audit")))
	ecogridv1.RegisterDepartmentServiceServer(p, departments.NewService(pool, log.With("component", "departments")))
	ecogridv1.RegisterAssessmentServiceServer(p, assessment.NewService(assessment.New(pool, led), log.With("component", "assessment")))

	if err := ledger.RegisterMetrics(reg, pool); err != nil {
		return err
	}
	if err := outbox.RegisterMetrics(reg, pool); err != nil {
		return err
	}
	if err := index.RegisterMetrics(reg); err != nil {
		return err
	}

	p.Go(index.Run)
	p.Go(reachIndex.Run)
	// Point location is served from the index: wait for its first load.
	p.ServeAfter(index.Ready())
	if ledgerKeys.Signer() != nil {
		p.Go(led.RunCheckpointer)
	} else {
		log.Warn("no ledger signing key: checkpoints are not signed (set " + ledger.EnvKeyFile + ")")
	}
	p.Go(func(ctx context.Context) error { fld.RunJanitor(ctx, time.Hour); return nil })
	p.Go(relay.Run)
	p.Go(zoneIndex.Run)
	p.ServeAfter(zoneIndex.Ready())
	p.Go(water.RunSweeper)
	if cfg.Gateway.HTTPAddr != "" {
		gcfg := cfg.Gateway
		gcfg.GriddAddr = dialable(p.Server.Addr())
		gw, err := gateway.New(ctx, gcfg, log.With("component", "gateway"))
		if err != nil {
			return err
		}
		p.Go(gw.Run)
	}
	p.Go(func(ctx context.Context) error {
		auth.RunMaintenance(ctx, pool, log.With("component", "auth"))
		return nil
	})
	return nil
}

// dialable turns a listener address into one a local client can dial: a
// wildcard host (0.0.0.0, ::) becomes loopback.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
