package grid

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// indexMetrics counts what an operator watches to see that a replica's
// index keeps up: its size and change_seq (compare across replicas), how
// long ago it last confirmed it is current, refreshes, full reloads and
// listener reconnects.
type indexMetrics struct {
	refreshes   atomic.Int64
	fullLoads   atomic.Int64
	reconnects  atomic.Int64
	lastCurrent atomic.Int64 // unix nanos of the last load or refresh check
	// LocateAt answers: from memory, or from the PostGIS history.
	historicFromMemory  atomic.Int64
	historicFromPostGIS atomic.Int64
}

// RegisterMetrics registers the index's metrics (namespace ecogrid,
// subsystem grid_index) with reg, e.g. the gridd server's registry.
func (ix *Index) RegisterMetrics(reg prometheus.Registerer) error {
	opts := func(name, help string) prometheus.GaugeOpts {
		return prometheus.GaugeOpts{Namespace: "ecogrid", Subsystem: "grid_index", Name: name, Help: help}
	}
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "ecogrid", Subsystem: "grid_index", Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(opts("nodes", "Grid nodes in this replica's point-location index."),
			func() float64 { return float64(ix.Len()) }),
		prometheus.NewGaugeFunc(opts("change_seq", "grid.nodes change_seq the index reflects; equal on every replica when in step."),
			func() float64 { return float64(ix.Seq()) }),
		prometheus.NewGaugeFunc(opts("staleness_seconds", "Seconds since the index last confirmed it matches the database."),
			func() float64 {
				last := ix.metrics.lastCurrent.Load()
				if last == 0 {
					return -1
				}
				return time.Since(time.Unix(0, last)).Seconds()
			}),
		counter("refreshes_total", "Incremental refreshes applied.", &ix.metrics.refreshes),
		counter("full_loads_total", "Full reloads (start, and changes to nodes with descendants).", &ix.metrics.fullLoads),
		counter("listener_reconnects_total", "Times the LISTEN connection failed and was reopened.", &ix.metrics.reconnects),
		counter("historic_memory_total", "LocateAt answers from memory (boundaries unchanged since the moment asked).", &ix.metrics.historicFromMemory),
		counter("historic_postgis_total", "LocateAt answers from the PostGIS boundary history.", &ix.metrics.historicFromPostGIS),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
