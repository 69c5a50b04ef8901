//go:build faults

package faults

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"ecogrid/internal/database"
	"ecogrid/internal/messaging"
	"ecogrid/internal/outbox"
	"ecogrid/internal/webhooks"
)

// killReplicas SIGKILLs one gridd and one cased every period, the first
// replicas at the first tick, the second ones at the next, and so on, and
// restarts them; the other replica of each keeps serving meanwhile.
func killReplicas(ctx context.Context, t *testing.T, s *Stack, stop <-chan struct{}, period time.Duration) int {
	n := 0
	return every(stop, period, func() {
		g, c := s.Gridds[n%len(s.Gridds)], s.Caseds[n%len(s.Caseds)]
		n++
		g.Kill()
		c.Kill()
		fmt.Fprintf(os.Stderr, "faults: %s SIGKILLed %s and %s\n", time.Now().Format("15:04:05"), g.Name, c.Name)
		var wg sync.WaitGroup
		for _, p := range []*Proc{g, c} {
			wg.Go(func() {
				if err := p.Start(ctx); err != nil {
					t.Errorf("restarting %s: %v", p.Name, err)
				}
			})
		}
		wg.Wait()
	})
}

// replicaWatch is what the replicas scenario watches beside fieldsim's
// reconciliation, for double work by the replicas' background workers:
// a webhook subscriber whose receiver counts every POST per event id (one
// dispatcher must deliver each event once), cases made overdue while the
// run goes on (the two cased's overdue sweepers must escalate each once),
// and afterwards the streams (each event stored once) and the relays'
// logs (how many events were published again and deduplicated).
type replicaWatch struct {
	s     *Stack
	pool  *pgxpool.Pool
	start time.Time

	hook      *httptest.Server
	mu        sync.Mutex
	posts     map[string][]time.Time // event id → when each POST of it came
	postTotal int

	overdue atomic.Int64 // cases whose deadline the scenario moved into the past
}

func startReplicaWatch(ctx context.Context, s *Stack) (*replicaWatch, error) {
	pool, err := database.Open(ctx, database.Config{URL: s.DatabaseURL, ApplicationName: "faults-replicas"})
	if err != nil {
		return nil, err
	}
	w := &replicaWatch{s: s, pool: pool, posts: map[string][]time.Time{}}
	w.hook = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(webhooks.EventIDHeader)
		w.mu.Lock()
		w.posts[id] = append(w.posts[id], time.Now())
		w.postTotal++
		w.mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	if err := pool.QueryRow(ctx, `INSERT INTO webhooks.subscribers (subscriber_id, county_code, url, secret)
		VALUES (gen_random_uuid(), $1, $2, 'faults-replicas-secret-0123') RETURNING start_at`, s.County, w.hook.URL).Scan(&w.start); err != nil {
		w.close()
		return nil, fmt.Errorf("webhook subscriber: %w", err)
	}
	return w, nil
}

func (w *replicaWatch) close() {
	// Later scenarios must not keep retrying POSTs to a closed receiver.
	_, _ = w.pool.Exec(context.Background(), `UPDATE webhooks.subscribers SET disabled_at = now() WHERE url = $1`, w.hook.URL)
	w.hook.Close()
	w.pool.Close()
}

// makeOverdue moves the deadline of a few open cases into the past every
// second until stop, so that both cased's sweepers (every 2 s) find them.
func (w *replicaWatch) makeOverdue(ctx context.Context, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Second):
		}
		tag, err := w.pool.Exec(ctx, `UPDATE cases.cases SET deadline = now() - interval '1 hour'
			WHERE id IN (SELECT id FROM cases.cases WHERE state IN ('dispatched', 'in_progress')
				AND escalated_at IS NULL AND deadline > now() ORDER BY random() LIMIT 5)`)
		if err == nil {
			w.overdue.Add(tag.RowsAffected())
		}
	}
}

// replicaChecks are the figures of the double-work checks.
type replicaChecks struct {
	Republished      int64 // events the relays published again (JetStream said duplicate)
	StoredTwice      int   // events a stream holds more than once
	StreamEvents     int   // events in the streams
	Overdue          int64 // cases made overdue
	Escalated        int   // system escalations recorded since the start
	OverdueLeft      int   // open cases overdue for more than 10 s and not escalated
	EscalatedTwice   int   // cases with more than one escalation
	HookExpected     int   // case events of the county since the subscriber's start
	HookDelivered    int   // of them, received by the webhook receiver
	HookPostedTwice  int   // events POSTed more than once
	HookAcrossKill   int   // of them, POSTed twice with a cased SIGKILLed in between
	HookPosts        int   // POSTs received
	DeliveryLogTwice int   // events the delivery log holds twice (cannot: primary key)
	problems         []string
}

func (c *replicaChecks) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// check waits (up to wait) for every case event to reach the webhook
// receiver, then gathers the figures.
func (w *replicaWatch) check(ctx context.Context, wait time.Duration) (*replicaChecks, error) {
	c := &replicaChecks{Overdue: w.overdue.Load()}
	prefix := strings.TrimSuffix(messaging.CaseSubject(w.s.County, ">"), ">")
	deadline := time.Now().Add(wait)
	var expected []string
	for {
		rows, err := w.pool.Query(ctx, `SELECT event_id::text FROM outbox.events
			WHERE county_code = $1 AND starts_with(subject, $2) AND created_at >= $3`, w.s.County, prefix, w.start)
		if err != nil {
			return nil, err
		}
		expected = expected[:0]
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			expected = append(expected, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		w.mu.Lock()
		got := 0
		for _, id := range expected {
			if len(w.posts[id]) > 0 {
				got++
			}
		}
		w.mu.Unlock()
		c.HookExpected, c.HookDelivered = len(expected), got
		if got == len(expected) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if c.HookDelivered != c.HookExpected {
		c.problem("webhook: %d of %d case events delivered within %s", c.HookDelivered, c.HookExpected, wait)
	}
	// A cased SIGKILLed while delivering has POSTed events whose log rows
	// (written once its batch is through, before the ack) it never wrote:
	// its successor posts them again, once (at least once across a crash;
	// receivers drop repeats by Ecogrid-Event-Id). Any other repeat, with
	// no cased killed between the two POSTs, is double work.
	var kills []time.Time
	for _, p := range w.s.Caseds {
		kills = append(kills, p.Kills()...)
	}
	w.mu.Lock()
	c.HookPosts = w.postTotal
	for id, at := range w.posts {
		if len(at) < 2 {
			continue
		}
		c.HookPostedTwice++
		acrossKill := len(at) == 2 && slices.ContainsFunc(kills, func(k time.Time) bool { return !k.Before(at[0]) && !k.After(at[1]) })
		if acrossKill {
			c.HookAcrossKill++
			continue
		}
		if c.HookPostedTwice-c.HookAcrossKill <= 5 {
			c.problem("webhook: event %s POSTed %d times (%s), no cased killed in between", id, len(at), at)
		}
	}
	w.mu.Unlock()
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT event_id FROM webhooks.deliveries
		GROUP BY event_id, subscriber_id HAVING count(*) > 1) d`).Scan(&c.DeliveryLogTwice); err != nil {
		return nil, err
	}

	if err := w.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE n > 1) FROM (
			SELECT case_id, count(*) AS n FROM cases.transitions
			WHERE action = 'escalate' AND at >= $1 GROUP BY case_id) e`, w.start).Scan(&c.Escalated, &c.EscalatedTwice); err != nil {
		return nil, err
	}
	// Every case still overdue and open must have been escalated by one
	// of the sweepers (every 2 s) by now.
	for range 30 {
		if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM cases.cases WHERE state IN ('dispatched', 'in_progress')
			AND deadline < now() - interval '10 seconds' AND escalated_at IS NULL`).Scan(&c.OverdueLeft); err != nil {
			return nil, err
		}
		if c.OverdueLeft == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	if c.OverdueLeft > 0 {
		c.problem("overdue sweep: %d open cases overdue and not escalated", c.OverdueLeft)
	}
	if c.EscalatedTwice > 0 {
		c.problem("overdue sweep: %d cases escalated more than once", c.EscalatedTwice)
	}
	if c.Overdue > 0 && c.Escalated == 0 {
		c.problem("overdue sweep: %d cases made overdue, none escalated", c.Overdue)
	}

	var err error
	if c.StreamEvents, c.StoredTwice, err = w.streamDuplicates(ctx); err != nil {
		return nil, fmt.Errorf("reading the streams: %w", err)
	}
	if c.StoredTwice > 0 {
		c.problem("JetStream: %d events stored more than once", c.StoredTwice)
	}
	if c.Republished, err = w.republished(); err != nil {
		return nil, err
	}
	return c, nil
}

// streamDuplicates reads every message of the violation and case streams
// (as cased's NATS user, with an ordered consumer) and counts the event
// ids held more than once.
func (w *replicaWatch) streamDuplicates(ctx context.Context) (total, twice int, err error) {
	nc, js, err := messaging.ConnectAs(ctx, w.s.NATSURL, w.s.natsUsers[messaging.RoleCased], "faults-replicas", nil)
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	seen := map[string]int{}
	for _, stream := range []string{messaging.StreamViolations, messaging.StreamCases} {
		cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", stream, err)
		}
		info, err := cons.Info(ctx)
		if err != nil {
			return 0, 0, err
		}
		left := info.NumPending
		for left > 0 {
			batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				return 0, 0, err
			}
			got := 0
			for m := range batch.Messages() {
				got++
				seen[m.Headers().Get(jetstream.MsgIDHeader)]++
			}
			if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
				return 0, 0, err
			}
			if got == 0 {
				return 0, 0, fmt.Errorf("%s: %d messages left unread", stream, left)
			}
			left -= uint64(min(uint64(got), left))
		}
	}
	for _, n := range seen {
		total += n
		if n > 1 {
			twice++
		}
	}
	return total, twice, nil
}

// republished sums the relays' log lines saying JetStream acknowledged
// events as duplicates, over every replica's log.
func (w *replicaWatch) republished() (int64, error) {
	var n int64
	for _, p := range w.s.Procs() {
		f, err := os.Open(p.Log)
		if err != nil {
			return 0, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if !strings.Contains(sc.Text(), "published again") {
				continue
			}
			var line struct {
				Time   time.Time `json:"time"`
				Msg    string    `json:"msg"`
				Events int64     `json:"events"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == outbox.RepublishedLog && !line.Time.Before(w.start) {
				n += line.Events
			}
		}
		f.Close()
	}
	return n, nil
}

func (c *replicaChecks) String() string {
	return fmt.Sprintf("outbox republished %d, stored twice %d of %d | overdue %d, escalated %d, twice %d, left %d | webhook %d/%d delivered, %d POSTs, posted twice %d (%d across a kill of cased), log twice %d",
		c.Republished, c.StoredTwice, c.StreamEvents, c.Overdue, c.Escalated, c.EscalatedTwice, c.OverdueLeft,
		c.HookDelivered, c.HookExpected, c.HookPosts, c.HookPostedTwice, c.HookAcrossKill, c.DeliveryLogTwice)
}
