package webhooks_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/messaging/natstest"
	"ecogrid/internal/outbox"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
	"ecogrid/internal/webhooks"
)

func officer(county string) context.Context {
	return scope.NewContext(context.Background(), scope.Caller{PersonID: uuid.NewString(),
		Grants: []scope.Grant{{Role: scope.RoleCountyOfficer, NodeCode: county}}})
}

// The county office registers a receiver over WebhookService and gets its
// secret once; the dispatcher, running as cased runs it, delivers signed
// events to it; a replay asked for over the RPC (not in the dispatcher's
// process) is applied at the next sync; a disabled subscriber gets
// nothing more. Another county's office finds none of it.
func TestWebhookServiceRegistersReplaysAndDisables(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc := webhooks.NewService(pool, nil)
	mine, theirs := officer(county), officer("130124")

	id := uuid.NewString()
	recv := &receiver{seen: map[string]int{}}
	hs := httptest.NewServer(recv)
	defer hs.Close()
	req := &ecogridv1.CreateSubscriberRequest{SubscriberId: id, CountyCode: county, Url: hs.URL}
	res, err := svc.CreateSubscriber(mine, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.GetSecret()) != 64 {
		t.Fatalf("secret %q is not 64 hex digits", res.GetSecret())
	}
	recv.secret = []byte(res.GetSecret())
	again, err := svc.CreateSubscriber(mine, req)
	if err != nil || again.GetSecret() != res.GetSecret() {
		t.Fatalf("a retry of the same request: %v, secret equal %t", err, again.GetSecret() == res.GetSecret())
	}
	if _, err := svc.CreateSubscriber(mine, &ecogridv1.CreateSubscriberRequest{SubscriberId: id, CountyCode: county, Url: hs.URL + "/other"}); structerr.Code(err) != codes.AlreadyExists {
		t.Fatalf("the id for another subscriber: %v, want AlreadyExists", err)
	}
	for _, bad := range []*ecogridv1.CreateSubscriberRequest{
		{SubscriberId: uuid.NewString(), CountyCode: county, Url: "ftp://x"},
		{SubscriberId: uuid.NewString(), CountyCode: county, Url: "https://user:pw@x.example/"},
		{SubscriberId: "nope", CountyCode: county, Url: hs.URL},
		{SubscriberId: uuid.NewString(), CountyCode: county, Url: hs.URL, EventTypes: []string{"Opened!"}},
	} {
		if _, err := svc.CreateSubscriber(mine, bad); structerr.Code(err) != codes.InvalidArgument {
			t.Errorf("CreateSubscriber(%v) = %v, want InvalidArgument", bad, err)
		}
	}
	list, err := svc.ListSubscribers(mine, &ecogridv1.ListSubscribersRequest{CountyCode: county})
	if err != nil || len(list.GetSubscribers()) != 1 {
		t.Fatalf("list: %v %v", list, err)
	}
	// Another county's office: NotFound for everything of this county.
	if _, err := svc.ListSubscribers(theirs, &ecogridv1.ListSubscribersRequest{CountyCode: county}); structerr.Code(err) != codes.NotFound {
		t.Errorf("another county listing: %v", err)
	}
	if _, err := svc.CreateSubscriber(theirs, &ecogridv1.CreateSubscriberRequest{SubscriberId: id, CountyCode: "130124", Url: hs.URL}); structerr.Code(err) != codes.AlreadyExists {
		t.Errorf("another county reusing the id: %v", err)
	}
	for name, call := range map[string]func() error{
		"disable": func() error {
			_, err := svc.DisableSubscriber(theirs, &ecogridv1.DisableSubscriberRequest{SubscriberId: id})
			return err
		},
		"deliveries": func() error {
			_, err := svc.ListDeliveries(theirs, &ecogridv1.ListDeliveriesRequest{SubscriberId: id})
			return err
		},
		"replay": func() error {
			_, err := svc.ReplaySubscriber(theirs, &ecogridv1.ReplaySubscriberRequest{SubscriberId: id, Since: timestamppb.Now()})
			return err
		},
	} {
		if err := call(); structerr.Code(err) != codes.NotFound {
			t.Errorf("another county's %s: %v, want NotFound", name, err)
		}
	}

	d := webhooks.NewDispatcher(pool, js, webhooks.Config{Timeout: 400 * time.Millisecond, MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 40 * time.Millisecond, SyncInterval: 50 * time.Millisecond}, nil)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	time.Sleep(300 * time.Millisecond)
	relay := outbox.NewRelay(pool, js, outbox.RelayConfig{Name: "t"}, nil)
	cases := []string{"case-a", "case-b", "case-c"}
	publishCases(t, pool, relay, cases, 8)
	waitFor(t, "every delivery", func() bool { return recv.count() >= 24 })
	time.Sleep(200 * time.Millisecond)
	recv.check(t, "first", 24)

	log, err := svc.ListDeliveries(mine, &ecogridv1.ListDeliveriesRequest{SubscriberId: id, PageSize: 1000})
	if err != nil || len(log.GetDeliveries()) != 24 {
		t.Fatalf("delivery log: %d rows (%v), want 24", len(log.GetDeliveries()), err)
	}
	since := log.GetDeliveries()[12].GetPublishedAt()
	want := 0
	for _, l := range log.GetDeliveries() {
		if !l.GetPublishedAt().AsTime().Before(since.AsTime()) {
			want++
		}
	}
	recv.reset()
	if _, err := svc.ReplaySubscriber(mine, &ecogridv1.ReplaySubscriberRequest{SubscriberId: id, Since: since}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay", func() bool { return recv.count() >= want })
	time.Sleep(300 * time.Millisecond)
	recv.check(t, "replay", want)

	if _, err := svc.DisableSubscriber(mine, &ecogridv1.DisableSubscriberRequest{SubscriberId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ReplaySubscriber(mine, &ecogridv1.ReplaySubscriberRequest{SubscriberId: id, Since: since}); structerr.Code(err) != codes.FailedPrecondition {
		t.Errorf("replaying a disabled subscriber: %v, want FailedPrecondition", err)
	}
	time.Sleep(300 * time.Millisecond) // a sync drops its worker
	recv.reset()
	publishCases(t, pool, relay, cases, 2)
	time.Sleep(500 * time.Millisecond)
	if n := recv.count(); n != 0 {
		t.Errorf("a disabled subscriber received %d events", n)
	}
	list, err = svc.ListSubscribers(mine, &ecogridv1.ListSubscribersRequest{CountyCode: county})
	if err != nil || list.GetSubscribers()[0].GetDisabledAt() == nil {
		t.Errorf("the list does not show it disabled: %v %v", list, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// Two dispatchers over one database (two cased replicas): one delivers,
// so every event arrives once.
func TestTwoDispatchersDeliverOnce(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	recv := &receiver{secret: []byte("two-dispatchers-secret-01"), seen: map[string]int{}}
	hs := httptest.NewServer(recv)
	defer hs.Close()
	if _, err := webhooks.Subscribe(ctx, pool, webhooks.Subscriber{CountyCode: county, URL: hs.URL, Secret: string(recv.secret)}); err != nil {
		t.Fatal(err)
	}
	cfg := webhooks.Config{MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, SyncInterval: 50 * time.Millisecond}
	for range 2 {
		go webhooks.NewDispatcher(pool, js, cfg, nil).Run(ctx) //nolint:errcheck
	}
	time.Sleep(300 * time.Millisecond)
	relay := outbox.NewRelay(pool, js, outbox.RelayConfig{Name: "t"}, nil)
	publishCases(t, pool, relay, []string{"case-a", "case-b"}, 10)
	waitFor(t, "every delivery", func() bool { return recv.count() >= 20 })
	time.Sleep(300 * time.Millisecond)
	recv.check(t, "two dispatchers", 20)
	recv.mu.Lock()
	defer recv.mu.Unlock()
	if recv.repeats != 0 {
		t.Errorf("%d events were posted twice", recv.repeats)
	}
}

// A subscriber's consumer that vanishes (deleted, or lost with a NATS
// restart: it lives in memory) is created again at the next sync, and the
// delivery log keeps every event to one delivery.
func TestConsumerLostIsCreatedAgain(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	recv := &receiver{secret: []byte("lost-consumer-secret-0001"), seen: map[string]int{}}
	hs := httptest.NewServer(recv)
	defer hs.Close()
	sub, err := webhooks.Subscribe(ctx, pool, webhooks.Subscriber{CountyCode: county, URL: hs.URL, Secret: string(recv.secret)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := webhooks.Config{MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, SyncInterval: 50 * time.Millisecond, AckInterval: 20 * time.Millisecond}
	go webhooks.NewDispatcher(pool, js, cfg, nil).Run(ctx) //nolint:errcheck
	time.Sleep(300 * time.Millisecond)
	relay := outbox.NewRelay(pool, js, outbox.RelayConfig{Name: "t"}, nil)
	publishCases(t, pool, relay, []string{"case-a", "case-b"}, 6)
	waitFor(t, "the first deliveries", func() bool { return recv.count() >= 12 })
	if err := js.DeleteConsumer(ctx, "CASES", "webhook-"+sub.ID.String()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	publishCases(t, pool, relay, []string{"case-c", "case-d"}, 6)
	waitFor(t, "the deliveries after the loss", func() bool { return recv.count() >= 24 })
	time.Sleep(300 * time.Millisecond)
	recv.check(t, "after a lost consumer", 24)
}
