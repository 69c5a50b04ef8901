package cases

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"ecogrid/internal/messaging"
)

// cased's registry answers how many cases are open and overdue per
// county, how far its consumer lags and how many dead letters wait.
func TestCaseAndConsumerMetrics(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	c := NewConsumer(s.js, s.tracker, ConsumerConfig{}, nil)
	s.run(c.Run)
	s.startRelay("gridd-1")
	for range 3 {
		s.file(violation(testVillage))
	}
	s.waitCases(3, 20*time.Second)
	if _, err := s.js.Publish(ctx, messaging.ViolationSubject(testCounty), []byte("\xffnot protobuf")); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); s.streamMsgs(messaging.StreamDeadLetter) < 1; {
		if time.Now().After(deadline) {
			t.Fatal("the malformed message was not dead-lettered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var id string
	if err := s.pool.QueryRow(ctx, `UPDATE cases.cases SET state = 'dispatched', deadline = now() - interval '2 days'
		WHERE id = (SELECT id FROM cases.cases ORDER BY id LIMIT 1) RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	s.waitConsumerIdle(c.Durable(), 10*time.Second)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCaseCountCollector(s.pool),
		&messaging.JetStreamCollector{JS: s.js, Consumers: []messaging.Consumer{{Stream: messaging.StreamViolations, Name: c.Durable()}}})
	want := `
# HELP ecogrid_cases_open Cases not closed or rejected, per county.
# TYPE ecogrid_cases_open gauge
ecogrid_cases_open{county_code="` + testCounty + `"} 3
# HELP ecogrid_cases_overdue Dispatched or in-progress cases past their rectification deadline, per county.
# TYPE ecogrid_cases_overdue gauge
ecogrid_cases_overdue{county_code="` + testCounty + `"} 1
# HELP ecogrid_dead_letter_messages Messages parked on the dead-letter stream (DLQ) waiting for an operator to replay or discard them (gridctl deadletters).
# TYPE ecogrid_dead_letter_messages gauge
ecogrid_dead_letter_messages 1
# HELP ecogrid_jetstream_consumer_pending_messages Messages of the stream the durable consumer has not yet been delivered (its lag).
# TYPE ecogrid_jetstream_consumer_pending_messages gauge
ecogrid_jetstream_consumer_pending_messages{consumer="cased-violations",stream="VIOLATIONS"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ecogrid_cases_open", "ecogrid_cases_overdue",
		"ecogrid_dead_letter_messages", "ecogrid_jetstream_consumer_pending_messages"); err != nil {
		t.Fatal(err)
	}
	// The count is cached for a scrape or two; a case closing shows after.
	if _, err := s.pool.Exec(ctx, `UPDATE cases.cases SET state = 'closed' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(gaugeOf(t, reg, "ecogrid_cases_overdue")); n != 1 {
		t.Fatalf("overdue right after closing = %v, want the cached 1", n)
	}
}

// gaugeOf gathers the one sample of name from reg as a gauge.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Gauge {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: name})
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("%s: no single sample", name)
	return nil
}
