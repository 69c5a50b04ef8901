package outbox

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	published = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "ecogrid", Subsystem: "outbox", Name: "published_total",
		Help: "Outbox events acknowledged by JetStream and marked sent by this process's relays.",
	})
	republished = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "ecogrid", Subsystem: "outbox", Name: "republished_total",
		Help: "Events this process's relays published that JetStream already held (a relay died between publishing and marking sent); stored once by Nats-Msg-Id.",
	})
	relayFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "ecogrid", Subsystem: "outbox", Name: "relay_failures_total",
		Help: "Relay rounds that failed (NATS or PostgreSQL unavailable); the rows stay pending.",
	})
	backlogDesc = prometheus.NewDesc("ecogrid_outbox_backlog_events",
		"Outbox events not yet acknowledged by JetStream, all counties.", nil, nil)
	oldestDesc = prometheus.NewDesc("ecogrid_outbox_oldest_pending_age_seconds",
		"Age of the oldest outbox event not yet acknowledged by JetStream (0 when none).", nil, nil)
)

// RegisterMetrics registers the relay counters and a collector that reads
// backlog depth and oldest pending age from the database at scrape time
// (the backlog is a fact about PostgreSQL, shared by all replicas). Call it
// once per process.
func RegisterMetrics(reg prometheus.Registerer, pool *pgxpool.Pool) error {
	for _, c := range []prometheus.Collector{published, republished, relayFailures, &backlogCollector{pool: pool}} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Backlog is the number of pending events and the age of the oldest.
type Backlog struct {
	Pending int64
	Oldest  time.Duration
}

// ReadBacklog reports the outbox backlog.
func ReadBacklog(ctx context.Context, pool *pgxpool.Pool) (Backlog, error) {
	var b Backlog
	var secs float64
	err := pool.QueryRow(ctx, `
		SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
		FROM outbox.events WHERE sent_at IS NULL`).Scan(&b.Pending, &secs)
	b.Oldest = time.Duration(secs * float64(time.Second))
	return b, err
}

type backlogCollector struct{ pool *pgxpool.Pool }

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- oldestDesc
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b, err := ReadBacklog(ctx, c.pool)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(backlogDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(b.Pending))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, b.Oldest.Seconds())
}
