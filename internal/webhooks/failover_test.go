package webhooks_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/messaging/natstest"
	"ecogrid/internal/outbox"
	"ecogrid/internal/webhooks"
)

// stuckReceiver answers its first POST only when the dispatcher gives up
// on it (the replica sending it dies), and every later one at once,
// counting the POSTs of each event.
type stuckReceiver struct {
	stuck chan struct{}
	once  sync.Once
	mu    sync.Mutex
	posts map[string]int
}

func (rc *stuckReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Reading the body lets the server notice the client hanging up.
	_, _ = io.Copy(io.Discard, r.Body)
	first := false
	rc.once.Do(func() { first = true })
	if first {
		close(rc.stuck)
		<-r.Context().Done()
		return
	}
	rc.mu.Lock()
	rc.posts[r.Header.Get(webhooks.EventIDHeader)]++
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *stuckReceiver) distinct() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.posts)
}

// The replica delivering dies with events fetched and not acknowledged
// (one POST in flight, others waiting behind it). The dispatcher of the
// replica that takes the lock over must deliver them now, not when their
// AckWait (an hour) runs out on the consumer it inherits.
func TestDispatcherTakingOverDeliversWhatTheDeadOneHeld(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()

	rc := &stuckReceiver{stuck: make(chan struct{}), posts: map[string]int{}}
	hs := httptest.NewServer(rc)
	defer hs.Close()
	if _, err := webhooks.Subscribe(ctx, pool, webhooks.Subscriber{CountyCode: county, URL: hs.URL, Secret: "failover-receiver-secret-01"}); err != nil {
		t.Fatal(err)
	}
	cfg := webhooks.Config{Timeout: time.Minute, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		Batch: 5, SyncInterval: 50 * time.Millisecond, Lanes: 1}

	ctxA, stopA := context.WithCancel(ctx)
	doneA := make(chan struct{})
	go func() { webhooks.NewDispatcher(pool, js, cfg, nil).Run(ctxA); close(doneA) }() //nolint:errcheck
	time.Sleep(200 * time.Millisecond)                                                 // consumers start at the subscription time

	relay := outbox.NewRelay(pool, js, outbox.RelayConfig{Name: "t"}, nil)
	cases := []string{"case-a", "case-b", "case-c"}
	const perCase = 4
	total := len(cases) * perCase
	publishCases(t, pool, relay, cases, perCase)

	select {
	case <-rc.stuck:
	case <-time.After(30 * time.Second):
		t.Fatal("the first dispatcher never posted")
	}
	stopA() // the replica dies; its session, and the lock, end
	<-doneA

	ctxB, stopB := context.WithCancel(ctx)
	defer stopB()
	go webhooks.NewDispatcher(pool, js, cfg, nil).Run(ctxB) //nolint:errcheck
	waitFor(t, "the successor to deliver every event", func() bool { return rc.distinct() == total })
	time.Sleep(200 * time.Millisecond)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for id, n := range rc.posts {
		if n != 1 {
			t.Errorf("event %s answered %d times", id, n)
		}
	}
}

// countingReceiver answers every POST at once and counts them per event.
type countingReceiver struct {
	mu    sync.Mutex
	posts map[string]int
	total int
}

func (rc *countingReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	rc.mu.Lock()
	rc.posts[r.Header.Get(webhooks.EventIDHeader)]++
	rc.total++
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rc *countingReceiver) counts() (distinct, total int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.posts), rc.total
}

// lockHolder is the backend pid of the session holding the dispatcher lock (0: none).
func lockHolder(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var pid int
	err := pool.QueryRow(context.Background(), `SELECT coalesce(max(pid), 0) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = $2 AND objsubid = 1
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
		webhooks.DispatcherLock>>32, webhooks.DispatcherLock&0xffffffff).Scan(&pid)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// A dispatcher whose lock session is gone (PostgreSQL restarted, the
// connection cut) while its workers still read the stream must stop
// posting at once: the lock may already be another replica's, which
// delivers the same events. It used to notice only at its next
// subscriber sync (10 s by default; an hour here).
func TestDispatcherStopsPostingWhenItsLockSessionIsGone(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	rc := &countingReceiver{posts: map[string]int{}}
	hs := httptest.NewServer(rc)
	defer hs.Close()
	if _, err := webhooks.Subscribe(ctx, pool, webhooks.Subscriber{CountyCode: county, URL: hs.URL, Secret: "lease-receiver-secret-0001"}); err != nil {
		t.Fatal(err)
	}
	cfg := webhooks.Config{Timeout: time.Minute, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, Batch: 5}
	cfgA := cfg
	cfgA.SyncInterval = time.Hour
	go webhooks.NewDispatcher(pool, js, cfgA, nil).Run(ctx) //nolint:errcheck
	waitFor(t, "the first dispatcher to take the lock", func() bool { return lockHolder(t, pool) != 0 })
	time.Sleep(200 * time.Millisecond) // its worker starts reading

	// Its session ends under it.
	holder := lockHolder(t, pool)
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, holder); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the lock to be free", func() bool { return lockHolder(t, pool) == 0 })

	relay := outbox.NewRelay(pool, js, outbox.RelayConfig{Name: "t"}, nil)
	const perCase = 4
	cases := []string{"case-a", "case-b", "case-c"}
	total := perCase * len(cases)
	publishCases(t, pool, relay, cases, perCase)
	time.Sleep(500 * time.Millisecond)
	if _, n := rc.counts(); n != 0 {
		t.Fatalf("the dispatcher without its lock posted %d events", n)
	}

	// The replica that takes the lock over delivers each event once.
	cfgB := cfg
	cfgB.SyncInterval = 50 * time.Millisecond
	go webhooks.NewDispatcher(pool, js, cfgB, nil).Run(ctx) //nolint:errcheck
	waitFor(t, "the successor to deliver every event", func() bool { d, _ := rc.counts(); return d == total })
	time.Sleep(200 * time.Millisecond)
	if d, n := rc.counts(); n != d {
		t.Errorf("%d POSTs for %d events", n, d)
	}
}
