// Package messaging owns ecogrid's NATS JetStream plumbing: the connection
// helper every service uses, the stream definitions (created idempotently
// at start), the subject names, and an embedded server for `gridctl dev`.
//
// NATS is a transport, not the system of record: PostgreSQL decides what
// happened (outbox in the producer, inbox in the consumer). Streams keep a
// duplicate window so a republished event with the same Nats-Msg-Id is
// dropped; consumers stay idempotent beyond it.
package messaging

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DefaultURL is used when NATS_URL is not set.
const DefaultURL = "nats://127.0.0.1:4222"

// Stream names.
const (
	StreamViolations = "VIOLATIONS"
	StreamCases      = "CASES"
	StreamDeadLetter = "DLQ"
)

// Connect dials NATS without credentials; see ConnectAs.
func Connect(ctx context.Context, url, name string, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	return ConnectAs(ctx, url, Credentials{}, name, log)
}

// ConnectAs dials NATS as the user creds names (none when unset) and
// returns the connection and a JetStream handle. A service's user name is
// its role, and the connection takes that role's inbox prefix, the only
// reply subjects its permissions let it subscribe to. url is one server
// or a cluster's servers, comma separated; the client picks one at random
// (spreading services over the nodes), learns the rest of the cluster
// from it, and when its server goes away reconnects to another, forever,
// in the background. A failure to reach any server at start is returned
// as one line saying what to do.
func ConnectAs(ctx context.Context, url string, creds Credentials, name string, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	if url == "" {
		url = DefaultURL
	}
	if log == nil {
		log = slog.Default()
	}
	opts := []nats.Option{
		nats.Name(name),
		nats.Timeout(5 * time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Error("nats error", "err", err)
		}),
	}
	if creds.Set() {
		opts = append(opts, nats.UserInfo(creds.User, creds.Password))
		if p := InboxPrefix(Role(creds.User)); p != "" {
			opts = append(opts, nats.CustomInboxPrefix(p))
		}
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) {
			return nil, nil, fmt.Errorf("NATS at %s refused the connection as user %q: set NATS_USER and NATS_PASSWORD to this service's NATS user", url, creds.User)
		}
		return nil, nil, fmt.Errorf("cannot reach NATS at %s (%v): start nats-server with -js or set NATS_URL", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(actx); err != nil {
		nc.Close()
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			return nil, nil, fmt.Errorf("NATS at %s has JetStream disabled: start nats-server with -js", url)
		}
		return nil, nil, fmt.Errorf("NATS at %s: JetStream not answering: %v", url, err)
	}
	return nc, js, nil
}

// StreamConfig holds what differs between deployments.
type StreamConfig struct {
	// Replicas per stream. 0 (the default) chooses by the server
	// EnsureStreams is connected to: 1 on a single server, 3 on a cluster.
	Replicas int
	// DuplicateWindow during which a repeated Nats-Msg-Id is dropped.
	DuplicateWindow time.Duration
	// MaxAge of stored messages; consumers and the reconciler catch up long before.
	MaxAge time.Duration
	// Log receives a warning when an existing stream keeps more replicas
	// than Replicas asks for (slog.Default when nil).
	Log *slog.Logger
}

// ClusterReplicas is the replica count streams get on a cluster by default:
// a write is acknowledged once two of three servers hold it, and any one
// server can be lost.
const ClusterReplicas = 3

// Streams returns ecogrid's stream definitions.
func Streams(cfg StreamConfig) []jetstream.StreamConfig {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.DuplicateWindow <= 0 {
		cfg.DuplicateWindow = 2 * time.Hour
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 30 * 24 * time.Hour
	}
	base := func(name, subject, desc string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{subject},
			Storage:     jetstream.FileStorage,
			Replicas:    cfg.Replicas,
			Retention:   jetstream.LimitsPolicy,
			Duplicates:  cfg.DuplicateWindow,
			MaxAge:      cfg.MaxAge,
			Discard:     jetstream.DiscardOld,
			// The outbox relay sends backlogs as atomic batches: one sync
			// to disk per batch instead of per message.
			AllowAtomicPublish: true,
		}
	}
	return []jetstream.StreamConfig{
		base(StreamViolations, StreamSubjects(StreamViolations), "violations filed in gridd, by county"),
		base(StreamCases, StreamSubjects(StreamCases), "case workflow events from cased, by county and event type"),
		base(StreamDeadLetter, StreamSubjects(StreamDeadLetter), "messages consumers gave up on, for an operator"),
	}
}

// AutoReplicas is the replica count a StreamConfig with Replicas 0 takes
// on nc's server: ClusterReplicas when it is a node of a cluster, else 1.
func AutoReplicas(nc *nats.Conn) int {
	if nc != nil && nc.ConnectedClusterName() != "" {
		return ClusterReplicas
	}
	return 1
}

// EnsureStreams creates or updates every stream; safe to call at every
// start of every replica. A stream that exists with fewer replicas than
// asked for (an R1 stream made on a single server that has since become a
// cluster node, or made before the replica count was raised) is scaled up
// in place: the server copies its messages to the new replicas. One that
// has more keeps them, with a warning: a replica started with a stale
// setting must not take durability away from the others; lowering it is
// an operator's act (`nats stream edit NAME --replicas N`).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) error {
	if cfg.Replicas <= 0 {
		cfg.Replicas = AutoReplicas(js.Conn())
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	for _, sc := range Streams(cfg) {
		if err := ensureStream(ctx, js, sc, log); err != nil {
			return err
		}
	}
	return nil
}

// ensureStreamFor bounds the retries of one stream's creation: a cluster
// electing a leader, or several services creating the same stream at the
// same moment (a proposal the meta leader answers only once it is
// applied), leaves requests unanswered for a while.
const ensureStreamFor = 2 * time.Minute

// ensureStream creates or updates one stream, trying again while the
// cluster does not answer or another service created it first.
func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig, log *slog.Logger) error {
	deadline := time.Now().Add(ensureStreamFor)
	wait := 100 * time.Millisecond
	for {
		err := ensureStreamOnce(ctx, js, sc, log)
		if err == nil || !retryable(err) || ctx.Err() != nil || time.Now().After(deadline) {
			if err != nil {
				return streamError(sc, err)
			}
			return nil
		}
		log.Debug("stream not ensured yet, trying again", "stream", sc.Name, "err", err)
		select {
		case <-ctx.Done():
			return streamError(sc, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func ensureStreamOnce(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig, log *slog.Logger) error {
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := js.Stream(actx, sc.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(actx, sc)
		return err
	}
	if err != nil {
		return err
	}
	if have := st.CachedInfo().Config.Replicas; have > sc.Replicas {
		log.Warn("stream keeps its replicas", "stream", sc.Name, "replicas", have, "configured", sc.Replicas,
			"hint", "lower it with `nats stream edit "+sc.Name+" --replicas N` if that is meant")
		sc.Replicas = have
	}
	_, err = js.UpdateStream(actx, sc)
	return err
}

// retryable: the request went unanswered (timeout, no responders while
// a node is away), the cluster has no leader for the moment, or the
// stream appeared between the look and the create.
func retryable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return true
	}
	var api *jetstream.APIError
	return errors.As(err, &api) && api.ErrorCode == jsClusterNotAvailable
}

// JetStream's error codes for a replica count the servers cannot place.
const (
	jsClusterNoPeers        = 10005
	jsInsufficientResources = 10023
	jsReplicasNotSupported  = 10074
	jsClusterNotAvailable   = 10008
)

// streamError says what to do when a stream cannot be created or updated
// with its replica count.
func streamError(sc jetstream.StreamConfig, err error) error {
	var api *jetstream.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode {
		case jsReplicasNotSupported:
			return fmt.Errorf("stream %s: %d replicas need a NATS cluster, and this server runs alone: set ECOGRID_STREAM_REPLICAS=1 (or 0, chosen by the server) or connect to a cluster (%w)", sc.Name, sc.Replicas, err)
		case jsClusterNoPeers, jsInsufficientResources:
			return fmt.Errorf("stream %s: the NATS cluster cannot place %d replicas (fewer JetStream servers up than replicas, or out of storage): start every node, or set ECOGRID_STREAM_REPLICAS to the number of servers (%w)", sc.Name, sc.Replicas, err)
		case jsClusterNotAvailable:
			return fmt.Errorf("stream %s: the NATS cluster has no JetStream leader right now (a majority of its servers must be up): try again once they are (%w)", sc.Name, err)
		}
	}
	return fmt.Errorf("stream %s: %w", sc.Name, err)
}
