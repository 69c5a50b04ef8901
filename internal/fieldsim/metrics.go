package fieldsim

import (
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc/status"
)

// metrics collects the latency of every successful call and the code of
// every failed attempt, per RPC. A run makes at most a few hundred
// thousand calls, so keeping every latency (8 bytes each) is cheaper and
// more exact than a histogram.
type metrics struct {
	mu   sync.Mutex
	lat  map[string][]time.Duration
	errs map[string]map[string]int
	// first holds the first message seen per RPC and code, so a summary
	// can say what an error count was.
	first map[string]map[string]string
}

func newMetrics() *metrics {
	return &metrics{lat: map[string][]time.Duration{}, errs: map[string]map[string]int{}, first: map[string]map[string]string{}}
}

func (m *metrics) ok(rpc string, d time.Duration) {
	m.mu.Lock()
	m.lat[rpc] = append(m.lat[rpc], d)
	m.mu.Unlock()
}

func (m *metrics) fail(rpc string, err error) {
	st := status.Convert(err)
	c := st.Code().String()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.errs[rpc]
	if e == nil {
		e = map[string]int{}
		m.errs[rpc] = e
		m.first[rpc] = map[string]string{}
	}
	e[c]++
	if _, ok := m.first[rpc][c]; !ok {
		m.first[rpc][c] = st.Message()
	}
}

// RPCStats is the outcome of one RPC over the run.
type RPCStats struct {
	RPC    string         `json:"rpc"`
	OK     int            `json:"ok"`
	P50ms  float64        `json:"p50_ms"`
	P99ms  float64        `json:"p99_ms"`
	MaxMs  float64        `json:"max_ms"`
	Errors map[string]int `json:"errors,omitempty"`
	// FirstErrors is the first message seen for each code in Errors.
	FirstErrors map[string]string `json:"first_errors,omitempty"`
}

func (m *metrics) snapshot() []RPCStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := map[string]bool{}
	for k := range m.lat {
		names[k] = true
	}
	for k := range m.errs {
		names[k] = true
	}
	var out []RPCStats
	for name := range names {
		l := slices.Clone(m.lat[name])
		slices.Sort(l)
		s := RPCStats{RPC: name, OK: len(l), Errors: maps.Clone(m.errs[name]), FirstErrors: maps.Clone(m.first[name])}
		if len(l) > 0 {
			s.P50ms = ms(quantile(l, 0.50))
			s.P99ms = ms(quantile(l, 0.99))
			s.MaxMs = ms(l[len(l)-1])
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RPC < out[j].RPC })
	return out
}

// quantile is the nearest-rank quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
