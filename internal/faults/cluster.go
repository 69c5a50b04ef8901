package faults

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"ecogrid/internal/messaging"
)

// Options changes how StartWith builds the stack.
type Options struct {
	// NATSNodes > 1 runs NATS as a JetStream cluster of that many
	// in-process servers (each its own storage, routes on loopback, the
	// same accounts and users as the single server) instead of one server.
	// gridd and cased get every node's URL and, finding a cluster, make
	// the streams R3.
	NATSNodes int
}

// startNATS starts the single server (StartNATS) or the cluster, and sets
// NATSURL.
func (s *Stack) startNATS(opts Options) error {
	if opts.NATSNodes <= 1 {
		if err := s.StartNATS(); err != nil {
			return err
		}
		s.NATSURL = fmt.Sprintf("nats://127.0.0.1:%d", s.natsPort)
		return nil
	}
	cfg := messaging.ClusterConfig{Nodes: opts.NATSNodes, StoreDir: filepath.Join(s.Dir, "nats-cluster"), Users: s.natsUsers}
	taken := map[int]bool{}
	for range 2 * cfg.Nodes {
		p, err := stablePort(taken)
		if err != nil {
			return err
		}
		if len(cfg.ClientPorts) < cfg.Nodes {
			cfg.ClientPorts = append(cfg.ClientPorts, p)
		} else {
			cfg.RoutePorts = append(cfg.RoutePorts, p)
		}
	}
	c, err := messaging.StartCluster(cfg)
	if err != nil {
		return err
	}
	s.cluster = c
	s.NATSURL = c.URL()
	return nil
}

// stablePort is a free loopback port below the kernel's range for outgoing
// connections (32768–60999), so no client connection takes it while its
// node is down between a kill and the restart.
func stablePort(taken map[int]bool) (int, error) {
	for range 200 {
		p := 20000 + mrand.IntN(12768)
		if taken[p] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		taken[p] = true
		return p, nil
	}
	return 0, errors.New("no free port between 20000 and 32767")
}

// NATSCluster is the stack's NATS cluster, nil on a single server.
func (s *Stack) NATSCluster() *messaging.Cluster { return s.cluster }

// startClusterNodes starts every stopped node and waits until all are
// caught up (StartNATS on a cluster).
func (s *Stack) startClusterNodes() error {
	for i := range s.cluster.Size() {
		if err := s.cluster.StartNode(i); err != nil {
			return err
		}
	}
	return s.cluster.WaitHealthy(3 * time.Minute)
}

// StreamLeader is the index of the node leading stream, read from stream
// info's Cluster.Leader through a connection as gridd to the whole
// cluster, and the stream's replica count. It waits (up to 2 minutes)
// while the cluster does not answer or the stream has no leader: an
// election under way.
func (s *Stack) StreamLeader(ctx context.Context, stream string) (node, replicas int, err error) {
	return s.streamLeader(ctx, stream, -1)
}

// streamLeader is StreamLeader waiting for a leader other than node not
// (a stale answer from before its loss was noticed).
func (s *Stack) streamLeader(ctx context.Context, stream string, not int) (node, replicas int, err error) {
	if s.cluster == nil {
		return 0, 0, errors.New("NATS is a single server")
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		node, replicas, err = s.streamLeaderOnce(ctx, stream)
		if err == nil && node == not {
			err = fmt.Errorf("%s still named leader", s.cluster.Name(not))
		}
		if err == nil {
			return node, replicas, nil
		}
		if time.Now().After(deadline) {
			return 0, 0, fmt.Errorf("stream %s: %w", stream, err)
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *Stack) streamLeaderOnce(ctx context.Context, stream string) (node, replicas int, err error) {
	nc, js, err := messaging.ConnectAs(ctx, s.NATSURL, s.natsUsers[messaging.RoleGridd], "faults", nil)
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	info, err := streamInfo(ctx, js, stream)
	if err != nil {
		return 0, 0, err
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return 0, 0, errors.New("no leader")
	}
	i := s.cluster.Node(info.Cluster.Leader)
	if i < 0 {
		return 0, 0, fmt.Errorf("leader %q is no node of the cluster", info.Cluster.Leader)
	}
	return i, info.Config.Replicas, nil
}

func streamInfo(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return st.Info(ctx)
}

// NATSNodeOutage is one node taken down: which, whether it led the
// stream, how long the stream went without a leader, and how long the node
// took to catch up once started again.
type NATSNodeOutage struct {
	Node       string
	WasLeader  bool
	NewLeader  string
	Election   time.Duration
	CatchUp    time.Duration
	Replicas   int
	StreamName string
	// Clients connected to the node when it went down (gridd's and
	// cased's connections among them move to another node).
	Clients int
}

// followerWithClients picks a node other than lead, one with client
// connections (gridd's, cased's) when there is one, so that clients have
// to move.
func (s *Stack) followerWithClients(lead int) int {
	n := s.cluster.Size()
	first := mrand.IntN(n)
	pick := -1
	for k := range n {
		i := (first + k) % n
		if i == lead {
			continue
		}
		if pick < 0 {
			pick = i
		}
		if srv := s.cluster.Server(i); srv != nil && srv.NumClients() > 0 {
			return i
		}
	}
	return pick
}

func (o NATSNodeOutage) String() string {
	role := "a follower"
	if o.WasLeader {
		role = "the leader"
	}
	s := fmt.Sprintf("NATS node %s (%s of %s, R%d, %d clients) shut down", o.Node, role, o.StreamName, o.Replicas, o.Clients)
	if o.WasLeader {
		s += fmt.Sprintf(", %s leads after %s", o.NewLeader, o.Election.Round(time.Millisecond))
	}
	return s + fmt.Sprintf(", back and caught up %s after its restart", o.CatchUp.Round(time.Millisecond))
}

// KillNATSNode shuts down one node of the cluster — the leader of stream
// when leader is true, else one of its followers — keeps it down for
// down, then starts it again on its ports and storage and waits until
// every node is caught up. Clients of the node reconnect to another.
func (s *Stack) KillNATSNode(ctx context.Context, stream string, leader bool, down time.Duration) (NATSNodeOutage, error) {
	o := NATSNodeOutage{StreamName: stream, WasLeader: leader}
	lead, replicas, err := s.StreamLeader(ctx, stream)
	if err != nil {
		return o, err
	}
	o.Replicas = replicas
	victim := lead
	if !leader {
		victim = s.followerWithClients(lead)
	}
	o.Node = s.cluster.Name(victim)
	if srv := s.cluster.Server(victim); srv != nil {
		o.Clients = srv.NumClients()
	}
	start := time.Now()
	s.cluster.StopNode(victim)
	// Whatever happens, the node comes back: a cluster left with one
	// node down would lose its quorum at the next kill.
	var electErr error
	if leader {
		next, _, err := s.streamLeader(ctx, stream, victim)
		if err != nil {
			electErr = fmt.Errorf("no new leader of %s after %s shut down: %w", stream, o.Node, err)
		} else {
			o.NewLeader, o.Election = s.cluster.Name(next), time.Since(start)
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(start.Add(down))):
	}
	restart := time.Now()
	if err := s.cluster.StartNode(victim); err != nil {
		return o, errors.Join(electErr, err)
	}
	if err := s.cluster.WaitHealthy(3 * time.Minute); err != nil {
		return o, errors.Join(electErr, err)
	}
	if electErr != nil {
		return o, electErr
	}
	o.CatchUp = time.Since(restart)
	return o, nil
}
