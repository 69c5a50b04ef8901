package ledger

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	checkpointsSigned = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "ecogrid", Subsystem: "ledger", Name: "checkpoints_signed_total",
		Help: "Ledger checkpoints signed by this process.",
	})
	checkpointsRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "ecogrid", Subsystem: "ledger", Name: "checkpoints_refused_total",
		Help: "Checkpoints refused because a chain was tampered with, rolled back or forked. Alert on any increase.",
	})
	verificationsFailed = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "ecogrid", Subsystem: "ledger", Name: "verifications_failed_total",
		Help: "VerifyChain runs that found a defect. Alert on any increase.",
	})
	unsignedDesc = prometheus.NewDesc("ecogrid_ledger_unsigned_records_max",
		"Largest number of records of one county chain not yet covered by a signed checkpoint.", nil, nil)
	staleDesc = prometheus.NewDesc("ecogrid_ledger_unsigned_age_seconds_max",
		"Longest time a county chain has had records not covered by a signed checkpoint (0 when all are).", nil, nil)
)

// RegisterMetrics registers the ledger's counters and a collector that
// reads, at scrape time, how far the chains are ahead of their latest
// signed checkpoints. Call it once per process.
func RegisterMetrics(reg prometheus.Registerer, pool *pgxpool.Pool) error {
	for _, c := range []prometheus.Collector{checkpointsSigned, checkpointsRefused, verificationsFailed, groupBatches, groupReruns, &lagCollector{pool: pool}} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

type lagCollector struct{ pool *pgxpool.Pool }

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- unsignedDesc
	ch <- staleDesc
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var unsigned int64
	var age float64
	err := c.pool.QueryRow(ctx, `
		SELECT COALESCE(max(c.size - COALESCE(k.size, 0)), 0),
		       COALESCE(max(extract(epoch FROM now() - COALESCE(k.created_at, c.created_at)))
		                FILTER (WHERE c.size > COALESCE(k.size, 0)), 0)::float8
		FROM ledger.chains c
		LEFT JOIN LATERAL (SELECT size, created_at FROM ledger.checkpoints WHERE county_code = c.county_code
		                   ORDER BY size DESC LIMIT 1) k ON true`).Scan(&unsigned, &age)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(unsignedDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(unsignedDesc, prometheus.GaugeValue, float64(unsigned))
	ch <- prometheus.MustNewConstMetric(staleDesc, prometheus.GaugeValue, age)
}
