package cases

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/database"
	"ecogrid/internal/messaging"
	"ecogrid/internal/outbox"
	"ecogrid/internal/structerr"
)

func TestViolationBecomesCaseEndToEnd(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	observed := histogramCount(violationToCase)
	s.startRelay("gridd-1")
	s.startConsumer(ConsumerConfig{})
	ev := violation(testVillage)
	s.file(ev)
	s.waitCases(1, 20*time.Second)
	s.assertExactlyOnce(1)
	if histogramCount(violationToCase) == observed {
		t.Error("violation-to-case latency not observed")
	}

	ctx := context.Background()
	list, _, err := s.tracker.List(ctx, supervisor, Filter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("supervisor sees %d cases (%v)", len(list), err)
	}
	c := list[0]
	if c.ReportID != ev.ReportId || c.State != StateReported || c.NodeCode != testVillage || !c.HasLocation ||
		c.Latitude != ev.Latitude || len(c.Responsible) != 2 || c.Severity != "SEVERITY_NORMAL" {
		t.Fatalf("case %+v does not reflect the violation", c)
	}
	if list, _, _ := s.tracker.List(ctx, otherSupervisor, Filter{}); len(list) != 0 {
		t.Fatalf("neighbouring township sees %d cases", len(list))
	}
	var actor *string
	var role string
	if err := s.pool.QueryRow(ctx, `SELECT actor_id::text, actor_role FROM ledger.records WHERE action = 'case.opened' AND subject_id = $1`, c.ID).
		Scan(&actor, &role); err != nil || actor != nil || role != "system" {
		t.Fatalf("ledger record of the opening: actor %v role %q (%v)", actor, role, err)
	}
	// The CaseEvent is relayed to the CASES stream.
	deadline := time.Now().Add(10 * time.Second)
	for s.streamMsgs(messaging.StreamCases) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("case event never reached the CASES stream")
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, _ := s.js.Stream(ctx, messaging.StreamCases)
	m, err := st.GetLastMsgForSubject(ctx, messaging.CaseSubject(testCounty, "opened"))
	if err != nil {
		t.Fatal(err)
	}
	var ce eventsv1.CaseEvent
	if err := proto.Unmarshal(m.Data, &ce); err != nil || ce.CaseId != c.ID || ce.ToState != "reported" || ce.ReportId != ev.ReportId {
		t.Fatalf("case event %v (%v)", &ce, err)
	}
}

func TestNATSStoppedUnderLoadLosesNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.startRelay("gridd-1")
	s.startRelay("gridd-2")
	s.startConsumer(ConsumerConfig{})

	const total = 300
	var wg sync.WaitGroup
	wg.Go(func() {
		for range total {
			s.file(violation(testVillage)) // reports keep being accepted throughout
			time.Sleep(5 * time.Millisecond)
		}
	})
	time.Sleep(300 * time.Millisecond)
	s.nats.Shutdown()
	time.Sleep(time.Second)
	if b := s.count(`SELECT count(*) FROM outbox.events WHERE sent_at IS NULL`); b == 0 {
		t.Error("no backlog while NATS was down: the test did not exercise the outage")
	}
	s.nats.Restart(t)
	wg.Wait()
	s.waitCases(total, 60*time.Second)
	s.assertExactlyOnce(total)
}

func TestRelayKilledAfterPublishBeforeMarkingSent(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	var evs []*eventsv1.ViolationReported
	for range 5 {
		ev := violation(testVillage)
		evs = append(evs, ev)
		s.file(ev)
	}
	// A relay published the first three and died before marking them sent.
	for _, ev := range evs[:3] {
		var payload []byte
		if err := s.pool.QueryRow(ctx, `SELECT payload FROM outbox.events WHERE event_id = $1`, ev.EventId).Scan(&payload); err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(messaging.ViolationSubject(testCounty))
		m.Data = payload
		m.Header.Set(jetstream.MsgIDHeader, ev.EventId)
		if _, err := s.js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	s.startConsumer(ConsumerConfig{})
	s.waitCases(3, 20*time.Second)
	s.startRelay("successor") // republishes all five
	s.waitCases(5, 20*time.Second)
	time.Sleep(300 * time.Millisecond)
	s.assertExactlyOnce(5)
	if got := s.count(`SELECT count(*) FROM outbox.events WHERE event_type = 'ViolationReported' AND sent_at IS NULL`); got != 0 {
		t.Fatalf("%d violation rows still pending", got)
	}
}

func TestCasedKilledBeforeAcking(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	s.startRelay("gridd-1")
	const total = 20
	fileN(s, total)

	// A first cased takes every message, commits the cases of half of them
	// and dies before acknowledging any.
	cfg := ConsumerConfig{AckWait: time.Second}
	cfg.setDefaults()
	cons, err := s.js.CreateOrUpdateConsumer(ctx, messaging.StreamViolations, jetstream.ConsumerConfig{
		Durable: cfg.Durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver,
		MaxAckPending: 4 * 1024, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < total {
		batch, err := cons.Fetch(total-got, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			if got%2 == 0 {
				var ev eventsv1.ViolationReported
				if err := proto.Unmarshal(m.Data(), &ev); err != nil {
					t.Fatal(err)
				}
				if _, err := s.tracker.OpenFromViolation(ctx, &ev, Source{Subject: m.Subject(), Kind: "jetstream"}); err != nil {
					t.Fatal(err)
				}
			}
			got++
		}
	}
	if n := s.count(`SELECT count(*) FROM cases.cases`); n != total/2 {
		t.Fatalf("%d cases before the crash, want %d", n, total/2)
	}
	before := counterValue(casesOpened.WithLabelValues("jetstream", "duplicate"))

	// Its successor gets them all again after the ack wait.
	s.startConsumer(cfg)
	s.waitCases(total, 30*time.Second)
	s.waitConsumerIdle(cfg.Durable, 30*time.Second)
	s.assertExactlyOnce(total)
	if d := counterValue(casesOpened.WithLabelValues("jetstream", "duplicate")) - before; d < total/2 {
		t.Errorf("%v redeliveries recognised as duplicates, want at least %d", d, total/2)
	}
}

func TestSameEventPublishedTwiceAfterDuplicateWindow(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	// A short duplicate window, so JetStream itself lets the second copy through.
	if err := messaging.EnsureStreams(ctx, s.js, messaging.StreamConfig{Replicas: 1, DuplicateWindow: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	s.startConsumer(ConsumerConfig{})
	var evs []*eventsv1.ViolationReported
	for range 3 {
		ev := violation(testVillage)
		evs = append(evs, ev)
		s.file(ev)
	}
	publish := func() {
		for _, ev := range evs {
			data, _ := proto.Marshal(ev)
			m := nats.NewMsg(messaging.ViolationSubject(testCounty))
			m.Data = data
			m.Header.Set(jetstream.MsgIDHeader, ev.EventId)
			if _, err := s.js.PublishMsg(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish()
	time.Sleep(1500 * time.Millisecond) // well past the window, whatever the load
	publish()
	// The same report under a new event id (a producer replaying its outbox
	// with fresh ids, or a forger copying a real event) is no violation field
	// recorded: it is parked and opens nothing.
	again := proto.Clone(evs[0]).(*eventsv1.ViolationReported)
	again.EventId = uuid.NewString()
	data, _ := proto.Marshal(again)
	if _, err := s.js.Publish(ctx, messaging.ViolationSubject(testCounty), data, jetstream.WithMsgID(again.EventId)); err != nil {
		t.Fatal(err)
	}
	if n := s.streamMsgs(messaging.StreamViolations); n != 7 {
		t.Fatalf("stream holds %d messages, want 7 (window did not expire?)", n)
	}
	s.waitCases(3, 20*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for s.streamMsgs(messaging.StreamDeadLetter) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the copy under a new event id was not parked")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.waitConsumerIdle("cased-violations", 10*time.Second)
	if n := s.count(`SELECT count(*) FROM cases.cases`); n != 3 {
		t.Fatalf("%d cases for 3 violations", n)
	}
	if n := s.count(`SELECT count(*) FROM ledger.records WHERE action = 'case.opened'`); n != 3 {
		t.Fatalf("%d opening records for 3 violations", n)
	}
	if n := s.count(`SELECT count(*) FROM cases.inbox WHERE event_id = $1`, again.EventId); n != 0 {
		t.Fatal("an event field never recorded reached the inbox")
	}
}

func TestPoisonMessageIsParkedAndTheRestFlow(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	before := counterValue(poisonMessages)
	s.startConsumer(ConsumerConfig{})
	if _, err := s.js.Publish(ctx, messaging.ViolationSubject(testCounty), []byte("\xff\xffnot protobuf")); err != nil {
		t.Fatal(err)
	}
	bad := violation(testVillage)
	bad.TownshipCode = "999999999"
	data, _ := proto.Marshal(bad)
	if _, err := s.js.Publish(ctx, messaging.ViolationSubject(testCounty), data); err != nil {
		t.Fatal(err)
	}
	s.startRelay("gridd-1")
	s.file(violation(testVillage))
	s.waitCases(1, 20*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for s.streamMsgs(messaging.StreamDeadLetter) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("dead-letter stream holds %d messages, want 2", s.streamMsgs(messaging.StreamDeadLetter))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := counterValue(poisonMessages) - before; d < 2 {
		t.Fatalf("poison counter rose by %v, want 2", d)
	}
	st, _ := s.js.Stream(ctx, messaging.StreamDeadLetter)
	m, err := st.GetLastMsgForSubject(ctx, messaging.DeadLetterSubject(messaging.StreamViolations))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Ecogrid-Dead-Letter-Reason") == "" || m.Header.Get("Ecogrid-Original-Subject") != messaging.ViolationSubject(testCounty) {
		t.Fatalf("dead letter headers %v", m.Header)
	}
}

func TestReconcilerOpensCasesNATSNeverDelivered(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	fileN(s, 4) // never relayed: NATS lost them, or the relay is stuck
	bad := violation(testVillage)
	bad.CountyCode, bad.TownshipCode, bad.VillageCode = "13012", "130123101", "" // unusable
	if err := database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		return outbox.Enqueue(ctx, tx, "130123", messaging.ViolationSubject("130123"), outbox.EventViolationReported, uuid.MustParse(bad.EventId), bad)
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.tracker.Reconcile(ctx, ReconcileConfig{Grace: time.Hour}); err != nil || n != 0 {
		t.Fatalf("reconciled %d (%v) inside the grace period", n, err)
	}
	s.tracker.now = func() time.Time { return time.Now().Add(3 * time.Minute) }
	if n, err := s.tracker.Reconcile(ctx, ReconcileConfig{}); err != nil || n != 4 {
		t.Fatalf("reconciled %d (%v), want 4", n, err)
	}
	if n, err := s.tracker.Reconcile(ctx, ReconcileConfig{}); err != nil || n != 0 {
		t.Fatalf("second reconciliation opened %d (%v)", n, err)
	}
	if n := s.count(`SELECT count(*) FROM cases.inbox WHERE source = 'unusable' AND event_id = $1`, bad.EventId); n != 1 {
		t.Fatal("unusable violation not set aside")
	}
	// When the messages finally arrive they change nothing.
	s.startConsumer(ConsumerConfig{})
	s.startRelay("late")
	deadline := time.Now().Add(10 * time.Second)
	for s.count(`SELECT count(*) FROM outbox.events WHERE sent_at IS NULL AND event_type = 'ViolationReported'`) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("relay did not drain")
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.waitConsumerIdle("cased-violations", 20*time.Second)
	if n := s.count(`SELECT count(*) FROM cases.cases`); n != 4 {
		t.Fatalf("%d cases for 4 usable violations", n)
	}
	if n := s.count(`SELECT count(*) FROM ledger.records WHERE action = 'case.opened'`); n != 4 {
		t.Fatalf("%d opening records for 4 usable violations", n)
	}
	if n := s.count(`SELECT count(*) FROM cases.inbox WHERE source = 'reconciler'`); n != 4 {
		t.Fatalf("%d inbox rows from the reconciler", n)
	}
}

func TestConsumerComesBackAfterBeingDeleted(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	s.startRelay("gridd-1")
	s.startConsumer(ConsumerConfig{})
	s.file(violation(testVillage))
	s.waitCases(1, 20*time.Second)
	if err := s.js.DeleteConsumer(ctx, messaging.StreamViolations, "cased-violations"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	s.file(violation(testVillage))
	s.waitCases(2, 30*time.Second)
	s.assertExactlyOnce(2)
}

func TestTransientFailuresAreNotPoison(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{structerr.NewUnavailable("database restarting"), true},
		{structerr.NewAborted("concurrent change"), true},
		{context.DeadlineExceeded, true},
		{structerr.NewInvalidArgument("bad"), false},
		{structerr.NewInternal("bug"), false},
	} {
		if got := transient(c.err); got != c.want {
			t.Errorf("transient(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
