package messaging_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"ecogrid/internal/messaging"
	"ecogrid/internal/messaging/natstest"
)

func TestEnsureStreamsIsIdempotentAndDeduplicates(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	if err := messaging.EnsureStreams(ctx, js, messaging.StreamConfig{Replicas: 1}); err != nil {
		t.Fatalf("second EnsureStreams: %v", err)
	}
	subj := messaging.ViolationSubject("130123")
	for range 3 {
		msg := &nats.Msg{Subject: subj, Data: []byte("x"), Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, "event-1")
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	st, err := js.Stream(ctx, messaging.StreamViolations)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages after 3 publishes of one id, want 1", info.State.Msgs)
	}
	if info.Config.Storage != jetstream.FileStorage {
		t.Fatalf("storage %v, want file", info.Config.Storage)
	}
}

func TestAcknowledgedMessageSurvivesRestart(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	nc, js := srv.Connect(t)
	ctx := context.Background()
	if _, err := js.Publish(ctx, messaging.CaseSubject("130123", "accepted"), []byte("case-1")); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	srv.Restart(t)
	_, js = srv.Connect(t)
	st, err := js.Stream(ctx, messaging.StreamCases)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("acknowledged message lost across restart: %v", err)
	}
	if string(m.Data) != "case-1" {
		t.Fatalf("got %q", m.Data)
	}
}

func TestConnectFailsFastWithHint(t *testing.T) {
	t.Parallel()
	start := time.Now()
	_, _, err := messaging.Connect(context.Background(), "nats://127.0.0.1:1", "t", nil)
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	if time.Since(start) > 30*time.Second {
		t.Fatalf("took %v to fail", time.Since(start))
	}
	if want := "cannot reach NATS"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
}
