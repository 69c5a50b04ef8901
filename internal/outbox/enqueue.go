package outbox

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"ecogrid/internal/messaging"
	"ecogrid/internal/structerr"
)

// Event types written by ecogrid's services. The type is the protobuf
// message name from proto/ecogrid/events/v1.
const (
	EventViolationReported = "ViolationReported"
	EventCase              = "CaseEvent"
)

// eventStreams is the stream each event type must be published on: an
// event on another stream would reach consumers that cannot decode it.
var eventStreams = map[string]string{
	EventViolationReported: messaging.StreamViolations,
	EventCase:              messaging.StreamCases,
}

// Enqueue writes msg as a pending event in tx, to be published on subject
// with eventID as its Nats-Msg-Id. It must run in the transaction of the act
// the event announces. Enqueueing the same eventID again is a no-op, so a
// replayed request does not announce its act twice.
func Enqueue(ctx context.Context, tx pgx.Tx, countyCode, subject, eventType string, eventID uuid.UUID, msg proto.Message) error {
	b := &pgx.Batch{}
	if err := QueueEnqueue(b, countyCode, subject, eventType, eventID, msg); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("outbox: writing %s: %w", eventType, err)
	}
	return nil
}

// QueueEnqueue is Enqueue for callers that send several statements of
// their transaction in one round trip: it queues the insert on b, which
// the caller sends with tx.SendBatch.
//
// The subject is checked with messaging.ParseSubject: it must be one the
// messaging package builds, of the event's county (the relay orders and
// shards by county) and of the stream that carries the event type. A row
// that breaks these rules would be published wrongly or never; it is an
// Internal error here, before anything is committed.
func QueueEnqueue(b *pgx.Batch, countyCode, subject, eventType string, eventID uuid.UUID, msg proto.Message) error {
	if err := checkEvent(countyCode, subject, eventType, eventID); err != nil {
		return err
	}
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return fmt.Errorf("outbox: encoding %s: %w", eventType, err)
	}
	b.Queue(`
		INSERT INTO outbox.events (event_id, county_code, subject, event_type, payload)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (event_id) DO NOTHING`,
		eventID, countyCode, subject, eventType, payload)
	return nil
}

func checkEvent(countyCode, subject, eventType string, eventID uuid.UUID) error {
	if countyCode == "" || subject == "" || eventType == "" {
		return structerr.NewInternal("outbox: county, subject and event type are required")
	}
	if eventID == uuid.Nil {
		return structerr.NewInternal("outbox: event id is required")
	}
	s, err := messaging.ParseSubject(subject)
	if err != nil {
		return structerr.NewInternal("outbox: %v", err)
	}
	if s.County != countyCode {
		return structerr.NewInternal("outbox: subject %.40q does not carry county %s", subject, countyCode)
	}
	if want, ok := eventStreams[eventType]; ok && s.Stream != want {
		return structerr.NewInternal("outbox: a %s goes on stream %s, not on %.40q", eventType, want, subject)
	}
	return nil
}

// Event is one pending event for QueueEnqueueMany.
type Event struct {
	CountyCode string
	Subject    string
	Type       string
	ID         uuid.UUID
	Msg        proto.Message
}

// QueueEnqueueMany is QueueEnqueue for many events in one statement (one
// insert of arrays instead of a statement per event): they are written in
// the order given, so the relay publishes them in that order, and an event
// id already written is skipped. Every event is checked as QueueEnqueue
// checks it before anything is queued.
func QueueEnqueueMany(b *pgx.Batch, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(events))
	counties, subjects, types := make([]string, len(events)), make([]string, len(events)), make([]string, len(events))
	payloads := make([][]byte, len(events))
	for i, e := range events {
		if err := checkEvent(e.CountyCode, e.Subject, e.Type, e.ID); err != nil {
			return err
		}
		payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(e.Msg)
		if err != nil {
			return fmt.Errorf("outbox: encoding %s: %w", e.Type, err)
		}
		ids[i], counties[i], subjects[i], types[i], payloads[i] = e.ID, e.CountyCode, e.Subject, e.Type, payload
	}
	b.Queue(`
		INSERT INTO outbox.events (event_id, county_code, subject, event_type, payload)
		SELECT e.id, e.county, e.subject, e.type, e.payload
		FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bytea[]) WITH ORDINALITY AS e(id, county, subject, type, payload, ord)
		ORDER BY e.ord
		ON CONFLICT (event_id) DO NOTHING`,
		ids, counties, subjects, types, payloads)
	return nil
}
