package field

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestMetricsCountReportsAndReplays(t *testing.T) {
	e := newEnv(t, Config{})
	reg := prometheus.NewRegistry()
	e.f.Reports.metrics = newMetrics(reg)
	ctx := context.Background()
	d := e.draft(29.01, 106.15) // in B's village: outside A's area
	d.Violation = true
	for range 2 {
		if _, _, err := e.f.SubmitReport(ctx, inspectorA, d); err != nil {
			t.Fatal(err)
		}
	}
	if got := counterValue(t, e.f.Reports.metrics.reports.WithLabelValues("true", "true")); got != 1 {
		t.Fatalf("violations outside the area: %v", got)
	}
	if got := counterValue(t, e.f.Reports.metrics.replays); got != 1 {
		t.Fatalf("replays: %v", got)
	}
	families, err := reg.Gather()
	if err != nil || len(families) < 2 {
		t.Fatalf("gathered %d families, %v", len(families), err)
	}
}
