package messaging

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ClusterConfig configures a JetStream cluster of in-process nats-servers
// on one machine, as `gridctl dev -nats-cluster 3` and the tests run it:
// real servers, each with its own storage and its own client, route and
// (optionally) monitoring port, routed to each other on Host. Production
// runs one nats-server per machine instead (deploy/nats/cluster).
type ClusterConfig struct {
	// Name of the cluster; default "ecogrid".
	Name string
	// Nodes is the number of servers; default 3 (R3 streams need 3).
	Nodes int
	Host  string // default 127.0.0.1
	// ClientPorts, RoutePorts and MonitorPorts give each node's ports
	// (index i for node i). A missing or 0 client or route port is picked
	// free when the cluster starts and kept across node restarts; a
	// missing or 0 monitoring port leaves monitoring off on that node.
	ClientPorts, RoutePorts, MonitorPorts []int
	// StoreDir holds each node's JetStream storage in StoreDir/<node name>.
	StoreDir string
	// Users secures every node as EmbeddedConfig.Users does.
	Users map[Role]Credentials
}

// Cluster is a running cluster whose nodes can be stopped and started
// again on the same ports and storage.
type Cluster struct {
	cfgs []EmbeddedConfig

	mu      sync.Mutex
	servers []*server.Server
}

// StartCluster starts every node and waits until the cluster has a
// JetStream meta leader, so streams can be created as soon as it returns.
func StartCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.Name == "" {
		cfg.Name = "ecogrid"
	}
	if cfg.Nodes <= 0 {
		cfg.Nodes = 3
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	port := func(ports []int, i int) (int, error) {
		if i < len(ports) && ports[i] != 0 {
			return ports[i], nil
		}
		return freePort(cfg.Host)
	}
	routeUser, routePassword := "route", rand.Text()
	c := &Cluster{servers: make([]*server.Server, cfg.Nodes)}
	var routes []string
	for i := range cfg.Nodes {
		cp, err := port(cfg.ClientPorts, i)
		if err != nil {
			return nil, err
		}
		rp, err := port(cfg.RoutePorts, i)
		if err != nil {
			return nil, err
		}
		mp := 0
		if i < len(cfg.MonitorPorts) {
			mp = cfg.MonitorPorts[i]
		}
		name := fmt.Sprintf("%s-%d", cfg.Name, i+1)
		routes = append(routes, net.JoinHostPort(cfg.Host, strconv.Itoa(rp)))
		c.cfgs = append(c.cfgs, EmbeddedConfig{Host: cfg.Host, Port: cp, MonitorPort: mp, Users: cfg.Users,
			ServerName: name, StoreDir: filepath.Join(cfg.StoreDir, name),
			Cluster: &ClusterRoutes{Name: cfg.Name, Port: rp, User: routeUser, Password: routePassword}})
	}
	for i := range c.cfgs {
		c.cfgs[i].Cluster.Routes = routes
	}
	for i := range c.cfgs {
		if err := c.StartNode(i); err != nil {
			c.Shutdown()
			return nil, err
		}
	}
	if err := c.WaitMetaLeader(30 * time.Second); err != nil {
		c.Shutdown()
		return nil, err
	}
	return c, nil
}

func freePort(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Size is the number of nodes, running or not.
func (c *Cluster) Size() int { return len(c.cfgs) }

// URLs are the nodes' client URLs, in node order.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.cfgs))
	for i, cfg := range c.cfgs {
		urls[i] = "nats://" + net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	}
	return urls
}

// URL is every node's client URL, comma separated: the form NATS_URL takes.
func (c *Cluster) URL() string { return strings.Join(c.URLs(), ",") }

// Name is node i's server name, the one stream info's Cluster.Leader gives.
func (c *Cluster) Name(i int) string { return c.cfgs[i].ServerName }

// Node returns the index of the node named name, -1 for none.
func (c *Cluster) Node(name string) int {
	for i, cfg := range c.cfgs {
		if cfg.ServerName == name {
			return i
		}
	}
	return -1
}

// Server is node i's running server, nil while it is stopped.
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

// StoreDir is node i's JetStream storage.
func (c *Cluster) StoreDir(i int) string { return c.cfgs[i].StoreDir }

// StartNode starts node i (again) on its ports and storage; a running node
// is left as it is.
func (c *Cluster) StartNode(i int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.servers[i] != nil {
		return nil
	}
	s, err := StartEmbedded(c.cfgs[i])
	if err != nil {
		return fmt.Errorf("cluster node %s: %w", c.cfgs[i].ServerName, err)
	}
	c.servers[i] = s
	return nil
}

// StopNode shuts node i down (its clients see their connection drop and
// reconnect to another node); a stopped node is left as it is.
func (c *Cluster) StopNode(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Shutdown stops every node.
func (c *Cluster) Shutdown() {
	for i := range c.cfgs {
		c.StopNode(i)
	}
}

// running lists the running servers.
func (c *Cluster) running() []*server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	var list []*server.Server
	for _, s := range c.servers {
		if s != nil {
			list = append(list, s)
		}
	}
	return list
}

// WaitMetaLeader waits until every running node knows the cluster's
// JetStream meta leader and is current with it.
func (c *Cluster) WaitMetaLeader(timeout time.Duration) error {
	return c.waitHealth(timeout, &server.HealthzOptions{JSMetaOnly: true})
}

// WaitHealthy waits until every running node answers its full health
// check: JetStream current, and every stream and consumer it holds caught
// up with its leader (what a restarted node reaches once it has copied
// what it missed).
func (c *Cluster) WaitHealthy(timeout time.Duration) error {
	return c.waitHealth(timeout, &server.HealthzOptions{})
}

func (c *Cluster) waitHealth(timeout time.Duration, opts *server.HealthzOptions) error {
	deadline := time.Now().Add(timeout)
	for {
		var problems []string
		for _, s := range c.running() {
			if h := s.Healthz(opts); h.Status != "ok" {
				problems = append(problems, fmt.Sprintf("%s: %s", s.Name(), h.Error))
			}
		}
		if len(problems) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("NATS cluster not healthy after " + timeout.String() + ": " + strings.Join(problems, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
