package webhooks_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/messaging"
	"ecogrid/internal/messaging/natstest"
	"ecogrid/internal/outbox"
	"ecogrid/internal/webhooks"
)

const county = "130123"

var eventTypes = []string{"opened", "accepted", "dispatched", "resolved", "verified", "closed"}

// publishCases enqueues perCase events for each of cases cases,
// interleaved, through the outbox, and relays them to JetStream. Each
// event's note is its index within its case.
func publishCases(t testing.TB, pool *pgxpool.Pool, r *outbox.Relay, cases []string, perCase int) {
	t.Helper()
	ctx := context.Background()
	err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
		for i := range perCase {
			for _, c := range cases {
				id := uuid.New()
				typ := eventTypes[i%len(eventTypes)]
				ev := &eventsv1.CaseEvent{EventId: id.String(), CaseId: c, CountyCode: county, EventType: typ, Note: strconv.Itoa(i)}
				if err := outbox.Enqueue(ctx, tx, county, messaging.CaseSubject(county, typ), outbox.EventCase, id, ev); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		n, err := r.RelayOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// receiver is a department system: it fails its first requests, then
// times out on some, then fails every fifth; it verifies every signature
// and keeps what it accepted, in order.
type receiver struct {
	secret []byte
	json   bool
	// batch: bodies are CaseEventBatch (a subscriber with MaxBatch > 1).
	batch bool

	mu       sync.Mutex
	requests int
	bad      int
	repeats  int
	accepted []*eventsv1.CaseEvent
	seen     map[string]int
	last     struct {
		header string
		body   []byte
	}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.requests++
	n := rc.requests
	rc.mu.Unlock()
	switch {
	case n <= 3:
		http.Error(w, "starting up", http.StatusInternalServerError)
		return
	case n <= 5:
		time.Sleep(800 * time.Millisecond) // beyond the dispatcher's timeout
		http.Error(w, "too slow", http.StatusServiceUnavailable)
		return
	case n%5 == 0:
		http.Error(w, "flaky", http.StatusBadGateway)
		return
	}
	header := r.Header.Get(webhooks.SignatureHeader)
	if err := webhooks.Verify(rc.secret, header, body, time.Now(), 5*time.Minute); err != nil {
		rc.mu.Lock()
		rc.bad++
		rc.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var evs []*eventsv1.CaseEvent
	var err error
	if rc.batch {
		var b eventsv1.CaseEventBatch
		if rc.json {
			err = protojson.Unmarshal(body, &b)
		} else {
			err = proto.Unmarshal(body, &b)
		}
		evs = b.GetEvents()
		if err == nil && (r.Header.Get(webhooks.SchemaHeader) != "ecogrid.events.v1.CaseEventBatch" ||
			r.Header.Get(webhooks.EventCountHeader) != strconv.Itoa(len(evs))) {
			err = errors.New("batch headers do not describe the body")
		}
	} else {
		var ev eventsv1.CaseEvent
		if rc.json {
			err = protojson.Unmarshal(body, &ev)
		} else {
			err = proto.Unmarshal(body, &ev)
		}
		evs = []*eventsv1.CaseEvent{&ev}
		if err == nil && r.Header.Get(webhooks.EventIDHeader) != ev.GetEventId() {
			err = errors.New("event id header differs from the body")
		}
	}
	if err != nil {
		http.Error(w, "undecodable", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, ev := range evs {
		if rc.seen[ev.GetEventId()] > 0 {
			// Our earlier answer was lost (it came after the dispatcher's
			// timeout): drop the repeat by its id, as the README asks.
			rc.repeats++
			continue
		}
		rc.accepted = append(rc.accepted, ev)
		rc.seen[ev.GetEventId()]++
	}
	rc.last.header, rc.last.body = header, body
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.accepted)
}

func (rc *receiver) reset() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.accepted, rc.seen, rc.requests, rc.repeats = nil, map[string]int{}, 0, 0
}

// check asserts every event arrived exactly once and in order per case.
func (rc *receiver) check(t *testing.T, name string, want int) {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.accepted) != want {
		t.Errorf("%s: accepted %d events, want %d", name, len(rc.accepted), want)
	}
	for id, n := range rc.seen {
		if n != 1 {
			t.Errorf("%s: event %s accepted %d times", name, id, n)
		}
	}
	next := map[string]int{}
	for _, ev := range rc.accepted {
		i, _ := strconv.Atoi(ev.GetNote())
		if _, ok := next[ev.GetCaseId()]; ok && i != next[ev.GetCaseId()] {
			t.Errorf("%s: case %s: event %d arrived when %d was due", name, ev.GetCaseId(), i, next[ev.GetCaseId()])
		}
		next[ev.GetCaseId()] = i + 1
	}
	if rc.bad != 0 {
		t.Errorf("%s: %d deliveries with a bad signature", name, rc.bad)
	}
	t.Logf("%s: %d requests, %d repeats after a lost answer", name, rc.requests, rc.repeats)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDeliversEveryEventOnceInOrderAfterRetriesAndReplays(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	recvJSON := &receiver{secret: []byte("json-receiver-secret-0001"), json: true, seen: map[string]int{}}
	recvPB := &receiver{secret: []byte("protobuf-receiver-secret-02"), seen: map[string]int{}}
	recvBatch := &receiver{secret: []byte("batch-receiver-secret-0004"), batch: true, seen: map[string]int{}}
	hsBatch := httptest.NewServer(recvBatch)
	defer hsBatch.Close()
	if _, err := webhooks.Subscribe(ctx, pool, webhooks.Subscriber{CountyCode: county, URL: hsBatch.URL, Secret: string(recvBatch.secret), MaxBatch: 4}); err != nil {
		t.Fatal(err)
	}
	hsJSON := httptest.NewServer(recvJSON)
	defer hsJSON.Close()
	hsPB := httptest.NewServer(recvPB)
	defer hsPB.Close()

	subJSON, err := webhooks.Subscribe(ctx, pool, webhooks.Subscriber{CountyCode: county, URL: hsJSON.URL, Secret: string(recvJSON.secret), JSON: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := webhooks.Subscribe(ctx, pool, webhooks.Subscriber{CountyCode: county, URL: hsPB.URL, Secret: string(recvPB.secret)}); err != nil {
		t.Fatal(err)
	}
	// Another county's subscriber gets nothing of this one.
	other := &receiver{secret: []byte("other-county-secret-0003"), seen: map[string]int{}}
	hsOther := httptest.NewServer(other)
	defer hsOther.Close()
	if _, err := webhooks.Subscribe(ctx, pool, webhooks.Subscriber{CountyCode: "130124", URL: hsOther.URL, Secret: string(other.secret)}); err != nil {
		t.Fatal(err)
	}

	d := webhooks.NewDispatcher(pool, js, webhooks.Config{
		Timeout: 400 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		Batch: 7, SyncInterval: 50 * time.Millisecond,
	}, nil)
	go d.Run(ctx)                      //nolint:errcheck
	time.Sleep(200 * time.Millisecond) // consumers start at the subscription time

	relay := outbox.NewRelay(pool, js, outbox.RelayConfig{Name: "t", BatchSize: 11}, nil)
	cases := []string{"case-a", "case-b", "case-c", "case-d", "case-e"}
	const perCase = 12
	total := len(cases) * perCase
	publishCases(t, pool, relay, cases, perCase)

	waitFor(t, "every delivery", func() bool {
		return recvJSON.count() >= total && recvPB.count() >= total && recvBatch.count() >= total
	})
	time.Sleep(200 * time.Millisecond) // nothing more may arrive
	recvJSON.check(t, "json", total)
	recvPB.check(t, "protobuf", total)
	recvBatch.check(t, "batches of 4", total)
	if other.count() != 0 {
		t.Errorf("another county's subscriber got %d events", other.count())
	}

	log, err := webhooks.Deliveries(ctx, pool, subJSON.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != total {
		t.Fatalf("delivery log has %d rows, want %d", len(log), total)
	}
	retried := 0
	for _, l := range log {
		if l.Attempts > 1 {
			retried++
		}
	}
	if retried == 0 {
		t.Error("no delivery records a retry")
	}

	// A captured delivery sent again later, or altered and re-signed with
	// another key, is refused by the receiver's Verify.
	recvJSON.mu.Lock()
	header, body := recvJSON.last.header, bytes.Clone(recvJSON.last.body)
	recvJSON.mu.Unlock()
	if err := webhooks.Verify(recvJSON.secret, header, body, time.Now().Add(10*time.Minute), 5*time.Minute); !errors.Is(err, webhooks.ErrTimestamp) {
		t.Errorf("replayed body: Verify = %v, want ErrTimestamp", err)
	}
	forged := bytes.Replace(body, []byte("case-"), []byte("fake-"), 1)
	if err := webhooks.Verify(recvJSON.secret, webhooks.Sign([]byte("attacker-secret-000000"), time.Now(), forged), forged, time.Now(), 5*time.Minute); !errors.Is(err, webhooks.ErrSignature) {
		t.Errorf("re-signed body: Verify = %v, want ErrSignature", err)
	}
	if err := webhooks.Verify(recvJSON.secret, header, forged, time.Now(), 5*time.Minute); !errors.Is(err, webhooks.ErrSignature) {
		t.Errorf("altered body: Verify = %v, want ErrSignature", err)
	}

	// Replay from the middle: the JSON subscriber gets exactly the events
	// published from then on again, once each and in order; the other
	// subscriber gets nothing more.
	since := log[len(log)/2].PublishedAt
	want := 0
	for _, l := range log {
		if !l.PublishedAt.Before(since) {
			want++
		}
	}
	recvJSON.reset()
	pbBefore := recvPB.count()
	if err := d.Replay(ctx, subJSON.ID, since); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay", func() bool { return recvJSON.count() >= want })
	time.Sleep(200 * time.Millisecond)
	recvJSON.check(t, "json replay", want)
	if got := recvPB.count(); got != pbBefore {
		t.Errorf("protobuf subscriber got %d more events during another's replay", got-pbBefore)
	}
}
