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
