package monitoring

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"ecogrid/internal/messaging"
	"ecogrid/internal/messaging/natstest"
	"ecogrid/internal/outbox"
)

// TestViolationsReachJetStreamOnce: an exceeding sample and a missed
// window go through the outbox relay to the VIOLATIONS stream once each,
// also when the sample is recorded again, the sweep repeated, NATS
// restarted, and a relay publishes again rows it had not marked sent (it
// died between the publish ack and the update).
func TestViolationsReachJetStreamOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	relayAll := func(r *outbox.Relay) {
		t.Helper()
		for {
			n, err := r.RelayOnce(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
		}
	}
	p := e.point(t, "DM-R", 38.15, 114.60, 24*time.Hour, time.Now().Add(-25*time.Hour))
	s := Sample{ID: uuid.New(), PointID: p.ID, SampledAt: time.Now().Add(-time.Hour), Lab: "lab", Measurements: []Measurement{{Parameter: "COD_Mn", Value: 16}}}
	if _, _, err := e.m.RecordSample(ctx, s, uuid.Nil); err != nil {
		t.Fatal(err)
	}
	if n, err := e.m.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep raised %d (%v); want the first window", n, err)
	}
	relayAll(outbox.NewRelay(e.pool, js, outbox.RelayConfig{Name: "a"}, nil))

	srv.Restart(t)
	_, js = srv.Connect(t)
	if _, _, err := e.m.RecordSample(ctx, s, uuid.Nil); err != nil {
		t.Fatal(err)
	}
	if n, err := e.m.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("second sweep raised %d (%v)", n, err)
	}
	if _, err := e.pool.Exec(ctx, `UPDATE outbox.events SET sent_at = NULL`); err != nil {
		t.Fatal(err)
	}
	relayAll(outbox.NewRelay(e.pool, js, outbox.RelayConfig{Name: "b"}, nil))

	st, err := js.Stream(ctx, messaging.StreamViolations)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("the stream holds %d violations; want 2 (one sample, one missed window)", info.State.Msgs)
	}
}
