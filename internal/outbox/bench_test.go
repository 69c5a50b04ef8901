package outbox_test

import (
	"context"
	"testing"
	"time"

	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/messaging/natstest"
	"ecogrid/internal/outbox"
)

// BenchmarkRelayDrain measures how fast one relay publishes a backlog to
// JetStream (file storage, fsync on every write) and marks it sent. Run
// with -benchtime=1x.
func BenchmarkRelayDrain(b *testing.B) {
	for range b.N {
		pool := dbtest.NewPool(b)
		srv := natstest.Start(b)
		_, js := srv.Connect(b)
		const total = 5000
		for range total / 500 {
			enqueue(b, pool, "130123", 500)
		}
		r := outbox.NewRelay(pool, js, outbox.RelayConfig{Name: "bench"}, nil)
		start := time.Now()
		sent := 0
		for sent < total {
			n, err := r.RelayOnce(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			sent += n
		}
		b.ReportMetric(float64(total)/time.Since(start).Seconds(), "events/s")
	}
}
