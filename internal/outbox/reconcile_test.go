package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/messaging"
	"ecogrid/internal/outbox"
	"ecogrid/internal/structerr"
)

func TestListEventsPagesOneStreamInOrder(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	violations := enqueue(t, pool, "130123", 5)
	// A case event of the same county is another stream and stays out.
	err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
		return outbox.Enqueue(ctx, tx, "130123", messaging.CaseSubject("130123", "opened"), outbox.EventCase,
			uuid.New(), &eventsv1.CaseEvent{CountyCode: "130123"})
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	q := outbox.EventsQuery{Stream: messaging.StreamViolations, Limit: 2}
	for {
		page, err := outbox.ListEvents(ctx, pool, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("page of %d, limit 2", len(page))
		}
		for _, e := range page {
			if e.EventType != outbox.EventViolationReported || e.CountyCode != "130123" || len(e.Payload) == 0 || e.SentAt != nil {
				t.Errorf("stored event %+v", e)
			}
			got = append(got, e.EventID)
		}
		q.AfterSeq = page[len(page)-1].Seq
	}
	if len(got) != len(violations) {
		t.Fatalf("listed %d violations, enqueued %d", len(got), len(violations))
	}
	for i, id := range violations {
		if got[i] != id.String() {
			t.Errorf("event %d: %s, want %s (order of writing)", i, got[i], id)
		}
	}
	// A window that ends before they were written lists nothing.
	page, err := outbox.ListEvents(ctx, pool, outbox.EventsQuery{Stream: messaging.StreamViolations,
		CreatedBefore: time.Now().Add(-time.Hour)})
	if err != nil || len(page) != 0 {
		t.Fatalf("window in the past: %d events, %v", len(page), err)
	}
	if _, err := outbox.ListEvents(ctx, pool, outbox.EventsQuery{Stream: "NOPE"}); structerr.Code(err) != codes.InvalidArgument {
		t.Fatalf("unknown stream: %v", err)
	}
}

func TestEventsByIDLeavesOutWhatWasNeverWritten(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ids := enqueue(t, pool, "130123", 3)
	got, err := outbox.EventsByID(context.Background(), pool, []string{ids[2].String(), uuid.NewString(), ids[0].String()})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].EventID != ids[0].String() || got[1].EventID != ids[2].String() {
		t.Fatalf("got %+v", got)
	}
	if _, err := outbox.EventsByID(context.Background(), pool, []string{"x"}); structerr.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad id: %v", err)
	}
}
