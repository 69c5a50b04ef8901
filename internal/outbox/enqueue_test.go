package outbox_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/messaging"
	"ecogrid/internal/outbox"
	"ecogrid/internal/structerr"
)

// An event the relay would publish wrongly — on a subject messaging does
// not build, of another county, or on the stream of another event type —
// is refused before the act commits, and nothing is written.
func TestEnqueueRefusesSubjectsTheRelayCannotRoute(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	msg := &eventsv1.ViolationReported{}
	for _, tc := range []struct {
		name, county, subject, eventType string
		id                               uuid.UUID
	}{
		{"hand-made subject", "130123", "violations.130123", outbox.EventViolationReported, uuid.New()},
		{"wildcard county", "*", messaging.ViolationSubject("*"), outbox.EventViolationReported, uuid.New()},
		{"subject of another county", "130123", messaging.ViolationSubject("130124"), outbox.EventViolationReported, uuid.New()},
		{"county as a prefix only", "13012", messaging.ViolationSubject("130123"), outbox.EventViolationReported, uuid.New()},
		{"violation on the case stream", "130123", messaging.CaseSubject("130123", "opened"), outbox.EventViolationReported, uuid.New()},
		{"case event on the violation stream", "130123", messaging.ViolationSubject("130123"), outbox.EventCase, uuid.New()},
		{"no event id", "130123", messaging.ViolationSubject("130123"), outbox.EventViolationReported, uuid.Nil},
		{"no event type", "130123", messaging.ViolationSubject("130123"), "", uuid.New()},
	} {
		err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
			return outbox.Enqueue(ctx, tx, tc.county, tc.subject, tc.eventType, tc.id, msg)
		})
		if structerr.Code(err) != codes.Internal {
			t.Errorf("%s: got %v, want Internal", tc.name, err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox.events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d rows written by refused events", n)
	}
}

// A replayed act enqueues its event again under the same id: one row, and
// the first payload wins (the relay may already have published it).
func TestEnqueueKeepsTheFirstRowOfAnEventID(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	id := uuid.New()
	for _, d := range []string{"first", "second"} {
		if err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
			return outbox.Enqueue(ctx, tx, "130123", messaging.ViolationSubject("130123"), outbox.EventViolationReported, id,
				&eventsv1.ViolationReported{EventId: id.String(), Description: d})
		}); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	var payload []byte
	if err := pool.QueryRow(ctx, `SELECT count(*) OVER (), payload FROM outbox.events WHERE event_id = $1`, id).Scan(&n, &payload); err != nil {
		t.Fatal(err)
	}
	var ev eventsv1.ViolationReported
	if err := proto.Unmarshal(payload, &ev); err != nil {
		t.Fatal(err)
	}
	if n != 1 || ev.GetDescription() != "first" {
		t.Fatalf("%d rows, payload %q", n, ev.GetDescription())
	}
}
