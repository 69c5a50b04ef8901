package outbox_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/messaging"
	"ecogrid/internal/messaging/natstest"
	"ecogrid/internal/outbox"
)

func enqueue(t testing.TB, pool *pgxpool.Pool, county string, n int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	err := database.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		for i := range ids {
			ids[i] = uuid.New()
			msg := &eventsv1.ViolationReported{EventId: ids[i].String(), CountyCode: county, Description: fmt.Sprint(i)}
			if err := outbox.Enqueue(context.Background(), tx, county, messaging.ViolationSubject(county),
				outbox.EventViolationReported, ids[i], msg); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// countPublishes counts every publish on the violation subjects, duplicates
// included (a core subscription sees what JetStream deduplicates).
func countPublishes(t testing.TB, nc *nats.Conn) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	sub, err := nc.Subscribe("ecogrid.v1.violations.>", func(*nats.Msg) { n.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() }) //nolint:errcheck
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &n
}

func streamMsgs(t testing.TB, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), messaging.StreamViolations)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func backlog(t testing.TB, pool *pgxpool.Pool) int64 {
	t.Helper()
	b, err := outbox.ReadBacklog(context.Background(), pool)
	if err != nil {
		t.Fatal(err)
	}
	return b.Pending
}

func TestRelayPublishesInOrderPerCountyAndMarksSent(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()

	a := enqueue(t, pool, "130123", 40)
	b := enqueue(t, pool, "130124", 30)
	a = append(a, enqueue(t, pool, "130123", 20)...)

	r := outbox.NewRelay(pool, js, outbox.RelayConfig{Name: "t", BatchSize: 7}, nil)
	for {
		n, err := r.RelayOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if got := backlog(t, pool); got != 0 {
		t.Fatalf("backlog %d after relaying, want 0", got)
	}
	for county, want := range map[string][]uuid.UUID{"130123": a, "130124": b} {
		cons, err := js.OrderedConsumer(ctx, messaging.StreamViolations, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{messaging.ViolationSubject(county)}})
		if err != nil {
			t.Fatal(err)
		}
		for i, id := range want {
			m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
			if err != nil {
				t.Fatalf("county %s message %d: %v", county, i, err)
			}
			if got := m.Headers().Get(jetstream.MsgIDHeader); got != id.String() {
				t.Fatalf("county %s message %d has id %s, want %s (out of order)", county, i, got, id)
			}
			var ev eventsv1.ViolationReported
			if err := proto.Unmarshal(m.Data(), &ev); err != nil || ev.EventId != id.String() {
				t.Fatalf("county %s message %d payload %v (%v)", county, i, &ev, err)
			}
		}
	}
	if got := streamMsgs(t, js); got != 90 {
		t.Fatalf("stream holds %d messages, want 90", got)
	}
	// The backlog went as atomic batches (one sync per batch).
	st, err := js.Stream(ctx, messaging.StreamViolations)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Nats-Batch-Id") == "" {
		t.Fatalf("first message was not sent in an atomic batch: headers %v", m.Header)
	}
}

func TestEnqueueIsIdempotentAndRollsBackWithTheAct(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	id := uuid.New()
	msg := &eventsv1.ViolationReported{EventId: id.String()}
	for range 2 {
		if err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
			return outbox.Enqueue(ctx, tx, "130123", messaging.ViolationSubject("130123"), outbox.EventViolationReported, id, msg)
		}); err != nil {
			t.Fatal(err)
		}
	}
	rolledBack := fmt.Errorf("act failed")
	err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
		if err := outbox.Enqueue(ctx, tx, "130123", messaging.ViolationSubject("130123"), outbox.EventViolationReported, uuid.New(), msg); err != nil {
			return err
		}
		return rolledBack
	})
	if err != rolledBack {
		t.Fatalf("got %v", err)
	}
	if got := backlog(t, pool); got != 1 {
		t.Fatalf("outbox holds %d pending rows, want 1", got)
	}
	err = database.InTx(ctx, pool, func(tx pgx.Tx) error {
		return outbox.Enqueue(ctx, tx, "130123", messaging.ViolationSubject("999999"), outbox.EventViolationReported, uuid.New(), msg)
	})
	if err == nil {
		t.Fatal("enqueued an event whose subject does not carry its county")
	}
}

func TestConcurrentRelaysPublishEachRowOnce(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	srv := natstest.Start(t)
	nc, js := srv.Connect(t)
	publishes := countPublishes(t, nc)
	const perCounty = 150
	counties := []string{"130121", "130122", "130123", "130124"}
	for _, c := range counties {
		enqueue(t, pool, c, perCounty)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 3 {
		r := outbox.NewRelay(pool, js, outbox.RelayConfig{Name: fmt.Sprint("relay-", i), BatchSize: 16, PollInterval: 20 * time.Millisecond}, nil)
		wg.Go(func() { r.Run(ctx) }) //nolint:errcheck
	}
	total := int64(perCounty * len(counties))
	waitFor(t, "backlog to drain", 30*time.Second, func() bool { return backlog(t, pool) == 0 })
	cancel()
	wg.Wait()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got := publishes.Load(); got != total {
		t.Fatalf("%d publishes for %d rows: relays did double work", got, total)
	}
	if got := streamMsgs(t, js); got != uint64(total) {
		t.Fatalf("stream holds %d messages, want %d", got, total)
	}
}

func TestRelayKeepsBacklogWhileNATSDownAndDrainsAfter(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := outbox.NewRelay(pool, js, outbox.RelayConfig{Name: "t", PollInterval: 20 * time.Millisecond,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, AckTimeout: 500 * time.Millisecond}, nil)
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }() //nolint:errcheck

	enqueue(t, pool, "130123", 10)
	waitFor(t, "first rows sent", 10*time.Second, func() bool { return backlog(t, pool) == 0 })

	srv.Shutdown()
	for range 5 {
		enqueue(t, pool, "130123", 20) // reports keep being accepted
		time.Sleep(50 * time.Millisecond)
	}
	var attempts int
	var lastErr *string
	waitFor(t, "a failed attempt to be recorded", 15*time.Second, func() bool {
		if err := pool.QueryRow(ctx, `SELECT attempts, last_error FROM outbox.events WHERE sent_at IS NULL ORDER BY seq LIMIT 1`).
			Scan(&attempts, &lastErr); err != nil {
			t.Fatal(err)
		}
		return attempts > 0 && lastErr != nil
	})
	if got := backlog(t, pool); got != 100 {
		t.Fatalf("backlog %d while NATS is down, want 100", got)
	}
	b, err := outbox.ReadBacklog(ctx, pool)
	if err != nil || b.Oldest <= 0 {
		t.Fatalf("oldest pending age %v (%v)", b.Oldest, err)
	}

	srv.Restart(t)
	waitFor(t, "backlog to drain after NATS returns", 30*time.Second, func() bool { return backlog(t, pool) == 0 })
	if got := streamMsgs(t, js); got != 110 {
		t.Fatalf("stream holds %d messages, want 110", got)
	}
	cancel()
	<-done
}

func TestRelayRepublishAfterCrashIsDeduplicated(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	ids := enqueue(t, pool, "130123", 3)

	// A relay published the first row and died before marking it sent.
	var payload []byte
	if err := pool.QueryRow(ctx, `SELECT payload FROM outbox.events WHERE event_id = $1`, ids[0]).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(messaging.ViolationSubject("130123"))
	m.Data = payload
	m.Header.Set(jetstream.MsgIDHeader, ids[0].String())
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}

	r := outbox.NewRelay(pool, js, outbox.RelayConfig{Name: "successor"}, nil)
	if n, err := r.RelayOnce(ctx); err != nil || n != 3 {
		t.Fatalf("relayed %d (%v), want 3", n, err)
	}
	if got := streamMsgs(t, js); got != 3 {
		t.Fatalf("stream holds %d messages, want 3 (republish not deduplicated)", got)
	}
	if got := r.Republished(); got != 1 {
		t.Fatalf("relay counted %d republished events, want 1 (the one the dead relay had sent)", got)
	}
}

func TestPruneDeletesOnlyOldSentEvents(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	ids := enqueue(t, pool, "130123", 3)
	if _, err := pool.Exec(ctx, `UPDATE outbox.events SET sent_at = now() - interval '40 days' WHERE event_id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE outbox.events SET sent_at = now() - interval '1 day' WHERE event_id = $1`, ids[1]); err != nil {
		t.Fatal(err)
	}
	n, err := outbox.Prune(ctx, pool, 30*24*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d (%v), want 1", n, err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox.events`).Scan(&left); err != nil || left != 2 {
		t.Fatalf("%d events left (%v), want 2", left, err)
	}
}

func TestRelayedEventsDescribeThemselves(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	enqueue(t, pool, "130123", 1)
	r := outbox.NewRelay(pool, js, outbox.RelayConfig{Name: "t"}, nil)
	if _, err := r.RelayOnce(ctx); err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, messaging.StreamViolations)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetLastMsgForSubject(ctx, messaging.ViolationSubject("130123"))
	if err != nil {
		t.Fatal(err)
	}
	for h, want := range map[string]string{
		outbox.HeaderEventType:   "ViolationReported",
		outbox.HeaderSchema:      "ecogrid.events.v1.ViolationReported",
		outbox.HeaderContentType: "application/protobuf",
	} {
		if got := m.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	var ev eventsv1.ViolationReported
	if string(ev.ProtoReflect().Descriptor().FullName()) != m.Header.Get(outbox.HeaderSchema) {
		t.Errorf("schema header %q is not the message's full name", m.Header.Get(outbox.HeaderSchema))
	}
}

// A case event relayed to the stream is also published, live, as
// protojson on its JSON subject, with the same self-describing headers
// but Content-Type application/json; a violation has no JSON copy.
func TestRelayedCaseEventsHaveAJSONCopy(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	srv := natstest.Start(t)
	nc, js := srv.Connect(t)
	ctx := context.Background()
	sub, err := nc.SubscribeSync("ecogrid.v1.json.>")
	if err != nil {
		t.Fatal(err)
	}
	nc.Flush() //nolint:errcheck
	id := uuid.New()
	want := &eventsv1.CaseEvent{EventId: id.String(), CaseId: "case-1", CountyCode: "130123", EventType: "transferred", Note: "移送水利局"}
	err = database.InTx(ctx, pool, func(tx pgx.Tx) error {
		return outbox.Enqueue(ctx, tx, "130123", messaging.CaseSubject("130123", "transferred"), outbox.EventCase, id, want)
	})
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, pool, "130123", 1)
	r := outbox.NewRelay(pool, js, outbox.RelayConfig{Name: "t"}, nil)
	for {
		n, err := r.RelayOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != messaging.JSONCaseSubject("130123", "transferred") {
		t.Errorf("JSON copy on %s", m.Subject)
	}
	for h, v := range map[string]string{
		outbox.HeaderEventType:   "transferred",
		outbox.HeaderSchema:      "ecogrid.events.v1.CaseEvent",
		outbox.HeaderContentType: "application/json",
		outbox.HeaderEventID:     id.String(),
	} {
		if got := m.Header.Get(h); got != v {
			t.Errorf("header %s = %q, want %q", h, got, v)
		}
	}
	var got eventsv1.CaseEvent
	if err := protojson.Unmarshal(m.Data, &got); err != nil || !proto.Equal(&got, want) {
		t.Errorf("JSON copy %s decodes to %v (%v)", m.Data, &got, err)
	}
	if extra, err := sub.NextMsg(300 * time.Millisecond); err == nil {
		t.Errorf("a second JSON message on %s (a violation has none)", extra.Subject)
	}
}
