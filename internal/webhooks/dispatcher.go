package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/messaging"
)

// Headers of a delivery besides SignatureHeader.
const (
	// EventIDHeader is the event id: a receiver that lost its response
	// in flight gets the event again and drops it by this id.
	EventIDHeader   = "Ecogrid-Event-Id"
	EventTypeHeader = "Ecogrid-Event-Type"
	SchemaHeader    = "Ecogrid-Schema"
	// EventCountHeader is the number of events of a CaseEventBatch body.
	EventCountHeader     = "Ecogrid-Event-Count"
	caseEventSchema      = "ecogrid.events.v1.CaseEvent"
	caseEventBatchSchema = "ecogrid.events.v1.CaseEventBatch"
)

// Config tunes a dispatcher. Zero values take the defaults.
type Config struct {
	// Timeout bounds one POST (default 10s).
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts of a
	// delivery, doubling in between (defaults 500ms and 5m).
	MinBackoff, MaxBackoff time.Duration
	// Batch is the most events a subscriber's worker fetches at once (default 100).
	Batch int
	// SyncInterval is how often the subscriber list is read again (default 10s).
	SyncInterval time.Duration
	// AckInterval is the most time between acknowledgements of a
	// subscriber's consumer (default 1s).
	AckInterval time.Duration
	// Lanes is how many POSTs a subscriber's worker has in flight at once
	// (default 8). The events of one case always share a lane, so each
	// case's order holds; different cases go concurrently, so one slow
	// answer does not hold back every other case of the county.
	Lanes int
	// Client sends the POSTs (default: a client with Timeout).
	Client *http.Client
}

func (c *Config) setDefaults() {
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(5*time.Minute, c.MinBackoff)
	}
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = 10 * time.Second
	}
	if c.AckInterval <= 0 {
		c.AckInterval = time.Second
	}
	if c.Lanes <= 0 {
		c.Lanes = 8
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Timeout, Transport: &http.Transport{MaxIdleConnsPerHost: c.Lanes}}
	}
}

// Dispatcher delivers case events to every subscriber, each through its
// own durable JetStream consumer (webhook-<id>) read by one worker, which
// posts up to Lanes events at once, the events of a case always in one
// lane, so each case reaches the subscriber in order and a failing
// receiver only holds back its own deliveries. Run one dispatcher per
// deployment (cased runs it).
type Dispatcher struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	cfg  Config
	log  *slog.Logger

	// syncMu keeps Sync and Replay apart: a Sync that read the list
	// before a replay must not restart the worker at the old start.
	syncMu  sync.Mutex
	mu      sync.Mutex
	workers map[uuid.UUID]*worker
	// lease is the session holding the dispatcher lock while Run delivers
	// (nil otherwise: a Sync called without Run delivers without it).
	lease atomic.Pointer[lease]
}

// lease is the database session that holds the dispatcher lock. The lock
// lasts as long as the session: once the session is gone (PostgreSQL
// restarted, the connection cut, the backend terminated) another replica
// may hold the lock and deliver, so every batch is posted only after the
// session answered, and the first failure ends this dispatcher's turn.
type lease struct {
	mu     sync.Mutex
	conn   *pgxpool.Conn
	cancel context.CancelFunc
	lost   error
}

// errLockLost ends a worker whose dispatcher no longer holds the lock.
var errLockLost = errors.New("webhooks: the dispatcher lock's database session is gone; another replica may deliver")

// holding checks, on the lock's own session, that this dispatcher still
// holds the lock; on the first failure it ends the dispatcher's turn.
func (d *Dispatcher) holding(ctx context.Context) error {
	l := d.lease.Load()
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	if err := l.conn.Ping(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		l.lost = fmt.Errorf("%w: %v", errLockLost, err)
		l.cancel()
		return l.lost
	}
	return nil
}

type worker struct {
	cancel context.CancelFunc
	done   chan struct{}
	// generation is the subscriber's replay generation it started with.
	generation int64
}

// NewDispatcher returns a dispatcher of pool's subscribers reading js.
func NewDispatcher(pool *pgxpool.Pool, js jetstream.JetStream, cfg Config, log *slog.Logger) *Dispatcher {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	return &Dispatcher{pool: pool, js: js, cfg: cfg, log: log, workers: map[uuid.UUID]*worker{}}
}

// DispatcherLock is the PostgreSQL advisory lock (one bigint key) the
// running dispatcher holds, so that with several cased replicas exactly
// one delivers; pg_locks shows it as classid DispatcherLock>>32, objid
// DispatcherLock&0xffffffff, objsubid 1.
const DispatcherLock = 0x65636f7768 // "ecowh"

// Run delivers until ctx ends, while it holds the dispatcher lock: with
// several replicas, one delivers and the others wait to take over when its
// database session ends. It syncs the workers with the subscriber list
// every SyncInterval.
func (d *Dispatcher) Run(ctx context.Context) error {
	for {
		err := d.runLocked(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			d.log.Warn("webhooks: dispatcher lost its lock or database; retrying", "err", err)
		}
		if !sleep(ctx, d.cfg.SyncInterval) {
			return nil
		}
	}
}

func (d *Dispatcher) runLocked(ctx context.Context) error {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, DispatcherLock).Scan(&got); err != nil {
		return err
	}
	if !got {
		return nil // another replica delivers
	}
	// The workers run under lockCtx: losing the lock's session (seen by a
	// worker before a batch, or by the ping below) stops them all.
	lockCtx, cancel := context.WithCancel(ctx)
	l := &lease{conn: conn, cancel: cancel}
	d.lease.Store(l)
	defer func() {
		cancel()
		d.stopAll()
		d.lease.Store(nil)
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, DispatcherLock)
	}()
	d.log.Info("webhooks: dispatcher delivering")
	for {
		if err := d.Sync(lockCtx); err != nil && lockCtx.Err() == nil {
			d.log.Warn("webhooks: reading subscribers failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-lockCtx.Done():
			return l.lost
		case <-time.After(d.cfg.SyncInterval):
		}
		// The lock lives as long as this session: check it is still there.
		if err := d.holding(lockCtx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// Sync starts a worker for every new subscriber, restarts those with a
// replay requested (RequestReplay, from any process), and stops those
// disabled or removed. Workers run until ctx ends.
func (d *Dispatcher) Sync(ctx context.Context) error {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	subs, err := Subscribers(ctx, d.pool)
	if err != nil {
		return err
	}
	seen := map[uuid.UUID]bool{}
	for _, s := range subs {
		seen[s.ID] = true
		d.mu.Lock()
		w, running := d.workers[s.ID]
		d.mu.Unlock()
		if running && w.generation == s.ReplayGeneration && s.ReplayedGeneration == s.ReplayGeneration {
			continue
		}
		if s.ReplayedGeneration != s.ReplayGeneration {
			// The worker stops before the log forgets, so nothing of the
			// old position is recorded after the replay is applied.
			d.stop(s.ID)
			if err := d.js.DeleteConsumer(ctx, messaging.StreamCases, consumerName(s.ID)); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return err
			}
			if err := applyReplay(ctx, d.pool, s); err != nil {
				return err
			}
			d.log.Info("webhooks: replay applied", "subscriber", s.ID, "since", s.StartAt)
		} else if running {
			d.stop(s.ID)
		}
		if err := d.start(ctx, s); err != nil {
			return err
		}
	}
	d.mu.Lock()
	var gone []uuid.UUID
	for id := range d.workers {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	d.mu.Unlock()
	for _, id := range gone {
		d.stop(id)
		_ = d.js.DeleteConsumer(ctx, messaging.StreamCases, consumerName(id))
	}
	return nil
}

// Replay delivers the subscriber's events published from since again
// (RequestReplay, then a sync that applies it).
func (d *Dispatcher) Replay(ctx context.Context, id uuid.UUID, since time.Time) error {
	if err := RequestReplay(ctx, d.pool, id, since); err != nil {
		return err
	}
	return d.Sync(ctx)
}

func consumerName(id uuid.UUID) string { return "webhook-" + id.String() }

func (d *Dispatcher) start(ctx context.Context, s Subscriber) error {
	filters := []string{messaging.CaseSubject(s.CountyCode, ">")}
	if len(s.EventTypes) > 0 {
		filters = filters[:0]
		for _, t := range s.EventTypes {
			filters = append(filters, messaging.CaseSubject(s.CountyCode, t))
		}
	}
	start := s.StartAt
	cc := jetstream.ConsumerConfig{
		Durable:        consumerName(s.ID),
		Description:    "webhook deliveries to " + s.URL,
		FilterSubjects: filters,
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy,
		OptStartTime:   &start,
		AckPolicy:      jetstream.AckAllPolicy,
		AckWait:        time.Hour, // a worker holds a batch while retrying; it reports progress
		MaxAckPending:  10 * d.cfg.Batch,
		// The consumer's position is kept in memory: the delivery log in
		// PostgreSQL is what says an event was delivered. Stored on disk,
		// NATS fsyncs it on every change (the stream syncs always), which
		// made most of the fan-out's latency (BENCHMARKS.md, issue 16).
		// A consumer lost with a NATS restart is created again at the
		// subscriber's start and the log skips what it has.
		MemoryStorage: true,
	}
	if err := d.resume(ctx, &cc); err != nil {
		return fmt.Errorf("webhooks: consumer of %s: %w", s.ID, err)
	}
	cons, err := d.js.CreateOrUpdateConsumer(ctx, messaging.StreamCases, cc)
	if err != nil {
		return fmt.Errorf("webhooks: consumer of %s: %w", s.ID, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &worker{cancel: cancel, done: make(chan struct{}), generation: s.ReplayGeneration}
	d.mu.Lock()
	d.workers[s.ID] = w
	d.mu.Unlock()
	go func() {
		defer close(w.done)
		d.work(wctx, s, cons)
		// A worker that ended on its own (its consumer vanished with a
		// NATS restart, say) leaves the map so the next sync starts it again.
		d.mu.Lock()
		if d.workers[s.ID] == w {
			delete(d.workers, s.ID)
		}
		d.mu.Unlock()
	}()
	return nil
}

// resume prepares a worker's start on a consumer that exists with
// deliveries still unacknowledged: they belong to a worker that is gone
// (a replica that died holding the dispatcher lock, or stopped with a
// fetched batch unsent) and JetStream would hand them out again only when
// their AckWait (an hour) runs out, holding back every event of the case
// behind them. The consumer is deleted and cc starts it again just after
// its acknowledged floor; what was delivered past the floor is in the
// delivery log and skipped. A consumer with nothing pending is kept as is.
func (d *Dispatcher) resume(ctx context.Context, cc *jetstream.ConsumerConfig) error {
	cons, err := d.js.Consumer(ctx, messaging.StreamCases, cc.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	info := cons.CachedInfo()
	if info.NumAckPending == 0 {
		return nil
	}
	if err := d.js.DeleteConsumer(ctx, messaging.StreamCases, cc.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	if floor := info.AckFloor.Stream; floor > 0 {
		cc.DeliverPolicy, cc.OptStartSeq, cc.OptStartTime = jetstream.DeliverByStartSequencePolicy, floor+1, nil
	}
	d.log.Info("webhooks: consumer had deliveries of a worker that is gone; resuming after its acknowledged floor",
		"consumer", cc.Durable, "pending", info.NumAckPending, "ack_floor", info.AckFloor.Stream)
	return nil
}

func (d *Dispatcher) stop(id uuid.UUID) {
	d.mu.Lock()
	w := d.workers[id]
	delete(d.workers, id)
	d.mu.Unlock()
	if w != nil {
		w.cancel()
		<-w.done
	}
}

func (d *Dispatcher) stopAll() {
	d.mu.Lock()
	ids := make([]uuid.UUID, 0, len(d.workers))
	for id := range d.workers {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	for _, id := range ids {
		d.stop(id)
	}
}

// work delivers the subscriber's events batch by batch: skip those the
// log already has, POST the others in order (each retried until it
// succeeds), record them, then acknowledge the batch. Messages come from
// one long-lived pull, so none is left with an expired fetch.
func (d *Dispatcher) work(ctx context.Context, s Subscriber, cons jetstream.Consumer) {
	log := d.log.With("subscriber", s.ID)
	// Events past the log's last stream sequence, delivered for the first
	// time, cannot be in the log (this worker is the only writer and
	// records before it acknowledges): only the others are looked up.
	logged, err := lastLogged(ctx, d.pool, s.ID)
	if err != nil {
		log.Warn("webhooks: cannot read the delivery log", "err", err)
		return
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(d.cfg.Batch))
	if err != nil {
		log.Warn("webhooks: cannot read the consumer", "err", err)
		return
	}
	ch := make(chan jetstream.Msg, d.cfg.Batch)
	go func() {
		defer close(ch)
		for {
			m, err := it.Next()
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				// Gone under us (an operator, a lost NATS store): the
				// worker ends and the next sync creates the consumer again
				// at the subscriber's start; the log skips what it has.
				log.Warn("webhooks: consumer gone; restarting at the next sync", "err", err)
				return
			}
			if err != nil {
				continue
			}
			select {
			case ch <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() {
		it.Stop()
		for range ch { // let the reader end
		}
	}()
	// Acknowledgements are spaced (AckInterval, or half the pending
	// limit): each one makes NATS write and fsync the consumer's state,
	// which at 20 subscribers was most of the delivery latency. Events
	// delivered but not yet acknowledged are recorded in the log, so after
	// a crash they come again and are skipped.
	var (
		unacked jetstream.Msg
		pending int
		ackedAt = time.Now()
	)
	ack := func() {
		if unacked == nil {
			return
		}
		if err := unacked.Ack(); err != nil {
			log.Warn("webhooks: ack failed; the log keeps the events from being sent twice", "err", err)
		}
		unacked, pending, ackedAt = nil, 0, time.Now()
	}
	defer ack()
	for {
		var msgs []jetstream.Msg
		var idle <-chan time.Time
		var t *time.Timer
		if unacked != nil {
			t = time.NewTimer(max(d.cfg.AckInterval-time.Since(ackedAt), 0))
			idle = t.C
		}
		var m jetstream.Msg
		ok, timedOut := true, false
		select {
		case <-ctx.Done():
			ok = false
		case <-idle:
			timedOut = true
		case m, ok = <-ch:
		}
		if t != nil {
			t.Stop()
		}
		if timedOut {
			ack()
			continue
		}
		if !ok {
			return
		}
		msgs = append(msgs, m)
	more:
		for len(msgs) < d.cfg.Batch {
			select {
			case m, ok := <-ch:
				if !ok {
					break more
				}
				msgs = append(msgs, m)
			default:
				break more
			}
		}
		// A failure to read or write the log is retried with the same
		// batch, so later events never overtake it.
		backoff := d.cfg.MinBackoff
		for {
			err := d.deliverBatch(ctx, s, msgs, logged)
			if err == nil || ctx.Err() != nil {
				break
			}
			log.Warn("webhooks: batch not recorded; retrying", "err", err)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, d.cfg.MaxBackoff)
		}
		if ctx.Err() != nil {
			return
		}
		unacked, pending = msgs[len(msgs)-1], pending+len(msgs)
		if time.Since(ackedAt) >= d.cfg.AckInterval || pending >= 5*d.cfg.Batch {
			ack()
		}
	}
}

type event struct {
	msg  jetstream.Msg
	ev   *eventsv1.CaseEvent
	id   uuid.UUID
	meta *jetstream.MsgMetadata
}

func (d *Dispatcher) deliverBatch(ctx context.Context, s Subscriber, msgs []jetstream.Msg, logged uint64) error {
	evs := make([]event, 0, len(msgs))
	var ids []uuid.UUID // those that may be in the log already
	for _, m := range msgs {
		var ce eventsv1.CaseEvent
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		id, err := uuid.Parse(m.Headers().Get("Nats-Msg-Id"))
		if err2 := proto.Unmarshal(m.Data(), &ce); err2 != nil || err != nil {
			d.log.Warn("webhooks: undecodable case event skipped", "stream_seq", meta.Sequence.Stream)
			continue
		}
		evs = append(evs, event{msg: m, ev: &ce, id: id, meta: meta})
		if meta.NumDelivered > 1 || meta.Sequence.Stream <= logged {
			ids = append(ids, id)
		}
	}
	have, err := delivered(ctx, d.pool, s.ID, ids)
	if err != nil {
		return err
	}
	// Post only while holding the lock: a dispatcher whose lock session
	// died must not deliver beside the replica that took the lock over.
	if err := d.holding(ctx); err != nil {
		return err
	}
	// Deal the events to lanes by case, keeping stream order within each
	// lane, and let the lanes post concurrently. The batch is recorded and
	// acknowledged only when every lane is through, so a later batch never
	// overtakes an event of this one.
	// A subscriber taking batches needs no more lanes than POSTs.
	per := max(s.MaxBatch, 1)
	lanes := make([][]event, min(d.cfg.Lanes, max((len(evs)+per-1)/per, 1)))
	for _, e := range evs {
		if have[e.id] {
			continue
		}
		i := laneOf(e.ev.GetCaseId(), len(lanes))
		lanes[i] = append(lanes[i], e)
	}
	var (
		mu   sync.Mutex
		done []Delivery
		errs []error
		wg   sync.WaitGroup
	)
	for _, lane := range lanes {
		if len(lane) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for len(lane) > 0 {
				chunk := lane[:min(len(lane), max(s.MaxBatch, 1))]
				lane = lane[len(chunk):]
				n, err := d.deliver(ctx, s, chunk)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
					mu.Unlock()
					return // the rest of this lane waits for the batch again
				}
				for _, e := range chunk {
					done = append(done, Delivery{EventID: e.id, CaseID: e.ev.GetCaseId(), EventType: e.ev.GetEventType(),
						StreamSeq: e.meta.Sequence.Stream, PublishedAt: e.meta.Timestamp, Attempts: n})
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		// Record what got through before giving up the batch.
		return errors.Join(errors.Join(errs...), record(context.WithoutCancel(ctx), d.pool, s.ID, done))
	}
	return record(ctx, d.pool, s.ID, done)
}

// laneOf is the lane of a case: the same case always the same lane.
func laneOf(caseID string, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(caseID))
	return int(h.Sum32() % uint32(n))
}

// deliver POSTs one event (or, to a subscriber taking batches, a
// CaseEventBatch of evs) until the receiver answers 2xx and returns the
// number of attempts. Only ctx ends it early.
func (d *Dispatcher) deliver(ctx context.Context, s Subscriber, evs []event) (int, error) {
	body, schema, err := encode(s, evs)
	if err != nil {
		return 0, err
	}
	ctype := "application/protobuf"
	if s.JSON {
		ctype = "application/json"
	}
	backoff := d.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		err := d.post(ctx, s, evs, body, ctype, schema)
		if err == nil {
			return attempt, nil
		}
		if ctx.Err() != nil {
			return attempt, ctx.Err()
		}
		wait := backoff + rand.N(backoff/4+1)
		d.log.Debug("webhooks: delivery failed", "subscriber", s.ID, "event", evs[0].id, "events", len(evs), "attempt", attempt, "err", err, "retry_in", wait)
		for _, e := range evs {
			_ = e.msg.InProgress()
		}
		if !sleep(ctx, wait) {
			return attempt, ctx.Err()
		}
		backoff = min(2*backoff, d.cfg.MaxBackoff)
	}
}

// encode is the body of a POST and the schema it follows: the relayed
// bytes of one CaseEvent, or a CaseEventBatch for a subscriber taking
// batches; protojson when the subscriber asked for JSON.
func encode(s Subscriber, evs []event) ([]byte, string, error) {
	if s.MaxBatch <= 1 {
		if !s.JSON {
			return evs[0].msg.Data(), caseEventSchema, nil
		}
		b, err := protojson.Marshal(evs[0].ev)
		return b, caseEventSchema, err
	}
	batch := &eventsv1.CaseEventBatch{Events: make([]*eventsv1.CaseEvent, len(evs))}
	for i, e := range evs {
		batch.Events[i] = e.ev
	}
	var b []byte
	var err error
	if s.JSON {
		b, err = protojson.Marshal(batch)
	} else {
		b, err = proto.Marshal(batch)
	}
	return b, caseEventBatchSchema, err
}

func (d *Dispatcher) post(ctx context.Context, s Subscriber, evs []event, body []byte, ctype, schema string) error {
	rctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set(SchemaHeader, schema)
	if schema == caseEventSchema {
		req.Header.Set(EventIDHeader, evs[0].id.String())
		req.Header.Set(EventTypeHeader, evs[0].ev.GetEventType())
	} else {
		req.Header.Set(EventCountHeader, strconv.Itoa(len(evs)))
	}
	req.Header.Set(SignatureHeader, Sign([]byte(s.Secret), time.Now(), body))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
