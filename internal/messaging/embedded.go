package messaging

import (
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures an in-process nats-server.
type EmbeddedConfig struct {
	Host     string // default 127.0.0.1
	Port     int    // 0 picks a free port
	StoreDir string // JetStream file storage
	// MonitorPort serves nats-server's HTTP monitoring (/varz, /jsz,
	// /connz, /healthz) on Host: 0 leaves it off, RandomPort picks a free
	// port (see the server's MonitorAddr).
	MonitorPort int
	// Users secures the server: each role's credentials become a user of
	// the ecogrid account with that role's permissions (Permissions), and
	// connections without a user are refused. Empty leaves the server open
	// (tests that do not care).
	Users map[Role]Credentials
	// ServerName names the server; each node of a cluster needs its own.
	// Default "ecogrid-embedded".
	ServerName string
	// Cluster makes the server a node of a JetStream cluster (see
	// StartCluster); nil runs a single server.
	Cluster *ClusterRoutes
}

// ClusterRoutes is a node's part in a cluster: the cluster's name, the
// port it takes routes from the other nodes on (on Host), the routes to
// every node (host:port, its own among them is ignored), and the user
// and password every route authenticates with.
type ClusterRoutes struct {
	Name           string
	Port           int
	Routes         []string
	User, Password string
}

// RandomPort asks for any free port (EmbeddedConfig.MonitorPort).
const RandomPort = server.RANDOM_PORT

// StartEmbedded runs a nats-server with JetStream on disk inside this
// process, as `gridctl dev` and the tests use it. JetStream fsyncs every
// write (sync_interval: always): by default it acknowledges before it
// fsyncs, and acknowledged messages have been lost in crash tests.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = server.RANDOM_PORT
	}
	opts := &server.Options{}
	if len(cfg.Users) > 0 {
		accounts, err := AccountsConfig(cfg.Users)
		if err != nil {
			return nil, err
		}
		if err := opts.ProcessConfigString(accounts); err != nil {
			return nil, fmt.Errorf("nats-server accounts: %w", err)
		}
	}
	opts.ServerName = cfg.ServerName
	if opts.ServerName == "" {
		opts.ServerName = "ecogrid-embedded"
	}
	if c := cfg.Cluster; c != nil {
		opts.Cluster.Name = c.Name
		opts.Cluster.Host = cfg.Host
		opts.Cluster.Port = c.Port
		opts.Cluster.Username, opts.Cluster.Password = c.User, c.Password
		for _, r := range c.Routes {
			u := &url.URL{Scheme: "nats-route", Host: r, User: url.UserPassword(c.User, c.Password)}
			opts.Routes = append(opts.Routes, u)
		}
	}
	opts.Host = cfg.Host
	opts.Port = cfg.Port
	opts.JetStream = true
	opts.StoreDir = cfg.StoreDir
	opts.SyncAlways = true
	opts.NoSigs = true
	opts.NoLog = true
	opts.MaxPayload = 8 << 20
	if cfg.MonitorPort != 0 {
		opts.HTTPHost = cfg.Host
		opts.HTTPPort = cfg.MonitorPort
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats-server on %s:%d did not become ready", cfg.Host, cfg.Port)
	}
	return s, nil
}
