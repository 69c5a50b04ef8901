package messaging_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
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
	srv := natstest.Start(t, natstest.Secured())
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
	inc, ijs := srv.ConnectAs(t, messaging.RoleIntegrator)
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

	// The integrator follows case events from the stream.
	icons, err := ijs.CreateOrUpdateConsumer(ctx, messaging.StreamCases, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy})
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

// deploy/nats/*.conf give each user exactly the permissions of its role
// (passwords come from the environment there).
func TestDeployConfigMatchesRolePermissions(t *testing.T) {
	for _, name := range []string{"nats-server.conf", "nats-server.compose.conf"} {
		t.Run(name, func(t *testing.T) {
			for _, r := range messaging.Roles() {
				t.Setenv("ECOGRID_NATS_"+upper(string(r))+"_PASSWORD", "pw-"+string(r))
			}
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
			for _, r := range messaging.Roles() {
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
