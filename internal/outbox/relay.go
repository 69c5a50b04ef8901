package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	_ "ecogrid/api/ecogrid/events/v1" // the event schemas, for the JSON copies
	"ecogrid/internal/messaging"
)

// NotifyChannel is the PostgreSQL channel a trigger on outbox.events
// notifies after every insert (migration 00050), so relays wake at once
// instead of waiting for their next poll.
const NotifyChannel = "outbox_events"

// lockClass is the first key of the transaction-scoped advisory lock a
// relay holds on a county while it publishes that county's rows; the
// second key is hashtext(county_code). It keeps per-county order with any
// number of relays: one relay per county at a time, the others skip it.
const lockClass = 0x0b0c

// RelayConfig tunes a relay. Zero values take the defaults.
type RelayConfig struct {
	// Name identifies the relay in logs (e.g. the replica's host name).
	Name string
	// BatchSize is the most rows of one county published per round (default 256).
	BatchSize int
	// PollInterval is how long an idle relay waits when no notification
	// arrives (default 1s); notifications wake it earlier.
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed round,
	// doubling in between (defaults 200ms and 15s).
	MinBackoff, MaxBackoff time.Duration
	// AckTimeout is how long to wait for JetStream to acknowledge a batch (default 5s).
	AckTimeout time.Duration
	// AtomicBatch is the most events sent as one JetStream atomic batch
	// (default 100; 1 disables). With fsync on every write, a stream stores
	// a few hundred single messages a second on ordinary disks; an atomic
	// batch is stored with one sync. A batch the server refuses (a
	// duplicate Nats-Msg-Id after a relay crash, a stream without atomic
	// publish) is sent again message by message, where duplicates are
	// simply acknowledged.
	AtomicBatch int
	// Retention is how long sent events are kept before the relay deletes
	// them (default 30 days; negative keeps them forever). It must exceed
	// cased's reconciliation lookback, which reads sent violation events.
	Retention time.Duration
}

func (c *RelayConfig) setDefaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 200 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(15*time.Second, c.MinBackoff)
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 5 * time.Second
	}
	if c.AtomicBatch == 0 {
		c.AtomicBatch = 100
	}
	if c.Retention == 0 {
		c.Retention = 30 * 24 * time.Hour
	}
}

// Relay publishes pending outbox rows to JetStream. Run one per replica of
// gridd and cased; they share the work without publishing a row twice in
// the normal course (a crash between ack and mark is covered by the
// duplicate window and the consumers' inboxes).
type Relay struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	cfg  RelayConfig
	log  *slog.Logger
	wake chan struct{}
	// noAtomic is set once a stream refuses atomic batches.
	noAtomic atomic.Bool
	// republished counts events JetStream already held (Nats-Msg-Id
	// duplicates): published again because a relay died between publishing
	// and marking them sent. The stream stored each once.
	republished atomic.Int64
}

// Republished is how many events this relay published that the stream
// already held (acknowledged as duplicates, stored once).
func (r *Relay) Republished() int64 { return r.republished.Load() }

// RepublishedLog is the message of the log line (level info) a relay writes
// when JetStream acknowledged some of its events as duplicates, with the
// count in "events"; the fault harness sums them over replicas.
const RepublishedLog = "outbox events were already in the stream (published again after a relay died before marking them sent; stored once)"

// NewRelay returns a relay reading pool's outbox and publishing with js.
func NewRelay(pool *pgxpool.Pool, js jetstream.JetStream, cfg RelayConfig, log *slog.Logger) *Relay {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	return &Relay{pool: pool, js: js, cfg: cfg, log: log.With("relay", cfg.Name), wake: make(chan struct{}, 1)}
}

// Run relays until ctx ends, backing off while NATS or PostgreSQL fail. It
// returns nil when ctx is cancelled.
func (r *Relay) Run(ctx context.Context) error {
	go r.listen(ctx)
	go r.prune(ctx)
	backoff := r.cfg.MinBackoff
	for {
		n, err := r.RelayOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var wait time.Duration
		switch {
		case err != nil:
			relayFailures.Inc()
			r.log.Warn("outbox relay round failed", "err", err, "retry_in", backoff)
			wait = backoff + rand.N(backoff/4+1)
			backoff = min(2*backoff, r.cfg.MaxBackoff)
		case n > 0:
			backoff = r.cfg.MinBackoff
			continue // more may be waiting
		default:
			backoff = r.cfg.MinBackoff
			wait = r.cfg.PollInterval
		}
		wake := r.wake
		if err != nil {
			wake = nil // a new row does not make NATS come back: keep backing off
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// listen wakes the relay when a row is inserted. It uses a connection of
// its own, outside the pool, so that waiting never takes a pool slot from
// the work. Losing it only costs latency: the poll still runs.
func (r *Relay) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := func() error {
			conn, err := pgx.ConnectConfig(ctx, r.pool.Config().ConnConfig.Copy())
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(ctx))
			if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
				return err
			}
			for {
				if _, err := conn.WaitForNotification(ctx); err != nil {
					return err
				}
				select {
				case r.wake <- struct{}{}:
				default:
				}
			}
		}()
		if ctx.Err() != nil {
			return
		}
		r.log.Debug("outbox listen failed", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// prune deletes sent events older than the retention every few minutes,
// a bounded number at a time. Pending events are never deleted.
func (r *Relay) prune(ctx context.Context) {
	if r.cfg.Retention < 0 {
		return
	}
	t := time.NewTicker(5*time.Minute + rand.N(time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := Prune(ctx, r.pool, r.cfg.Retention)
		if err != nil && ctx.Err() == nil {
			r.log.Warn("outbox prune failed", "err", err)
		} else if n > 0 {
			r.log.Info("outbox pruned", "deleted", n)
		}
	}
}

// Prune deletes events sent more than olderThan ago, at most 10,000 per
// call, and returns how many it deleted.
func Prune(ctx context.Context, pool *pgxpool.Pool, olderThan time.Duration) (int64, error) {
	tag, err := pool.Exec(ctx, `
		DELETE FROM outbox.events WHERE seq IN (
			SELECT seq FROM outbox.events
			WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => $1)
			ORDER BY seq LIMIT 10000)`, olderThan.Seconds())
	return tag.RowsAffected(), err
}

// RelayOnce publishes one batch of every county with pending rows that no
// other relay is working on, and returns how many rows it marked sent. An
// error means at least one county's batch failed; the rows stay pending.
func (r *Relay) RelayOnce(ctx context.Context) (int, error) {
	counties, err := pendingCounties(ctx, r.pool)
	if err != nil {
		return 0, fmt.Errorf("listing pending counties: %w", err)
	}
	rand.Shuffle(len(counties), func(i, j int) { counties[i], counties[j] = counties[j], counties[i] })
	total := 0
	var errs []error
	for _, county := range counties {
		n, err := r.relayCounty(ctx, county)
		total += n
		if err != nil {
			errs = append(errs, fmt.Errorf("county %s: %w", county, err))
		}
	}
	return total, errors.Join(errs...)
}

// pendingCounties lists the counties with unsent rows with a loose index
// scan over outbox_events_pending, cheap even with a large backlog.
func pendingCounties(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	rows, err := pool.Query(ctx, `
		WITH RECURSIVE c AS (
			(SELECT county_code FROM outbox.events WHERE sent_at IS NULL ORDER BY county_code LIMIT 1)
			UNION ALL
			SELECT (SELECT e.county_code FROM outbox.events e
			        WHERE e.sent_at IS NULL AND e.county_code > c.county_code
			        ORDER BY e.county_code LIMIT 1)
			FROM c WHERE c.county_code IS NOT NULL
		)
		SELECT county_code FROM c WHERE county_code IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

type pendingRow struct {
	seq       int64
	eventID   string
	subject   string
	eventType string
	payload   []byte
}

// relayCounty publishes the county's oldest pending rows in seq order while
// holding the county's advisory lock, and marks the acknowledged prefix sent
// in the same short transaction.
func (r *Relay) relayCounty(ctx context.Context, county string) (int, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	var locked bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, hashtext($2))`, lockClass, county).Scan(&locked); err != nil {
		return 0, err
	}
	if !locked {
		return 0, nil // another relay has this county
	}
	rows, err := tx.Query(ctx, `
		SELECT seq, event_id::text, subject, event_type, payload FROM outbox.events
		WHERE county_code = $1 AND sent_at IS NULL
		ORDER BY seq LIMIT $2`, county, r.cfg.BatchSize)
	if err != nil {
		return 0, err
	}
	batch, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pendingRow, error) {
		var p pendingRow
		return p, row.Scan(&p.seq, &p.eventID, &p.subject, &p.eventType, &p.payload)
	})
	if err != nil || len(batch) == 0 {
		return 0, err
	}

	acked, pubErr := r.publish(ctx, batch)
	sent := make([]int64, acked)
	for i := range acked {
		sent[i] = batch[i].seq
	}
	if acked > 0 {
		if _, err := tx.Exec(ctx, `
			UPDATE outbox.events SET sent_at = now(), attempts = attempts + 1, last_error = NULL
			WHERE seq = ANY($1)`, sent); err != nil {
			return 0, err
		}
	}
	if pubErr != nil {
		msg := pubErr.Error()
		if len(msg) > 500 {
			msg = msg[:500]
		}
		if _, err := tx.Exec(ctx, `
			UPDATE outbox.events SET attempts = attempts + 1, last_error = $2 WHERE seq = $1`,
			batch[acked].seq, msg); err != nil {
			return 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	published.Add(float64(acked))
	r.mirrorJSON(batch[:acked])
	return acked, pubErr
}

// mirrorJSON publishes each case event of rows, now in the stream, again
// as protojson on its messaging.JSONCaseSubject (core NATS: live, at most
// once), with the same self-describing headers but Content-Type
// application/json. A failure costs only the live copy.
func (r *Relay) mirrorJSON(rows []pendingRow) {
	nc := r.js.Conn()
	for _, p := range rows {
		subject, ok := messaging.JSONMirror(p.subject)
		if !ok {
			continue
		}
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(SchemaPackage + p.eventType))
		if err != nil {
			continue
		}
		msg := mt.New().Interface()
		if err := proto.Unmarshal(p.payload, msg); err != nil {
			r.log.Warn("outbox: case event not decodable for its JSON copy", "event_id", p.eventID, "err", err)
			continue
		}
		body, err := protojson.Marshal(msg)
		if err != nil {
			continue
		}
		m := nats.NewMsg(subject)
		m.Data = body
		p.describe(m)
		m.Header.Set(HeaderEventID, p.eventID)
		m.Header.Set(HeaderContentType, ContentTypeJSON)
		if err := nc.PublishMsg(m); err != nil {
			r.log.Debug("outbox: JSON copy not published", "event_id", p.eventID, "err", err)
		}
	}
}

// publish sends the batch in order and returns the length of the prefix
// JetStream acknowledged (a duplicate counts: the stream already holds it).
// Rows after the first failure stay pending so order is kept.
func (r *Relay) publish(ctx context.Context, batch []pendingRow) (int, error) {
	if r.cfg.AtomicBatch <= 1 || r.noAtomic.Load() {
		return r.publishEach(ctx, batch)
	}
	done := 0
	for done < len(batch) {
		// A chunk goes to one stream.
		end := done + 1
		for end < len(batch) && end-done < r.cfg.AtomicBatch && streamPrefix(batch[end].subject) == streamPrefix(batch[done].subject) {
			end++
		}
		chunk := batch[done:end]
		if len(chunk) > 1 {
			err := r.publishAtomic(ctx, chunk)
			if err == nil {
				done = end
				continue
			}
			var refused *batchRefusedError
			if !errors.As(err, &refused) {
				return done, err // NATS unreachable: the rows wait for the next round
			}
			if errors.Is(err, errAtomicDisabled) {
				r.noAtomic.Store(true)
				r.log.Warn("stream refuses atomic batches; publishing message by message", "subject", chunk[0].subject)
			} else {
				r.log.Debug("atomic batch refused; publishing message by message", "err", err)
			}
		}
		n, err := r.publishEach(ctx, chunk)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// streamPrefix names the stream a subject goes to (messaging owns the
// layouts); a subject no stream takes stands for itself, so it never
// joins another's batch.
func streamPrefix(subject string) string {
	if stream, ok := messaging.StreamOf(subject); ok {
		return stream
	}
	return subject
}

var errAtomicDisabled = errors.New("atomic publish is disabled on the stream")

// batchRefusedError is a JetStream answer refusing an atomic batch; the
// rows can still be sent one by one.
type batchRefusedError struct{ err error }

func (e *batchRefusedError) Error() string { return e.err.Error() }
func (e *batchRefusedError) Unwrap() error { return e.err }

// JetStream error codes of atomic batches.
const (
	jsAtomicPublishDisabled = 10174
)

// publishAtomic sends chunk as one atomic batch (ADR-50): every message
// carries the batch id and its sequence, the last one commits and is
// answered with one acknowledgement for all, after one sync to disk.
func (r *Relay) publishAtomic(ctx context.Context, chunk []pendingRow) error {
	nc := r.js.Conn()
	id := uuid.NewString()
	var commit *nats.Msg
	for i, p := range chunk {
		m := nats.NewMsg(p.subject)
		m.Data = p.payload
		m.Header.Set(jetstream.MsgIDHeader, p.eventID)
		p.describe(m)
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		if i == len(chunk)-1 {
			m.Header.Set("Nats-Batch-Commit", "1")
			commit = m
			break
		}
		if err := nc.PublishMsg(m); err != nil {
			return err
		}
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.AckTimeout)
	defer cancel()
	reply, err := nc.RequestMsgWithContext(rctx, commit)
	if err != nil {
		return fmt.Errorf("committing atomic batch: %w", err)
	}
	var ack struct {
		Stream string `json:"stream"`
		Count  int    `json:"count"`
		Error  *struct {
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return &batchRefusedError{fmt.Errorf("atomic batch acknowledgement: %w", err)}
	}
	if ack.Error != nil {
		if ack.Error.ErrCode == jsAtomicPublishDisabled {
			return &batchRefusedError{errAtomicDisabled}
		}
		return &batchRefusedError{fmt.Errorf("atomic batch refused: %s (%d)", ack.Error.Description, ack.Error.ErrCode)}
	}
	if ack.Count != len(chunk) {
		return &batchRefusedError{fmt.Errorf("atomic batch stored %d of %d messages", ack.Count, len(chunk))}
	}
	return nil
}

// publishEach sends the rows as single messages, pipelined.
func (r *Relay) publishEach(ctx context.Context, batch []pendingRow) (int, error) {
	var dups int64
	defer func() {
		if dups > 0 {
			r.republished.Add(dups)
			republished.Add(float64(dups))
			r.log.Info(RepublishedLog, "events", dups, "first_event_id", batch[0].eventID)
		}
	}()
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	var sendErr error
	for _, p := range batch {
		m := nats.NewMsg(p.subject)
		m.Data = p.payload
		m.Header.Set(jetstream.MsgIDHeader, p.eventID)
		p.describe(m)
		f, err := r.js.PublishMsgAsync(m)
		if err != nil {
			sendErr = err
			break
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(r.cfg.AckTimeout)
	defer timeout.Stop()
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dups++
			}
		case err := <-f.Err():
			return i, fmt.Errorf("publishing event %s: %w", batch[i].eventID, err)
		case <-timeout.C:
			return i, fmt.Errorf("no acknowledgement for event %s within %v", batch[i].eventID, r.cfg.AckTimeout)
		case <-ctx.Done():
			return i, ctx.Err()
		}
	}
	if sendErr != nil {
		return len(futures), fmt.Errorf("publishing event %s: %w", batch[len(futures)].eventID, sendErr)
	}
	return len(futures), nil
}

// Self-describing headers of every published event, so that subscribers
// outside ecogrid can decode a message without knowing its subject layout.
const (
	// HeaderEventType is the case event type (opened, accepted …) or, for
	// other events, the message name (ViolationReported).
	HeaderEventType = "Ecogrid-Event-Type"
	// HeaderSchema is the protobuf full name of the payload
	// (ecogrid.events.v1.CaseEvent).
	HeaderSchema = "Ecogrid-Schema"
	// HeaderContentType is the payload's encoding: application/protobuf in
	// the streams, application/json on the JSON copies.
	HeaderContentType = "Content-Type"
	// ContentTypeProtobuf is the value of HeaderContentType.
	ContentTypeProtobuf = "application/protobuf"
	// ContentTypeJSON is HeaderContentType of the protojson copies on
	// messaging.JSONCaseSubject.
	ContentTypeJSON = "application/json"
	// HeaderEventID carries the event id on the JSON copies (which have
	// no Nats-Msg-Id: they are not stored).
	HeaderEventID = "Ecogrid-Event-Id"
	// SchemaPackage prefixes an event type to make its schema name.
	SchemaPackage = "ecogrid.events.v1."
)

func (p pendingRow) describe(m *nats.Msg) {
	t := p.eventType
	if s, err := messaging.ParseSubject(p.subject); err == nil && s.EventType != "" {
		t = s.EventType
	}
	m.Header.Set(HeaderEventType, t)
	m.Header.Set(HeaderSchema, SchemaPackage+p.eventType)
	m.Header.Set(HeaderContentType, ContentTypeProtobuf)
}
