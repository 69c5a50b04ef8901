package messaging_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"ecogrid/internal/messaging"
	"ecogrid/internal/messaging/natstest"
)

// asyncErrors collects the errors the server sends a connection
// (permission violations arrive this way, not as a Publish result).
func asyncErrors(nc *nats.Conn) <-chan error {
	errc := make(chan error, 16)
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errc <- err:
		default:
		}
	})
	return errc
}

func wantPermissionViolation(t *testing.T, errc <-chan error, what string) {
	t.Helper()
	select {
	case err := <-errc:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("%s: error %v, want a permissions violation", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no permissions violation reported", what)
	}
}

func streamMsgs(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// On the secured server an integrator can neither publish a violation nor
// subscribe to violations, and follows case events; gridd publishes
// violations; cased consumes and acknowledges them and publishes case
// events; a client without a user is refused.
func TestSecuredBusGivesEachRoleOnlyItsSubjects(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t, natstest.Secured(), natstest.Integrators("130123"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	subj := messaging.ViolationSubject("130123")

	if _, _, err := messaging.Connect(ctx, srv.URL(), "anonymous", nil); err == nil {
		t.Fatal("a client without a user connected to the secured server")
	}
	wrong := srv.Credentials(messaging.RoleGridd)
	wrong.Password += "x"
	if _, _, err := messaging.ConnectAs(ctx, srv.URL(), wrong, "bad password", nil); err == nil {
		t.Fatal("a wrong password was accepted")
	}

	// gridd creates the streams and publishes a violation.
	_, gjs := srv.Connect(t)
	msg := nats.NewMsg(subj)
	msg.Data = []byte("real")
	msg.Header.Set(jetstream.MsgIDHeader, "event-real")
	if _, err := gjs.PublishMsg(ctx, msg); err != nil {
		t.Fatalf("gridd publishing a violation: %v", err)
	}
	if f, err := gjs.PublishAsync(subj, []byte("async")); err != nil {
		t.Fatalf("gridd async publish: %v", err)
	} else {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("gridd async publish: %v", err)
		case <-ctx.Done():
			t.Fatal("gridd async publish not acknowledged")
		}
	}
	// gridd consumes nothing and writes no dead letters.
	gnc, _ := srv.ConnectAs(t, messaging.RoleGridd)
	gerrs := asyncErrors(gnc)
	if _, err := gnc.SubscribeSync(subj); err != nil {
		t.Fatal(err)
	}
	gnc.Flush() //nolint:errcheck
	wantPermissionViolation(t, gerrs, "gridd subscribing to violations")
	if err := gnc.Publish(messaging.DeadLetterSubject(messaging.StreamViolations), []byte("x")); err != nil {
		t.Fatal(err)
	}
	gnc.Flush() //nolint:errcheck
	wantPermissionViolation(t, gerrs, "gridd publishing a dead letter")

	// The integrator cannot publish a violation, with core NATS or JetStream.
	inc, ijs := srv.ConnectAs(t, messaging.Integrator("130123"))
	ierrs := asyncErrors(inc)
	if err := inc.Publish(subj, []byte("forged")); err != nil {
		t.Fatal(err)
	}
	inc.Flush() //nolint:errcheck
	wantPermissionViolation(t, ierrs, "integrator publishing a violation")
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	_, err := ijs.Publish(pctx, subj, []byte("forged"))
	pcancel()
	if err == nil {
		t.Fatal("integrator's JetStream publish of a violation was acknowledged")
	}
	wantPermissionViolation(t, ierrs, "integrator publishing a violation through JetStream")
	// … nor subscribe to violations, nor consume them from the stream.
	if _, err := inc.SubscribeSync(subj); err != nil {
		t.Fatal(err)
	}
	inc.Flush() //nolint:errcheck
	wantPermissionViolation(t, ierrs, "integrator subscribing to violations")
	cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = ijs.CreateOrUpdateConsumer(cctx, messaging.StreamViolations, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
	ccancel()
	if err == nil {
		t.Fatal("integrator created a consumer of violations")
	}
	// … nor snoop on the services' replies.
	if _, err := inc.SubscribeSync(messaging.InboxPrefix(messaging.RoleCased) + ".>"); err != nil {
		t.Fatal(err)
	}
	inc.Flush() //nolint:errcheck
	wantPermissionViolation(t, ierrs, "integrator subscribing to cased's inbox")
	if n := streamMsgs(t, gjs, messaging.StreamViolations); n != 2 {
		t.Fatalf("violations stream holds %d messages, want gridd's 2 only", n)
	}

	// cased consumes violations as its consumer does (durable pull,
	// explicit acks) and publishes a case event.
	_, cjs := srv.ConnectAs(t, messaging.RoleCased)
	cons, err := cjs.CreateOrUpdateConsumer(ctx, messaging.StreamViolations, jetstream.ConsumerConfig{
		Durable: "cased-test", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		t.Fatalf("cased creating its consumer: %v", err)
	}
	batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatalf("cased acknowledging: %v", err)
		}
		got++
	}
	if got != 2 {
		t.Fatalf("cased fetched %d violations (%v), want 2", got, batch.Error())
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.AckFloor.Stream != 2 {
		t.Fatalf("after acks: pending %d, ack floor %d", info.NumAckPending, info.AckFloor.Stream)
	}
	if _, err := cjs.Publish(ctx, messaging.CaseSubject("130123", "accepted"), []byte("case")); err != nil {
		t.Fatalf("cased publishing a case event: %v", err)
	}
	if _, err := cjs.Publish(ctx, messaging.DeadLetterSubject(messaging.StreamViolations), []byte("dead")); err != nil {
		t.Fatalf("cased dead-lettering: %v", err)
	}

	// The integrator follows its county's case events from the stream.
	icons, err := ijs.CreateOrUpdateConsumer(ctx, messaging.StreamCases, jetstream.ConsumerConfig{
		Durable: messaging.IntegratorConsumer("130123"), FilterSubject: messaging.CaseSubject("130123", ">"), AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("integrator creating a consumer of case events: %v", err)
	}
	m, err := icons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatalf("integrator reading a case event: %v", err)
	}
	if err := m.Ack(); err != nil || string(m.Data()) != "case" {
		t.Fatalf("integrator got %q, ack %v", m.Data(), err)
	}
}

// deployedRoles are the users of deploy/nats/*.conf: the services and the
// example integrator of county 130123 (an operator adds one per county).
var deployedRoles = append(messaging.Roles(), messaging.Integrator("130123"))

// deploy/nats/*.conf give each user exactly the permissions of its role
// (passwords come from the environment there).
func TestDeployConfigMatchesRolePermissions(t *testing.T) {
	for _, name := range []string{"nats-server.conf", "nats-server.compose.conf", "nats-cluster.conf"} {
		t.Run(name, func(t *testing.T) {
			for _, r := range deployedRoles {
				t.Setenv("ECOGRID_NATS_"+upper(string(r))+"_PASSWORD", "pw-"+string(r))
			}
			setClusterEnv(t, 1, []int{6222, 6222, 6222})
			path := filepath.Join("..", "..", "deploy", "nats", name)
			if _, err := os.Stat(path); err != nil {
				t.Fatal(err)
			}
			opts, err := server.ProcessConfigFile(path)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			if !opts.SyncAlways {
				t.Error("sync_interval is not always")
			}
			if opts.HTTPPort == 0 {
				t.Error("no monitoring port")
			}
			found := map[string]bool{}
			for _, u := range opts.Users {
				r := messaging.Role(u.Username)
				want, err := messaging.Permissions(r)
				if err != nil {
					t.Errorf("user %s: %v", u.Username, err)
					continue
				}
				found[u.Username] = true
				if u.Account == nil || u.Account.Name != messaging.Account {
					t.Errorf("user %s is not in account %s", u.Username, messaging.Account)
				}
				if u.Password != "pw-"+u.Username {
					t.Errorf("user %s's password does not come from the environment", u.Username)
				}
				if u.Permissions == nil || !samePerm(u.Permissions.Publish, want.Publish) || !samePerm(u.Permissions.Subscribe, want.Subscribe) {
					t.Errorf("user %s: permissions %+v differ from messaging.Permissions(%s)", u.Username, u.Permissions, r)
				}
			}
			for _, r := range deployedRoles {
				if !found[string(r)] {
					t.Errorf("no user %s", r)
				}
			}
		})
	}
}

func samePerm(got, want *server.SubjectPermission) bool {
	if got == nil || want == nil {
		return got == want
	}
	a, b := slices.Clone(got.Allow), slices.Clone(want.Allow)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b) && len(got.Deny) == len(want.Deny)
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// A county's integrator receives its county's case events, live and from
// its durable consumer, and nothing of another county's: it cannot
// subscribe to them, create a consumer that would feed them, read another
// consumer (a webhook's), read the stream by sequence, snoop on another
// integrator's replies, nor publish a case event or a violation.
func TestIntegratorFollowsOnlyItsCountysCaseEvents(t *testing.T) {
	t.Parallel()
	const home, away = "130123", "130124"
	srv := natstest.Start(t, natstest.Secured(), natstest.Integrators(home, away))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, gjs := srv.Connect(t)
	_, cjs := srv.ConnectAs(t, messaging.RoleCased)
	inc, ijs := srv.ConnectAs(t, messaging.Integrator(home))
	ierrs := asyncErrors(inc)

	live, err := inc.SubscribeSync(messaging.CaseSubject(home, ">"))
	if err != nil {
		t.Fatal(err)
	}
	inc.Flush() //nolint:errcheck
	select {
	case err := <-ierrs:
		t.Fatalf("subscribing to its own county: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	publish := func(county, note string) {
		t.Helper()
		if _, err := cjs.Publish(ctx, messaging.CaseSubject(county, "opened"), []byte(note)); err != nil {
			t.Fatal(err)
		}
	}
	publish(away, "away-1")
	publish(home, "home-1")
	publish(away, "away-2")
	publish(home, "home-2")
	for _, want := range []string{"home-1", "home-2"} {
		m, err := live.NextMsg(5 * time.Second)
		if err != nil || string(m.Data) != want {
			t.Fatalf("live: got %v (%v), want %s", m, err, want)
		}
	}
	if m, err := live.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("live: another county's event arrived: %q", m.Data)
	}

	// The protojson copies of its county's events (the relay publishes
	// them as cased or gridd), live.
	jsonSub, err := inc.SubscribeSync(messaging.JSONCaseSubject(home, ">"))
	if err != nil {
		t.Fatal(err)
	}
	inc.Flush() //nolint:errcheck
	cnc, _ := srv.ConnectAs(t, messaging.RoleCased)
	for _, county := range []string{away, home} {
		if err := cnc.Publish(messaging.JSONCaseSubject(county, "opened"), []byte(`{"countyCode":"`+county+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	cnc.Flush() //nolint:errcheck
	if m, err := jsonSub.NextMsg(5 * time.Second); err != nil || !strings.Contains(string(m.Data), home) {
		t.Fatalf("JSON copy: %v %v", m, err)
	}
	if m, err := jsonSub.NextMsg(300 * time.Millisecond); err == nil {
		t.Fatalf("another county's JSON copy arrived: %q", m.Data)
	}
	if _, err := inc.SubscribeSync(messaging.JSONCaseSubject(away, ">")); err != nil {
		t.Fatal(err)
	}
	inc.Flush() //nolint:errcheck
	wantPermissionViolation(t, ierrs, "subscribing to another county's JSON copies")

	// Its durable consumer, filtered to its county, reads only its events.
	cons, err := ijs.CreateOrUpdateConsumer(ctx, messaging.StreamCases, jetstream.ConsumerConfig{
		Durable: messaging.IntegratorConsumer(home), FilterSubject: messaging.CaseSubject(home, ">"),
		AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		t.Fatalf("creating its consumer: %v", err)
	}
	batch, err := cons.Fetch(4, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for m := range batch.Messages() {
		got = append(got, string(m.Data()))
		if err := m.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, []string{"home-1", "home-2"}) {
		t.Fatalf("its consumer read %v, want home-1, home-2", got)
	}

	// Refused: another county's subject, live.
	if _, err := inc.SubscribeSync(messaging.CaseSubject(away, ">")); err != nil {
		t.Fatal(err)
	}
	inc.Flush() //nolint:errcheck
	wantPermissionViolation(t, ierrs, "subscribing to another county's case events")
	if _, err := inc.SubscribeSync("ecogrid.v1.cases.>"); err != nil {
		t.Fatal(err)
	}
	inc.Flush() //nolint:errcheck
	wantPermissionViolation(t, ierrs, "subscribing to every county's case events")

	// Refused: a consumer filtered to another county, under its own name
	// or another, or unfiltered.
	for _, cfg := range []jetstream.ConsumerConfig{
		{Durable: messaging.IntegratorConsumer(home), FilterSubject: messaging.CaseSubject(away, ">"), AckPolicy: jetstream.AckExplicitPolicy},
		{Durable: messaging.IntegratorConsumer(away), FilterSubject: messaging.CaseSubject(away, ">"), AckPolicy: jetstream.AckExplicitPolicy},
		{Durable: "mine", FilterSubject: messaging.CaseSubject(home, ">"), AckPolicy: jetstream.AckExplicitPolicy},
		{Durable: messaging.IntegratorConsumer(home), AckPolicy: jetstream.AckExplicitPolicy},
		{Durable: messaging.IntegratorConsumer(home), FilterSubjects: []string{messaging.CaseSubject(home, ">"), messaging.CaseSubject(away, ">")}, AckPolicy: jetstream.AckExplicitPolicy},
	} {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := ijs.CreateOrUpdateConsumer(cctx, messaging.StreamCases, cfg)
		ccancel()
		if err == nil {
			t.Errorf("integrator of %s created consumer %s filtered %q %v", home, cfg.Durable, cfg.FilterSubject, cfg.FilterSubjects)
		}
	}
	// The create subject's filter is checked against the request's: a
	// request naming its county in the subject but another in the body fails.
	body := []byte(`{"stream_name":"CASES","config":{"durable_name":"` + messaging.IntegratorConsumer(home) + `","filter_subject":"` + messaging.CaseSubject(away, ">") + `","ack_policy":"explicit"}}`)
	resp, err := inc.Request("$JS.API.CONSUMER.CREATE.CASES."+messaging.IntegratorConsumer(home)+"."+messaging.CaseSubject(home, ">"), body, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(resp.Data), `"error"`) {
		t.Fatalf("a create naming another county's filter in its body was accepted: %s", resp.Data)
	}
	// The stored consumer still reads only its county.
	info, err := cons.Info(ctx)
	if err != nil || info.Config.FilterSubject != messaging.CaseSubject(home, ">") {
		t.Fatalf("its consumer's filter is now %q (%v)", info.Config.FilterSubject, err)
	}

	// Refused: reading a consumer that is not its own (a webhook's, made by cased).
	if _, err := cjs.CreateOrUpdateConsumer(ctx, messaging.StreamCases, jetstream.ConsumerConfig{
		Durable: "webhook-x", FilterSubject: messaging.CaseSubject(away, ">"), AckPolicy: jetstream.AckAllPolicy, DeliverPolicy: jetstream.DeliverAllPolicy}); err != nil {
		t.Fatal(err)
	}
	if _, err := inc.Request("$JS.API.CONSUMER.MSG.NEXT.CASES.webhook-x", []byte(`{"batch":1}`), time.Second); err == nil {
		t.Fatal("integrator pulled from a webhook's consumer")
	}
	wantPermissionViolation(t, ierrs, "pulling another consumer's messages")
	// Refused: reading the stream by sequence.
	if _, err := inc.Request("$JS.API.DIRECT.GET.CASES", []byte(`{"seq":1}`), time.Second); err == nil {
		t.Fatal("integrator read the stream by sequence")
	}
	wantPermissionViolation(t, ierrs, "reading the stream by sequence")
	// Refused: another integrator's inbox.
	if _, err := inc.SubscribeSync(messaging.InboxPrefix(messaging.Integrator(away)) + ".>"); err != nil {
		t.Fatal(err)
	}
	inc.Flush() //nolint:errcheck
	wantPermissionViolation(t, ierrs, "subscribing to another integrator's inbox")
	// Refused: publishing anything of ecogrid's.
	for _, subj := range []string{messaging.CaseSubject(home, "closed"), messaging.ViolationSubject(home), messaging.JSONCaseSubject(home, "closed")} {
		if err := inc.Publish(subj, []byte("forged")); err != nil {
			t.Fatal(err)
		}
		inc.Flush() //nolint:errcheck
		wantPermissionViolation(t, ierrs, "publishing "+subj)
	}
	if n := streamMsgs(t, gjs, messaging.StreamCases); n != 4 {
		t.Fatalf("cases stream holds %d messages, want cased's 4", n)
	}
}
