package cases

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/messaging"
	"ecogrid/internal/structerr"
)

var (
	casesOpened = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ecogrid", Subsystem: "cases", Name: "violations_handled_total",
		Help: "Violation events handled, by source (jetstream, reconciler) and outcome (created, duplicate).",
	}, []string{"source", "outcome"})
	poisonMessages = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "ecogrid", Subsystem: "cases", Name: "poison_messages_total",
		Help: "Violation messages parked on the dead-letter subject: malformed, or failing after every redelivery.",
	})
	retriedMessages = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "ecogrid", Subsystem: "cases", Name: "violation_retries_total",
		Help: "Violation messages negatively acknowledged after a transient failure, to be redelivered.",
	})
	violationToCase = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "ecogrid", Subsystem: "cases", Name: "violation_to_case_seconds",
		Help:    "Time from gridd receiving a violation report to its case being committed by cased.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
	})
	escalations = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "ecogrid", Subsystem: "cases", Name: "overdue_escalations_total",
		Help: "Overdue cases escalated to county supervision by the sweeper.",
	})
)

// RegisterMetrics registers the case consumer's, reconciler's and sweeper's
// metrics; call it once per process.
func RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{casesOpened, poisonMessages, retriedMessages, violationToCase, escalations} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// ConsumerConfig tunes the violation consumer. Zero values take defaults.
type ConsumerConfig struct {
	// Durable is the consumer name shared by every cased replica (default "cased-violations").
	Durable string
	// MaxDeliver bounds redeliveries of a failing message before it is
	// parked on the dead-letter subject (default 8).
	MaxDeliver int
	// AckWait is how long JetStream waits for an ack before redelivering (default 30s).
	AckWait time.Duration
	// RetryDelay is the first redelivery delay after a transient failure,
	// doubling per attempt up to 30s (default 500ms).
	RetryDelay time.Duration
	// Workers is how many case transactions run at once, each for a
	// different county (default 4).
	Workers int
	// BatchSize is the most violations of one county a worker turns into
	// cases in one transaction (default 256; 1 disables batching). A
	// transaction costs three round trips whatever its size; at a steady
	// rate batches stay small (what arrived during the previous one), from
	// a backlog they fill.
	BatchSize int
	// PerCounty is how many of the workers' transactions may be for one
	// county at once (default 3): the others read and write their cases
	// while one holds the county's ledger chain through its commit, and
	// then take the chain in turn.
	PerCounty int
}

func (c *ConsumerConfig) setDefaults() {
	if c.Durable == "" {
		c.Durable = "cased-violations"
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 8
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = 500 * time.Millisecond
	}
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.PerCounty <= 0 {
		c.PerCounty = 3
	}
}

// Consumer is the durable pull consumer on the VIOLATIONS stream that
// opens a case per violation and acknowledges only after the case's
// transaction has committed.
type Consumer struct {
	js      jetstream.JetStream
	tracker *Tracker
	cfg     ConsumerConfig
	log     *slog.Logger
}

// NewConsumer returns a consumer feeding tracker from js.
func NewConsumer(js jetstream.JetStream, tracker *Tracker, cfg ConsumerConfig, log *slog.Logger) *Consumer {
	cfg.setDefaults()
	if log == nil {
		log = slog.Default()
	}
	return &Consumer{js: js, tracker: tracker, cfg: cfg, log: log.With("consumer", cfg.Durable)}
}

// Durable is the consumer's name on the VIOLATIONS stream.
func (c *Consumer) Durable() string { return c.cfg.Durable }

// Run consumes until ctx ends. It waits for NATS if it is down at start;
// once consuming, the client library rides out disconnects, and if the
// durable consumer or its stream disappears (an operator recreated them)
// it is created again.
func (c *Consumer) Run(ctx context.Context) error {
	work := make(chan jetstream.Msg, c.pullSize())
	dispatched := make(chan struct{})
	go func() {
		defer close(dispatched)
		c.dispatch(ctx, work)
	}()
	defer func() {
		close(work)
		<-dispatched
	}()
	wait := 200 * time.Millisecond
	for ctx.Err() == nil {
		lost, err := c.consume(ctx, work)
		if err == nil && !lost {
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("violation consumer not ready", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
	return nil
}

// dispatch hands messages to workers as batches, at most PerCounty at a
// time per county: the county's ledger chain serialises its cases anyway,
// so while a county's transactions run, its next messages gather into the
// next batch (group commit), and different counties run in parallel on up
// to Workers transactions. When in closes, queued messages are left
// unacknowledged for redelivery and dispatch returns once in-flight
// batches are done.
func (c *Consumer) dispatch(ctx context.Context, in <-chan jetstream.Msg) {
	queues := map[string][]jetstream.Msg{}
	busy := map[string]int{}
	finished := make(chan string)
	slots := make(chan struct{}, c.cfg.Workers)
	inflight := 0
	launch := func(county string) {
		q := queues[county]
		n := min(len(q), c.cfg.BatchSize)
		batch := q[:n:n]
		if n == len(q) {
			delete(queues, county)
		} else {
			queues[county] = q[n:]
		}
		busy[county]++
		inflight++
		go func() {
			slots <- struct{}{}
			c.handleBatch(ctx, batch)
			<-slots
			finished <- county
		}()
	}
	for in != nil || inflight > 0 {
		select {
		case m, ok := <-in:
			if !ok {
				in = nil
				continue
			}
			county := subjectCounty(m.Subject())
			queues[county] = append(queues[county], m)
			if busy[county] < c.cfg.PerCounty {
				launch(county)
			}
		case county := <-finished:
			inflight--
			if busy[county]--; busy[county] == 0 {
				delete(busy, county)
			}
			if in != nil && len(queues[county]) > 0 && busy[county] < c.cfg.PerCounty {
				launch(county)
			}
		}
	}
}

// subjectCounty is the county token of a violation subject.
func subjectCounty(subject string) string {
	if s, err := messaging.ParseSubject(subject); err == nil {
		return s.County
	}
	return subject
}

// consume creates the durable consumer and feeds work until ctx ends
// (false, nil) or the consumer is gone (true, nil).
func (c *Consumer) consume(ctx context.Context, work chan<- jetstream.Msg) (lost bool, err error) {
	cons, err := c.js.CreateOrUpdateConsumer(ctx, messaging.StreamViolations, jetstream.ConsumerConfig{
		Durable:       c.cfg.Durable,
		Description:   "cased: one case per violation",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		MaxDeliver:    c.cfg.MaxDeliver,
		MaxAckPending: 4 * 1024,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return false, err
	}
	gone := make(chan struct{})
	var once sync.Once
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case work <- m:
		case <-ctx.Done():
		}
	}, jetstream.PullMaxMessages(c.pullSize()), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
			once.Do(func() { close(gone) })
			return
		}
		c.log.Debug("violation consume", "err", err)
	}))
	if err != nil {
		return false, fmt.Errorf("consuming violations: %w", err)
	}
	select {
	case <-ctx.Done():
		cc.Drain()
		<-cc.Closed()
		return false, nil
	case <-gone:
		cc.Stop()
		return true, errors.New("the durable consumer was deleted")
	}
}

// pullSize is how many messages are fetched ahead and buffered: enough for
// a full batch of every worker.
func (c *Consumer) pullSize() int { return min(c.cfg.Workers*c.cfg.BatchSize, 2048) }

// transient reports whether a failure may go away by itself (PostgreSQL
// restarting or overloaded, a concurrent change): such messages are
// redelivered but never dead-lettered, and if a long outage exhausts their
// deliveries the reconciler opens their cases from the outbox afterwards.
func transient(err error) bool {
	switch structerr.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.Canceled:
		return true
	}
	return false
}

// handleBatch opens the cases of the messages at hand, one transaction per
// county, and acknowledges them after commit. Poison is parked first; if a
// county's transaction fails, its messages are retried one by one so that
// one bad message cannot hold back the others.
func (c *Consumer) handleBatch(ctx context.Context, batch []jetstream.Msg) {
	if len(batch) == 1 {
		c.handle(ctx, batch[0])
		return
	}
	type item struct {
		m    jetstream.Msg
		meta *jetstream.MsgMetadata
		ev   *eventsv1.ViolationReported
		src  Source
	}
	byCounty := map[string][]item{}
	var order []string
	for _, m := range batch {
		meta, err := m.Metadata()
		if err != nil {
			c.handle(ctx, m)
			continue
		}
		ev := &eventsv1.ViolationReported{}
		if err := proto.Unmarshal(m.Data(), ev); err != nil {
			c.deadLetter(ctx, m, meta, fmt.Sprintf("not a ViolationReported: %v", err))
			continue
		}
		if ev.EventId == "" {
			ev.EventId = m.Headers().Get(jetstream.MsgIDHeader)
		}
		if _, err := caseFromViolation(ev, time.Now()); err != nil {
			c.handle(ctx, m) // parks it with the reason
			continue
		}
		if _, ok := byCounty[ev.CountyCode]; !ok {
			order = append(order, ev.CountyCode)
		}
		byCounty[ev.CountyCode] = append(byCounty[ev.CountyCode], item{m: m, meta: meta, ev: ev,
			src: Source{Subject: m.Subject(), Kind: "jetstream", StreamSeq: meta.Sequence.Stream}})
	}
	for _, county := range order {
		items := byCounty[county]
		evs := make([]*eventsv1.ViolationReported, len(items))
		srcs := make([]Source, len(items))
		for i, it := range items {
			evs[i], srcs[i] = it.ev, it.src
		}
		opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		outs, poison, err := c.tracker.OpenBatch(opCtx, evs, srcs)
		cancel()
		if err != nil {
			c.log.Warn("violation batch failed; handling one by one", "err", err, "county_code", county, "messages", len(items))
			for _, it := range items {
				c.handle(ctx, it.m)
			}
			continue
		}
		// Acknowledged only now that the transaction has committed; a
		// violation left out as not authentic is parked with its reason.
		for i, it := range items {
			var pe *PoisonError
			if errors.As(poison[i], &pe) {
				c.deadLetter(ctx, it.m, it.meta, pe.Reason)
				continue
			}
			observeOpened(it.ev, outs[i])
			if err := it.m.Ack(); err != nil {
				c.log.Warn("violation ack failed", "err", err, "event_id", it.ev.EventId)
			}
		}
	}
}

// handle opens the case of one message and acknowledges it after commit;
// transient failures are redelivered with a growing delay, poison and
// exhausted messages are parked on the dead-letter subject.
func (c *Consumer) handle(ctx context.Context, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		c.log.Error("violation message without metadata", "err", err, "subject", m.Subject())
		m.Term() //nolint:errcheck
		return
	}
	var ev eventsv1.ViolationReported
	if err := proto.Unmarshal(m.Data(), &ev); err != nil {
		c.deadLetter(ctx, m, meta, fmt.Sprintf("not a ViolationReported: %v", err))
		return
	}
	if ev.EventId == "" {
		ev.EventId = m.Headers().Get(jetstream.MsgIDHeader)
	}
	// Finish the case transaction even while shutting down: an interrupted
	// one is redelivered anyway, a finished one needs no redelivery.
	opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	out, err := c.tracker.OpenFromViolation(opCtx, &ev, Source{Subject: m.Subject(), Kind: "jetstream", StreamSeq: meta.Sequence.Stream})
	var poison *PoisonError
	switch {
	case errors.As(err, &poison):
		c.deadLetter(ctx, m, meta, poison.Reason)
		return
	case err != nil && !transient(err) && int(meta.NumDelivered) >= c.cfg.MaxDeliver:
		c.log.Error("violation failed on every delivery", "err", err, "event_id", ev.EventId, "deliveries", meta.NumDelivered)
		c.deadLetter(ctx, m, meta, "failed on every delivery: "+err.Error())
		return
	case err != nil:
		retriedMessages.Inc()
		if int(meta.NumDelivered) >= c.cfg.MaxDeliver {
			c.log.Error("violation deliveries exhausted during an outage; the reconciler will open its case",
				"err", err, "event_id", ev.EventId)
		}
		delay := c.cfg.RetryDelay << min(meta.NumDelivered-1, 6)
		c.log.Warn("violation not handled, will be redelivered", "err", err, "event_id", ev.EventId,
			"deliveries", meta.NumDelivered, "retry_in", min(delay, 30*time.Second))
		m.NakWithDelay(min(delay, 30*time.Second)) //nolint:errcheck
		return
	}
	observeOpened(&ev, out)
	if err := m.Ack(); err != nil {
		// The case is committed; a redelivery will find it in the inbox.
		c.log.Warn("violation ack failed", "err", err, "event_id", ev.EventId)
	}
}

func observeOpened(ev *eventsv1.ViolationReported, out Opened) {
	if !out.Created {
		casesOpened.WithLabelValues("jetstream", "duplicate").Inc()
		return
	}
	casesOpened.WithLabelValues("jetstream", "created").Inc()
	if ev.GetReceivedAt() != nil {
		violationToCase.Observe(time.Since(ev.GetReceivedAt().AsTime()).Seconds())
	}
}

// deadLetter copies m to the dead-letter subject with why it was parked,
// then terminates it so it is not redelivered.
func (c *Consumer) deadLetter(ctx context.Context, m jetstream.Msg, meta *jetstream.MsgMetadata, reason string) {
	poisonMessages.Inc()
	c.log.Error("violation parked on dead-letter subject", "reason", reason, "subject", m.Subject(),
		"stream_seq", meta.Sequence.Stream)
	dl := nats.NewMsg(messaging.DeadLetterSubject(messaging.StreamViolations))
	dl.Data = m.Data()
	// Keep the producer's own headers, not JetStream's (Nats-Batch-* would
	// make the copy part of an atomic batch).
	for k, v := range m.Headers() {
		if !strings.HasPrefix(k, "Nats-") {
			dl.Header[k] = v
		}
	}
	dl.Header.Set("Ecogrid-Original-Msg-Id", m.Headers().Get(jetstream.MsgIDHeader))
	seq := strconv.FormatUint(meta.Sequence.Stream, 10)
	dl.Header.Set(jetstream.MsgIDHeader, "dlq-"+messaging.StreamViolations+"-"+seq)
	dl.Header.Set("Ecogrid-Original-Subject", m.Subject())
	dl.Header.Set("Ecogrid-Original-Stream-Seq", seq)
	dl.Header.Set("Ecogrid-Dead-Letter-Reason", reason)
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := c.js.PublishMsg(pctx, dl); err != nil {
		c.log.Error("dead-letter publish failed; message left for redelivery", "err", err, "stream_seq", seq)
		m.NakWithDelay(5 * time.Second) //nolint:errcheck
		return
	}
	m.Term() //nolint:errcheck
}
