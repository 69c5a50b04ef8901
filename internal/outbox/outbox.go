// Package outbox owns the transactional outbox shared by gridd and cased:
// Enqueue writes an event row in the same PostgreSQL transaction as the act
// it announces, and the Relay publishes pending rows to JetStream, in order
// per county, with the event id as Nats-Msg-Id, marking them sent only
// after JetStream has acknowledged them.
//
// An act and its event therefore commit or vanish together; NATS being down
// only makes the outbox grow. Delivery is at least once: a relay that dies
// between the publish ack and marking the row sent publishes it again,
// which the stream's duplicate window drops and consumers' inbox tables
// ignore beyond it.
package outbox

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"ecogrid/internal/structerr"
)

// Event types written by ecogrid's services. The type is the protobuf
// message name from proto/ecogrid/events/v1.
const (
	EventViolationReported = "ViolationReported"
	EventCase              = "CaseEvent"
)

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
func QueueEnqueue(b *pgx.Batch, countyCode, subject, eventType string, eventID uuid.UUID, msg proto.Message) error {
	if countyCode == "" || subject == "" || eventType == "" {
		return structerr.NewInternal("outbox: county, subject and event type are required")
	}
	if eventID == uuid.Nil {
		return structerr.NewInternal("outbox: event id is required")
	}
	if !strings.Contains(subject, countyCode) {
		return structerr.NewInternal("outbox: subject %.40q does not carry county %s", subject, countyCode)
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
