package daemon

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"ecogrid/internal/buildinfo"
)

// registerProcessMetrics adds what every server process exposes beside
// its gRPC metrics: which build it runs and how its PostgreSQL pool is
// doing (issue 14).
func registerProcessMetrics(reg prometheus.Registerer, name string, pool *pgxpool.Pool) error {
	in := buildinfo.Read()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ecogrid_build_info",
		Help: "Always 1; the labels say which build this process runs (version, VCS revision, Go version).",
		ConstLabels: prometheus.Labels{"service": name, "version": in.Version, "revision": in.ShortRevision(),
			"goversion": in.GoVersion},
	})
	build.Set(1)
	for _, c := range []prometheus.Collector{build, &poolCollector{pool: pool}} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

var (
	poolConns = prometheus.NewDesc("ecogrid_db_pool_connections",
		"PostgreSQL pool connections by state (acquired: in use; idle; constructing: being opened).", []string{"state"}, nil)
	poolMax = prometheus.NewDesc("ecogrid_db_pool_max_connections",
		"Most connections the PostgreSQL pool opens.", nil, nil)
	poolAcquires = prometheus.NewDesc("ecogrid_db_pool_acquires_total",
		"Connections acquired from the PostgreSQL pool.", nil, nil)
	poolEmptyAcquires = prometheus.NewDesc("ecogrid_db_pool_empty_acquires_total",
		"Acquires that had to wait because no connection was idle (a pool too small for the load).", nil, nil)
	poolCanceledAcquires = prometheus.NewDesc("ecogrid_db_pool_canceled_acquires_total",
		"Acquires given up because the caller's context ended while waiting.", nil, nil)
	poolAcquireWait = prometheus.NewDesc("ecogrid_db_pool_acquire_wait_seconds_total",
		"Time spent waiting to acquire PostgreSQL connections.", nil, nil)
)

// poolCollector reads pgxpool's statistics at scrape time.
type poolCollector struct{ pool *pgxpool.Pool }

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConns, poolMax, poolAcquires, poolEmptyAcquires, poolCanceledAcquires, poolAcquireWait} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolEmptyAcquires, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolCanceledAcquires, prometheus.CounterValue, float64(s.CanceledAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolAcquireWait, prometheus.CounterValue, s.AcquireDuration().Seconds())
}
