package webhooks_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/messaging"
	"ecogrid/internal/messaging/natstest"
	"ecogrid/internal/webhooks"
)

// BenchmarkFanOut publishes case events at 500 a second for 5 seconds to
// 20 subscribers (loopback httptest receivers that verify every
// signature) and reports the delivery latency, publish to receipt: with
// one event per POST (max_batch=1, 10,000 POSTs a second) and with
// subscribers taking up to 100 events per POST (max_batch=100).
// Run it with -benchtime=1x: the load is fixed, not scaled by b.N.
func BenchmarkFanOut(b *testing.B) {
	for _, mb := range []int{1, 100} {
		b.Run("max_batch="+strconv.Itoa(mb), func(b *testing.B) { fanOut(b, mb) })
	}
}

func fanOut(b *testing.B, maxBatch int) {
	const (
		subscribers = 20
		rate        = 500
		duration    = 5 * time.Second
	)
	pool := dbtest.NewPool(b)
	srv := natstest.Start(b)
	_, js := srv.Connect(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	// lat: publish to receipt; stored: publish to the stream's
	// acknowledgement (stored and fsynced), the part before any delivery.
	var lat, stored []time.Duration
	bad := 0
	for i := range subscribers {
		secret := []byte("bench-secret-0000000" + strconv.Itoa(i))
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			now := time.Now()
			var evs []*eventsv1.CaseEvent
			err := webhooks.Verify(secret, r.Header.Get(webhooks.SignatureHeader), body, now, time.Minute)
			if err == nil && maxBatch > 1 {
				var batch eventsv1.CaseEventBatch
				err = proto.Unmarshal(body, &batch)
				evs = batch.GetEvents()
			} else if err == nil {
				var ev eventsv1.CaseEvent
				err = proto.Unmarshal(body, &ev)
				evs = []*eventsv1.CaseEvent{&ev}
			}
			if err != nil {
				mu.Lock()
				bad++
				mu.Unlock()
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			mu.Lock()
			for _, ev := range evs {
				lat = append(lat, now.Sub(ev.GetOccurredAt().AsTime()))
			}
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		}))
		defer hs.Close()
		if _, err := webhooks.Subscribe(ctx, pool, webhooks.Subscriber{CountyCode: county, URL: hs.URL, Secret: string(secret), MaxBatch: maxBatch}); err != nil {
			b.Fatal(err)
		}
	}
	d := webhooks.NewDispatcher(pool, js, webhooks.Config{SyncInterval: time.Hour}, nil)
	if err := d.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	total := int(rate * duration / time.Second)
	tick := time.NewTicker(time.Second / rate)
	for i := range total {
		<-tick.C
		id := uuid.New()
		ev := &eventsv1.CaseEvent{EventId: id.String(), CaseId: "case-" + strconv.Itoa(i%50), CountyCode: county,
			EventType: "opened", OccurredAt: timestamppb.Now()}
		data, _ := proto.Marshal(ev)
		m := nats.NewMsg(messaging.CaseSubject(county, "opened"))
		m.Data = data
		m.Header.Set(jetstream.MsgIDHeader, id.String())
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			b.Fatal(err)
		}
		go func(at time.Time) {
			select {
			case <-f.Ok():
			case <-f.Err():
			}
			mu.Lock()
			stored = append(stored, time.Since(at))
			mu.Unlock()
		}(ev.GetOccurredAt().AsTime())
	}
	tick.Stop()
	want := total * subscribers
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	if len(lat) != want || bad != 0 {
		b.Fatalf("delivered %d of %d, %d bad", len(lat), want, bad)
	}
	slices.Sort(lat)
	slices.Sort(stored)
	q := func(ds []time.Duration, q float64) float64 {
		return float64(ds[int(q*float64(len(ds)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(q(lat, 0.5), "p50_ms")
	b.ReportMetric(q(lat, 0.99), "p99_ms")
	b.ReportMetric(q(lat, 1), "max_ms")
	b.ReportMetric(q(stored, 0.99), "stored_p99_ms")
	b.ReportMetric(float64(want), "deliveries")
}
