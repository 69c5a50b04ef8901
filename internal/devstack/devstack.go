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

	"ecogrid/internal/auth"
	"ecogrid/internal/cased"
	"ecogrid/internal/cases"
	"ecogrid/internal/daemon"
	"ecogrid/internal/database"
	"ecogrid/internal/field"
	"ecogrid/internal/gateway"
	"ecogrid/internal/gridd"
	"ecogrid/internal/ledger"
	"ecogrid/internal/messaging"
	"ecogrid/internal/server"
)

// DefaultAdminPassword is the dev administrator's password unless
// ECOGRID_DEV_ADMIN_PASSWORD says otherwise. Dev stacks only.
const DefaultAdminPassword = "ecogrid-dev-admin"

// Config says where the stack lives and listens.
type Config struct {
	DataDir     string // private PostgreSQL cluster and JetStream storage
	DatabaseURL string // use this server instead of a private cluster
	NATSURL     string // use this NATS instead of an embedded one
	PGPort      int    // private cluster port
	NATSPort    int    // embedded NATS port
	// NATSMonitorPort serves the embedded NATS's HTTP monitoring (/varz,
	// /jsz, /healthz); 0 leaves it off.
	NATSMonitorPort int
	// NATSClusterNodes > 1 runs the embedded NATS as a JetStream cluster of
	// that many servers on loopback instead of one: node i (from 0) takes
	// clients on NATSPort+i, routes on NATSPort+1000+i, monitoring on
	// NATSMonitorPort+i, and stores in DataDir/nats-cluster/ecogrid-<i+1>.
	// gridd and cased get every URL and make the streams R3.
	NATSClusterNodes int
	GriddAddr        string
	GriddMetric      string
	CasedAddr        string
	CasedMetric      string
	// ConsoleAddr is the web console and JSON API listener (gridd's
	// gateway); empty runs none.
	ConsoleAddr string
	// AdminPassword is the dev administrator's password (created once).
	AdminPassword string
	// Ready, when set, is called with the stack's addresses once it serves.
	Ready func(Addresses)
}

// Addresses is where the running stack can be reached.
type Addresses struct {
	DatabaseURL, NATSURL string
	// NATSMonitor is the embedded NATS's monitoring address ("" when off;
	// on a cluster, the first node's).
	NATSMonitor string
	// NATSNodes lists a cluster's nodes, one line each (name, client URL,
	// monitoring); empty for a single server.
	NATSNodes []string
	// NATSPasswordDir holds nats-<role>.password for each NATS user of the
	// embedded server (gridd, cased, integrator_<county>); "" with an outside NATS.
	NATSPasswordDir                                  string
	GriddGRPC, GriddMetrics, CasedGRPC, CasedMetrics string
	ConsoleURL                                       string
	CountyCode                                       string
	LedgerPublicKey                                  string
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
	if cfg.NATSURL != "" && cfg.NATSClusterNodes > 1 {
		return errors.New("-nats-cluster starts the dev stack's own NATS cluster, and NATS_URL names another NATS: unset one of them")
	}
	addrs := Addresses{DatabaseURL: cfg.DatabaseURL, NATSURL: cfg.NATSURL}
	// PostgreSQL's tools run inside the data folder (as another user when
	// root), so a relative folder would be taken relative to itself.
	if cfg.DataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return err
	}

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

	// The embedded NATS is secured as production is: a user per role
	// with only its subjects (messaging.Permissions).
	var natsUsers map[messaging.Role]messaging.Credentials
	if addrs.NATSURL == "" {
		storeDir := filepath.Join(cfg.DataDir, "nats")
		addrs.NATSPasswordDir = filepath.Join(cfg.DataDir, "keys")
		if natsUsers, err = ensureNATSUsers(addrs.NATSPasswordDir); err != nil {
			return fmt.Errorf("dev NATS users: %w", err)
		}
		if cfg.NATSClusterNodes > 1 {
			stop, err := startNATSCluster(cfg, natsUsers, &addrs, out)
			if err != nil {
				return err
			}
			cleanups = append(cleanups, stop)
		} else {
			ns, err := messaging.StartEmbedded(messaging.EmbeddedConfig{Port: cfg.NATSPort, StoreDir: storeDir,
				MonitorPort: cfg.NATSMonitorPort, Users: natsUsers})
			if err != nil {
				return err
			}
			cleanups = append(cleanups, func() { ns.Shutdown(); ns.WaitForShutdown() })
			addrs.NATSURL = ns.ClientURL()
			if m := ns.MonitorAddr(); m != nil {
				addrs.NATSMonitor = m.String()
			}
			fmt.Fprintf(out, "started NATS with JetStream (fsync always) at %s, storage %s\n", addrs.NATSURL, storeDir)
		}
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
	if cfg.AdminPassword == "" {
		cfg.AdminPassword = DefaultAdminPassword
	}
	county, err := loadDemo(ctx, pool, cfg.AdminPassword, out)
	pool.Close()
	if err != nil {
		return fmt.Errorf("loading the demo county: %w", err)
	}
	keys, err := ensureKeys(filepath.Join(cfg.DataDir, "keys"))
	if err != nil {
		return fmt.Errorf("dev signing keys: %w", err)
	}
	addrs.CountyCode, addrs.LedgerPublicKey = county, keys.LedgerPublic

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	// Each service reports once that it listens, writing its own addresses.
	ready := make(chan struct{}, 3)
	waitFor := 2
	dbc := database.Config{URL: addrs.DatabaseURL, MaxConns: 16}
	gcfg := gridd.Config{
		Config: daemon.Config{
			Server:   server.Config{GRPCAddr: cfg.GriddAddr, MetricsAddr: cfg.GriddMetric, ShutdownTimeout: 10 * time.Second},
			Database: dbc, NATSURL: addrs.NATSURL, NATS: natsUsers[messaging.RoleGridd],
			Auth:  auth.Config{Keys: auth.KeyConfig{PrivateKeyFile: keys.AuthKeyFile}},
			Ready: func(a, m string) { addrs.GriddGRPC, addrs.GriddMetrics = a, m; ready <- struct{}{} },
		},
		LedgerKeys: ledger.KeyConfig{PrivateKeyFile: keys.LedgerKeyFile},
		Ledger:     ledger.Config{CheckpointInterval: time.Minute, WitnessDir: filepath.Join(cfg.DataDir, "witness")},
		PhotoDir:   filepath.Join(cfg.DataDir, "photos"),
		Field:      field.DefaultConfig(),
	}
	if cfg.ConsoleAddr != "" {
		waitFor++
		gcfg.Gateway = gateway.Config{HTTPAddr: cfg.ConsoleAddr, CasedAddr: cfg.CasedAddr,
			Ready: func(url string) { addrs.ConsoleURL = url; ready <- struct{}{} }}
	}
	ccfg := cased.Config{
		Config: daemon.Config{
			Server:   server.Config{GRPCAddr: cfg.CasedAddr, MetricsAddr: cfg.CasedMetric, ShutdownTimeout: 10 * time.Second},
			Database: dbc, NATSURL: addrs.NATSURL, NATS: natsUsers[messaging.RoleCased],
			Auth:  auth.Config{Keys: auth.KeyConfig{PrivateKeyFile: keys.AuthKeyFile}},
			Ready: func(a, m string) { addrs.CasedGRPC, addrs.CasedMetrics = a, m; ready <- struct{}{} },
		},
		Background: cases.BackgroundConfig{SweepInterval: time.Minute, ReconcileInterval: 30 * time.Second,
			Reconcile: cases.ReconcileConfig{Grace: time.Minute}},
	}
	wg.Add(2)
	go func() { defer wg.Done(); errc <- wrap("gridd", gridd.Run(sctx, gcfg, log.With("service", "gridd"))) }()
	go func() { defer wg.Done(); errc <- wrap("cased", cased.Run(sctx, ccfg, log.With("service", "cased"))) }()
	defer wg.Wait()

	for n := 0; n < waitFor; {
		select {
		case <-ready:
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
	printBanner(out, addrs, cfg.AdminPassword)
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

// startNATSCluster runs the embedded NATS as a cluster (Config.NATSClusterNodes)
// and returns what stops it.
func startNATSCluster(cfg Config, users map[messaging.Role]messaging.Credentials, addrs *Addresses, out io.Writer) (func(), error) {
	cc := messaging.ClusterConfig{Nodes: cfg.NATSClusterNodes, StoreDir: filepath.Join(cfg.DataDir, "nats-cluster"), Users: users}
	for i := range cc.Nodes {
		cc.ClientPorts = append(cc.ClientPorts, cfg.NATSPort+i)
		cc.RoutePorts = append(cc.RoutePorts, cfg.NATSPort+1000+i)
		if cfg.NATSMonitorPort != 0 {
			cc.MonitorPorts = append(cc.MonitorPorts, cfg.NATSMonitorPort+i)
		}
	}
	c, err := messaging.StartCluster(cc)
	if err != nil {
		return nil, err
	}
	addrs.NATSURL = c.URL()
	for i, url := range c.URLs() {
		line := fmt.Sprintf("%s  %s  routes :%d", c.Name(i), url, cc.RoutePorts[i])
		if m := c.Server(i).MonitorAddr(); m != nil {
			line += "  monitoring http://" + m.String() + "/jsz"
			if i == 0 {
				addrs.NATSMonitor = m.String()
			}
		}
		addrs.NATSNodes = append(addrs.NATSNodes, line)
	}
	fmt.Fprintf(out, "started a NATS JetStream cluster of %d nodes (fsync always) at %s, storage %s\n", c.Size(), addrs.NATSURL, cc.StoreDir)
	return c.Shutdown, nil
}

func wrap(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

func printBanner(out io.Writer, a Addresses, adminPassword string) {
	nats := a.NATSURL
	if a.NATSPasswordDir != "" {
		nats += fmt.Sprintf("   users gridd, cased, integrator_%s (password in %s)", a.CountyCode, filepath.Join(a.NATSPasswordDir, "nats-<user>.password"))
	}
	if len(a.NATSNodes) > 0 {
		nats += fmt.Sprintf("\n  nats     a JetStream cluster of %d nodes, streams R3:", len(a.NATSNodes))
		for _, n := range a.NATSNodes {
			nats += "\n             " + n
		}
	} else if a.NATSMonitor != "" {
		nats += "\n  nats monitoring http://" + a.NATSMonitor + "/varz"
	}
	fmt.Fprintf(out, `
ecogrid is up (demo county %[9]s).
  console  %[12]s   (sign in as admin / %[11]s; JSON API under /api, OpenAPI at /api/openapi.json)
  gridd    gRPC %[1]s   metrics http://%[2]s/metrics
  cased    gRPC %[3]s   metrics http://%[4]s/metrics
  database %[5]s
  nats     %[6]s
  ledger checkpoint key (for gridctl audit verify --pubkey): %[10]s
Try:
  grpcurl -plaintext %[1]s list
  grpcurl -plaintext %[3]s grpc.health.v1.Health/Check
  grpcurl -plaintext -d '{"username":"admin","password":"%[11]s"}' %[1]s ecogrid.v1.AuthService/Login
  GRIDD_ADDR=%[1]s ECOGRID_TOKEN=<access_token> ./bin/gridctl grid locate 38.05 114.55
Press Ctrl-C to stop everything.
`, a.GriddGRPC, a.GriddMetrics, a.CasedGRPC, a.CasedMetrics, database.Redact(a.DatabaseURL), nats, "", "", a.CountyCode, a.LedgerPublicKey, adminPassword, consoleLine(a.ConsoleURL))
}

func consoleLine(url string) string {
	if url == "" {
		return "(not started)"
	}
	return url
}
