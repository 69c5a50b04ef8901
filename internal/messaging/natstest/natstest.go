// Package natstest runs a real nats-server with JetStream inside the test
// process, on disk in a temporary folder with fsync on every write, so
// tests can stop the broker, restart it on the same port and storage, and
// see what survived.
package natstest

import (
	"context"
	"crypto/rand"
	mrand "math/rand/v2"
	"net"
	"strconv"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"ecogrid/internal/messaging"
)

// Server is an in-process JetStream server bound to a fixed port for its lifetime.
type Server struct {
	srv      *server.Server
	port     int
	storeDir string
	users    map[messaging.Role]messaging.Credentials
}

// Option changes how Start sets the server up.
type Option func(*Server)

// Secured gives the server ecogrid's account with a user per role
// (messaging.Permissions), each with a random password, as production
// runs it: connections without a user are refused. Connect then connects
// as gridd; ConnectAs and Credentials give the other roles.
func Secured() Option {
	return func(s *Server) {
		s.users = map[messaging.Role]messaging.Credentials{}
		for _, r := range messaging.Roles() {
			s.users[r] = messaging.Credentials{User: string(r), Password: rand.Text()}
		}
	}
}

// Integrators adds, to a Secured server, an integrator user per county
// (messaging.Integrator), reached with ConnectAs.
func Integrators(counties ...string) Option {
	return func(s *Server) {
		for _, c := range counties {
			r := messaging.Integrator(c)
			s.users[r] = messaging.Credentials{User: string(r), Password: rand.Text()}
		}
	}
}

// Start runs a server for tb, shut down when the test ends. Without
// options it is open to every client.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s := &Server{port: freeStablePort(tb), storeDir: tb.TempDir()}
	for _, o := range opts {
		o(s)
	}
	s.start(tb)
	tb.Cleanup(s.Shutdown)
	return s
}

// Credentials returns role's user on a Secured server (zero when open).
func (s *Server) Credentials(r messaging.Role) messaging.Credentials { return s.users[r] }

// Ports the kernel hands out for outgoing connections (ip_local_port_range,
// 32768–60999 on Linux by default) can be taken by any client — a
// PostgreSQL connection of a parallel test, say — while the server is down
// for a Restart, and the restart would then fail to listen. The server's
// port is therefore drawn below that range.
const (
	stablePortLow  = 20000
	stablePortHigh = 32767
)

// freeStablePort returns a port below the ephemeral range that nothing
// listens on now.
func freeStablePort(tb testing.TB) int {
	tb.Helper()
	for range 100 {
		port := stablePortLow + mrand.IntN(stablePortHigh-stablePortLow+1)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	tb.Fatal("natstest: no free port between 20000 and 32767")
	return 0
}

func (s *Server) start(tb testing.TB) {
	tb.Helper()
	srv, err := messaging.StartEmbedded(messaging.EmbeddedConfig{Port: s.port, StoreDir: s.storeDir, Users: s.users})
	if err != nil {
		tb.Fatal(err)
	}
	s.srv = srv
}

// URL is the client URL; it stays the same across restarts.
func (s *Server) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.port) }

// Shutdown stops the server (idempotent). Clients see a disconnect.
func (s *Server) Shutdown() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// Restart stops the server if running and starts it again on the same port
// and storage.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Shutdown()
	s.start(tb)
}

// Running reports whether the server is up.
func (s *Server) Running() bool { return s.srv != nil }

// Connect returns a client connection and JetStream handle with ecogrid's
// streams created, closed when the test ends. On a Secured server it
// connects as gridd, the role that creates the streams.
func (s *Server) Connect(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, js := s.ConnectAs(tb, messaging.RoleGridd)
	if err := messaging.EnsureStreams(context.Background(), js, messaging.StreamConfig{Replicas: 1}); err != nil {
		tb.Fatal(err)
	}
	return nc, js
}

// ConnectAs returns a connection as role's user (no user on an open
// server), without creating streams, closed when the test ends.
func (s *Server) ConnectAs(tb testing.TB, r messaging.Role) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, js, err := messaging.ConnectAs(context.Background(), s.URL(), s.users[r], tb.Name(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc, js
}

// Cluster is an in-process JetStream cluster of three real servers for a
// test, each with its own storage and ports below the ephemeral range
// (kept across node restarts), shut down when the test ends.
type Cluster struct {
	*messaging.Cluster
	users map[messaging.Role]messaging.Credentials
}

// StartCluster runs a 3-node cluster for tb with the options Start takes
// (Secured, Integrators).
func StartCluster(tb testing.TB, opts ...Option) *Cluster {
	tb.Helper()
	s := &Server{}
	for _, o := range opts {
		o(s)
	}
	cfg := messaging.ClusterConfig{Nodes: 3, StoreDir: tb.TempDir(), Users: s.users}
	taken := map[int]bool{}
	port := func() int {
		for {
			if p := freeStablePort(tb); !taken[p] {
				taken[p] = true
				return p
			}
		}
	}
	for range cfg.Nodes {
		cfg.ClientPorts = append(cfg.ClientPorts, port())
		cfg.RoutePorts = append(cfg.RoutePorts, port())
	}
	c, err := messaging.StartCluster(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Shutdown)
	return &Cluster{Cluster: c, users: s.users}
}

// Credentials returns role's user on a Secured cluster (zero when open).
func (c *Cluster) Credentials(r messaging.Role) messaging.Credentials { return c.users[r] }

// ConnectAs connects as role's user to url (the whole cluster when ""),
// closed when the test ends.
func (c *Cluster) ConnectAs(tb testing.TB, r messaging.Role, url string) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	if url == "" {
		url = c.URL()
	}
	nc, js, err := messaging.ConnectAs(context.Background(), url, c.users[r], tb.Name(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return nc, js
}
