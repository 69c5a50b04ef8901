package messaging_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"ecogrid/internal/messaging"
	"ecogrid/internal/messaging/natstest"
)

// eventually retries f until it succeeds; the bound is generous (a loaded
// machine elects slowly) and only stops a test that would hang.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func streamInfo(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	st, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return st.Info(ctx)
}

// publishAcked publishes a violation with its event id until the stream
// acknowledges it, as the outbox relay does: a retry after a lost
// acknowledgement is dropped by the duplicate window.
func publishAcked(t *testing.T, js jetstream.JetStream, id string) {
	t.Helper()
	eventually(t, "publishing "+id, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		msg := &nats.Msg{Subject: messaging.ViolationSubject("130123"), Data: []byte(id), Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, id)
		_, err := js.PublishMsg(ctx, msg)
		return err
	})
}

// consume fetches and acknowledges (waiting for the server's confirmation)
// until want messages have arrived, counting each message id.
func consume(t *testing.T, cons jetstream.Consumer, want int, seen map[string]int) {
	t.Helper()
	got := 0
	eventually(t, fmt.Sprintf("consuming %d messages", want), func() error {
		batch, err := cons.Fetch(want-got, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		for m := range batch.Messages() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := m.DoubleAck(ctx)
			cancel()
			if err != nil {
				// Not acknowledged: it comes again, and is counted then.
				continue
			}
			seen[string(m.Data())]++
			got++
		}
		if got < want {
			return fmt.Errorf("%d of %d so far (%v)", got, want, batch.Error())
		}
		return nil
	})
}

// A 3-node cluster with R3 streams, secured as a single server is: every
// message the stream acknowledged before its leader is shut down, and every
// one published after (through connections that only knew the dead node
// and moved to another by themselves), is consumed exactly once from the
// durable consumer once a new leader is elected; the messages already
// acknowledged before the loss are not delivered again; the node, started
// again, catches up.
func TestClusterKeepsAcknowledgedMessagesAcrossLeaderLoss(t *testing.T) {
	t.Parallel()
	c := natstest.StartCluster(t, natstest.Secured())
	ctx := context.Background()
	_, admin := c.ConnectAs(t, messaging.RoleGridd, "")
	if err := messaging.EnsureStreams(ctx, admin, messaging.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	info, err := streamInfo(ctx, admin, messaging.StreamViolations)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream on a cluster by default: replicas %d, cluster %+v; want 3 (a leader and 2 followers)", info.Config.Replicas, info.Cluster)
	}
	leader := info.Cluster.Leader
	node := c.Node(leader)
	if node < 0 {
		t.Fatalf("leader %q is none of the nodes", leader)
	}
	// The publisher and the consumer know only the leader's URL; they
	// learn the others from it.
	pubConn, pub := c.ConnectAs(t, messaging.RoleGridd, c.URLs()[node])
	subConn, sub := c.ConnectAs(t, messaging.RoleCased, c.URLs()[node])
	cons, err := sub.CreateOrUpdateConsumer(ctx, messaging.StreamViolations, jetstream.ConsumerConfig{
		Durable: "cluster-test", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}

	const n = 200
	for i := range n {
		publishAcked(t, pub, fmt.Sprintf("before-%03d", i))
	}
	seen := map[string]int{}
	consume(t, cons, n/2, seen)

	c.StopNode(node)
	eventually(t, "a new stream leader", func() error {
		info, err := streamInfo(ctx, admin, messaging.StreamViolations)
		if err != nil {
			return err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" || info.Cluster.Leader == leader {
			return fmt.Errorf("leader still %+v", info.Cluster)
		}
		return nil
	})
	for i := range n {
		publishAcked(t, pub, fmt.Sprintf("after-%03d", i))
	}
	consume(t, cons, n/2+n, seen)

	if len(seen) != 2*n {
		t.Errorf("%d distinct messages consumed, want %d", len(seen), 2*n)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("message %s consumed %d times", id, k)
		}
	}
	for _, prefix := range []string{"before-", "after-"} {
		for i := range n {
			if id := fmt.Sprintf("%s%03d", prefix, i); seen[id] != 1 {
				t.Errorf("acknowledged message %s consumed %d times, want once", id, seen[id])
			}
		}
	}
	extra, err := cons.FetchNoWait(10)
	if err != nil {
		t.Fatal(err)
	}
	for m := range extra.Messages() {
		t.Errorf("delivered again after everything was acknowledged: %s", m.Data())
	}
	for _, nc := range []*nats.Conn{pubConn, subConn} {
		if nc.ConnectedServerName() == leader || nc.Stats().Reconnects == 0 {
			t.Errorf("connection %s is on %q after %d reconnects; want it moved off %s", nc.Opts.Name, nc.ConnectedServerName(), nc.Stats().Reconnects, leader)
		}
	}

	if err := c.StartNode(node); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(90 * time.Second); err != nil {
		t.Fatal(err)
	}
	// The leader sees the restarted node as a current replica again.
	eventually(t, "every replica current", func() error {
		info, err = streamInfo(ctx, admin, messaging.StreamViolations)
		if err != nil {
			return err
		}
		for _, r := range info.Cluster.Replicas {
			if !r.Current || r.Offline {
				return fmt.Errorf("replica %s: current %v, offline %v", r.Name, r.Current, r.Offline)
			}
		}
		return nil
	})
	if info.State.Msgs != 2*n {
		t.Errorf("stream holds %d messages, want %d (each publish once, retries dropped)", info.State.Msgs, 2*n)
	}
}

// Streams made with one replica (on a single server, or before the count
// was raised) are scaled up in place to R3 with their messages; a replica
// started with a lower setting does not scale them down again.
func TestEnsureStreamsScalesR1StreamsUpAndNeverDown(t *testing.T) {
	t.Parallel()
	c := natstest.StartCluster(t, natstest.Secured())
	ctx := context.Background()
	_, js := c.ConnectAs(t, messaging.RoleGridd, "")
	if err := messaging.EnsureStreams(ctx, js, messaging.StreamConfig{Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		publishAcked(t, js, fmt.Sprintf("r1-%d", i))
	}
	replicas := func() (int, uint64) {
		t.Helper()
		info, err := streamInfo(ctx, js, messaging.StreamViolations)
		if err != nil {
			t.Fatal(err)
		}
		return info.Config.Replicas, info.State.Msgs
	}
	if r, _ := replicas(); r != 1 {
		t.Fatalf("replicas %d, want 1", r)
	}
	if err := messaging.EnsureStreams(ctx, js, messaging.StreamConfig{}); err != nil {
		t.Fatalf("scaling up: %v", err)
	}
	if r, msgs := replicas(); r != 3 || msgs != 10 {
		t.Fatalf("after scaling up: replicas %d, messages %d; want 3 and 10", r, msgs)
	}
	var warnings bytes.Buffer
	log := slog.New(slog.NewTextHandler(&warnings, nil))
	if err := messaging.EnsureStreams(ctx, js, messaging.StreamConfig{Replicas: 1, Log: log}); err != nil {
		t.Fatal(err)
	}
	if r, _ := replicas(); r != 3 {
		t.Fatalf("a replica configured for 1 scaled the stream down to %d", r)
	}
	if !strings.Contains(warnings.String(), `msg="stream keeps its replicas" stream=VIOLATIONS replicas=3 configured=1`) {
		t.Errorf("no warning that the stream keeps 3 replicas; logged:\n%s", warnings.String())
	}
}

// More replicas than a single server can hold is refused with what to do.
func TestEnsureStreamsOnASingleServerSaysReplicasNeedACluster(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := srv.ConnectAs(t, "")
	err := messaging.EnsureStreams(context.Background(), js, messaging.StreamConfig{Replicas: 3})
	if err == nil || !strings.Contains(err.Error(), "ECOGRID_STREAM_REPLICAS") {
		t.Fatalf("R3 on one server: %v; want an error naming ECOGRID_STREAM_REPLICAS", err)
	}
	if err := messaging.EnsureStreams(context.Background(), js, messaging.StreamConfig{}); err != nil {
		t.Fatalf("default replicas on one server: %v", err)
	}
}

// gridd and cased replicas starting at the same moment all get their
// streams: concurrent creations of one stream on a cluster can go
// unanswered, and EnsureStreams tries again.
func TestEnsureStreamsFromSeveralServicesAtOnce(t *testing.T) {
	t.Parallel()
	c := natstest.StartCluster(t, natstest.Secured())
	roles := []messaging.Role{messaging.RoleGridd, messaging.RoleCased, messaging.RoleGridd, messaging.RoleCased}
	errs := make([]error, len(roles))
	var wg sync.WaitGroup
	for i, r := range roles {
		_, js := c.ConnectAs(t, r, "")
		wg.Go(func() { errs[i] = messaging.EnsureStreams(context.Background(), js, messaging.StreamConfig{}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("%s #%d: %v", roles[i], i, err)
		}
	}
	_, js := c.ConnectAs(t, messaging.RoleGridd, "")
	for _, name := range []string{messaging.StreamViolations, messaging.StreamCases, messaging.StreamDeadLetter} {
		info, err := streamInfo(context.Background(), js, name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 {
			t.Errorf("stream %s: %d replicas, want 3", name, info.Config.Replicas)
		}
	}
}

// setClusterEnv sets what deploy/nats/nats-cluster.conf reads from the
// environment for node (from 1), with routes to routePorts on loopback.
func setClusterEnv(t *testing.T, node int, routePorts []int) {
	t.Setenv("ECOGRID_NATS_SERVER_NAME", fmt.Sprintf("nats-%d", node))
	t.Setenv("ECOGRID_NATS_ROUTE_PASSWORD", "route-secret")
	for i, p := range routePorts {
		t.Setenv(fmt.Sprintf("ECOGRID_NATS_ROUTE_%d", i+1), fmt.Sprintf("nats-route://route:route-secret@127.0.0.1:%d", p))
	}
}

// deploy/nats/nats-cluster.conf, as three nodes on loopback (only the
// ports and storage changed), forms a JetStream cluster whose routes
// authenticate, and the services' users get R3 streams on it.
func TestDeployClusterConfigFormsACluster(t *testing.T) {
	for _, r := range deployedRoles {
		t.Setenv("ECOGRID_NATS_"+upper(string(r))+"_PASSWORD", "pw-"+string(r))
	}
	ports := make([]int, 6)
	for i := range ports {
		ports[i] = freeLoopbackPort(t)
	}
	clientPorts, routePorts := ports[:3], ports[3:]
	var urls []string
	for i := range 3 {
		setClusterEnv(t, i+1, routePorts)
		opts, err := server.ProcessConfigFile(filepath.Join("..", "..", "deploy", "nats", "nats-cluster.conf"))
		if err != nil {
			t.Fatal(err)
		}
		if opts.ServerName != fmt.Sprintf("nats-%d", i+1) || opts.Cluster.Name != "ecogrid" || len(opts.Routes) != 3 ||
			opts.Cluster.Username != "route" || opts.Cluster.Password != "route-secret" {
			t.Fatalf("node %d: server %q, cluster %q, %d routes, route user %q", i+1, opts.ServerName, opts.Cluster.Name, len(opts.Routes), opts.Cluster.Username)
		}
		opts.Host, opts.Port = "127.0.0.1", clientPorts[i]
		opts.Cluster.Host, opts.Cluster.Port = "127.0.0.1", routePorts[i]
		opts.HTTPPort = 0
		opts.StoreDir = t.TempDir()
		opts.NoSigs, opts.NoLog = true, true
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("node %d not ready", i+1)
		}
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]))
	}
	var js jetstream.JetStream
	eventually(t, "connecting as gridd with JetStream", func() error {
		nc, j, err := messaging.ConnectAs(context.Background(), strings.Join(urls, ","), messaging.Credentials{User: "gridd", Password: "pw-gridd"}, "test", nil)
		if err == nil {
			t.Cleanup(nc.Close)
			js = j
		}
		return err
	})
	if err := messaging.EnsureStreams(context.Background(), js, messaging.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	info, err := streamInfo(context.Background(), js, messaging.StreamViolations)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("VIOLATIONS on the deployed cluster: replicas %d, cluster %+v", info.Config.Replicas, info.Cluster)
	}
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
