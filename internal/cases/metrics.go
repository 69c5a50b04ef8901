package cases

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	openCasesDesc = prometheus.NewDesc("ecogrid_cases_open",
		"Cases not closed or rejected, per county.", []string{"county_code"}, nil)
	overdueCasesDesc = prometheus.NewDesc("ecogrid_cases_overdue",
		"Dispatched or in-progress cases past their rectification deadline, per county.", []string{"county_code"}, nil)
)

// caseCountTTL is how long one count of open and overdue cases serves
// scrapes: every replica of cased and every Prometheus scraping it would
// otherwise count on each scrape.
const caseCountTTL = 15 * time.Second

// CaseCounts are the open and overdue cases of one county.
type CaseCounts struct {
	Open, Overdue int64
}

// CountOpenCases counts open and overdue cases per county code, as the
// overdue filter of ListCases and the sweeper see them.
func CountOpenCases(ctx context.Context, pool *pgxpool.Pool) (map[string]CaseCounts, error) {
	rows, err := pool.Query(ctx, `
		SELECT county_code, count(*),
		       count(*) FILTER (WHERE state IN ('dispatched', 'in_progress') AND deadline < now())
		FROM cases.cases WHERE state NOT IN ('closed', 'rejected')
		GROUP BY county_code`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]CaseCounts{}
	for rows.Next() {
		var county string
		var c CaseCounts
		if err := rows.Scan(&county, &c.Open, &c.Overdue); err != nil {
			return nil, err
		}
		out[county] = c
	}
	return out, rows.Err()
}

// caseCountCollector serves ecogrid_cases_open and ecogrid_cases_overdue
// from a count at most caseCountTTL old.
type caseCountCollector struct {
	pool *pgxpool.Pool

	mu     sync.Mutex
	at     time.Time
	counts map[string]CaseCounts
}

// NewCaseCountCollector returns the collector of open and overdue cases
// per county; register it in cased's registry.
func NewCaseCountCollector(pool *pgxpool.Pool) prometheus.Collector {
	return &caseCountCollector{pool: pool}
}

func (c *caseCountCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- openCasesDesc
	ch <- overdueCasesDesc
}

func (c *caseCountCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil || time.Since(c.at) > caseCountTTL {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		counts, err := CountOpenCases(ctx, c.pool)
		cancel()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(openCasesDesc, err)
			return
		}
		c.counts, c.at = counts, time.Now()
	}
	for county, n := range c.counts {
		ch <- prometheus.MustNewConstMetric(openCasesDesc, prometheus.GaugeValue, float64(n.Open), county)
		ch <- prometheus.MustNewConstMetric(overdueCasesDesc, prometheus.GaugeValue, float64(n.Overdue), county)
	}
}
