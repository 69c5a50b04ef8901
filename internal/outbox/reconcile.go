package outbox

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/messaging"
	"ecogrid/internal/structerr"
)

// This file is outbox's read API for reconcilers: a consumer that must not
// trust the bus alone (cased, which opens a case per violation) asks which
// events were written, and compares with what it handled. It never reads
// outbox.events itself.

// StoredEvent is an event row as a service wrote it in the transaction of
// its act.
type StoredEvent struct {
	Seq        int64
	EventID    string
	CountyCode string
	Subject    string
	EventType  string
	Payload    []byte
	CreatedAt  time.Time
	// SentAt is when JetStream acknowledged it; nil while pending.
	SentAt *time.Time
}

// EventsQuery selects stored events of one stream, oldest first.
type EventsQuery struct {
	// Stream is the messaging stream whose subjects are wanted (messaging.StreamViolations …).
	Stream string
	// CreatedAfter and CreatedBefore bound created_at (exclusive); zero is unbounded.
	CreatedAfter, CreatedBefore time.Time
	// AfterSeq continues a listing after the last Seq of the previous page.
	AfterSeq int64
	// Limit is the page size (default and at most 1000).
	Limit int
}

// MaxEventsPage bounds one page of ListEvents.
const MaxEventsPage = 1000

// ListEvents returns a page of the events of q.Stream in the order they
// were written; the caller pages on with AfterSeq set to the last Seq.
func ListEvents(ctx context.Context, db database.Querier, q EventsQuery) ([]StoredEvent, error) {
	prefix := messaging.StreamSubjectPrefix(q.Stream)
	if prefix == "" {
		return nil, structerr.NewInvalidArgument("unknown stream %.40q", q.Stream)
	}
	if q.Limit <= 0 || q.Limit > MaxEventsPage {
		q.Limit = MaxEventsPage
	}
	after, before := q.CreatedAfter, q.CreatedBefore
	if after.IsZero() {
		after = time.Unix(0, 0)
	}
	if before.IsZero() {
		before = time.Now().Add(24 * time.Hour)
	}
	// The prefix is one of messaging's constants, spliced as a literal so
	// that the planner can use partial indexes on it (outbox_events_violations).
	rows, err := db.Query(ctx, `
		SELECT seq, event_id::text, county_code, subject, event_type, payload, created_at, sent_at
		FROM outbox.events
		WHERE subject LIKE '`+prefix+`%' AND created_at > $1 AND created_at < $2 AND seq > $3
		ORDER BY seq LIMIT $4`, after, before, q.AfterSeq, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: listing %s events: %w", q.Stream, err)
	}
	return pgx.CollectRows(rows, scanStoredEvent)
}

// EventsByID returns the stored events among ids, in the order written;
// ids that were never written are left out.
func EventsByID(ctx context.Context, db database.Querier, ids []string) ([]StoredEvent, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	parsed := make([]uuid.UUID, 0, len(ids))
	for _, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil {
			return nil, structerr.NewInvalidArgument("event id %.40q is not a UUID", id)
		}
		parsed = append(parsed, u)
	}
	rows, err := db.Query(ctx, `
		SELECT seq, event_id::text, county_code, subject, event_type, payload, created_at, sent_at
		FROM outbox.events WHERE event_id = ANY ($1) ORDER BY seq`, parsed)
	if err != nil {
		return nil, fmt.Errorf("outbox: reading events by id: %w", err)
	}
	return pgx.CollectRows(rows, scanStoredEvent)
}

func scanStoredEvent(row pgx.CollectableRow) (StoredEvent, error) {
	var e StoredEvent
	err := row.Scan(&e.Seq, &e.EventID, &e.CountyCode, &e.Subject, &e.EventType, &e.Payload, &e.CreatedAt, &e.SentAt)
	return e, err
}
