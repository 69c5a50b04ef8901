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
// reply subjects its permissions let it subscribe to. The connection
// reconnects forever in the background; a failure to reach the server at
// start is returned as one line saying what to do.
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
	// Replicas per stream: 1 for a single server (dev), 3 in production.
	Replicas int
	// DuplicateWindow during which a repeated Nats-Msg-Id is dropped.
	DuplicateWindow time.Duration
	// MaxAge of stored messages; consumers and the reconciler catch up long before.
	MaxAge time.Duration
}

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

// EnsureStreams creates or updates every stream; safe to call at every
// start of every replica.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) error {
	for _, sc := range Streams(cfg) {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("stream %s: %w", sc.Name, err)
		}
	}
	return nil
}
