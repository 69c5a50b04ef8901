package webhooks

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"ecogrid/internal/structerr"
)

// Subscriber is a department system that receives a county's case events.
type Subscriber struct {
	ID         uuid.UUID
	CountyCode string
	URL        string
	// Secret keys the HMAC of every delivery (at least 16 bytes).
	Secret string
	// EventTypes are the case event types delivered (opened, accepted …);
	// none means all.
	EventTypes []string
	// JSON asks for protojson bodies instead of binary protobuf.
	JSON bool
	// StartAt is the publication time of the first event delivered.
	StartAt time.Time
}

// Subscribe stores s (its ID is made when zero) and returns it; its
// deliveries start with events published from now on.
func Subscribe(ctx context.Context, pool *pgxpool.Pool, s Subscriber) (Subscriber, error) {
	if s.CountyCode == "" {
		return s, structerr.NewInvalidArgument("a subscriber needs a county")
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return s, structerr.NewInvalidArgument("the webhook URL must be an absolute http or https URL")
	}
	if len(s.Secret) < 16 {
		return s, structerr.NewInvalidArgument("the secret must be at least 16 characters")
	}
	if s.ID == uuid.Nil {
		s.ID = uuid.New()
	}
	if s.EventTypes == nil {
		s.EventTypes = []string{}
	}
	err = pool.QueryRow(ctx, `
		INSERT INTO webhooks.subscribers (subscriber_id, county_code, url, secret, event_types, json)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING start_at`,
		s.ID, s.CountyCode, s.URL, s.Secret, s.EventTypes, s.JSON).Scan(&s.StartAt)
	if err != nil {
		return s, fmt.Errorf("webhooks: storing subscriber: %w", err)
	}
	return s, nil
}

// Subscribers lists every subscriber.
func Subscribers(ctx context.Context, pool *pgxpool.Pool) ([]Subscriber, error) {
	rows, err := pool.Query(ctx, `
		SELECT subscriber_id, county_code, url, secret, event_types, json, start_at
		FROM webhooks.subscribers ORDER BY subscriber_id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Subscriber, error) {
		var s Subscriber
		return s, r.Scan(&s.ID, &s.CountyCode, &s.URL, &s.Secret, &s.EventTypes, &s.JSON, &s.StartAt)
	})
}

// Unsubscribe removes a subscriber and its delivery log.
func Unsubscribe(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID) error {
	tag, err := pool.Exec(ctx, `DELETE FROM webhooks.subscribers WHERE subscriber_id = $1`, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return structerr.NewNotFound("no such subscriber")
	}
	return nil
}

// Delivery is a row of the delivery log.
type Delivery struct {
	EventID     uuid.UUID
	CaseID      string
	EventType   string
	StreamSeq   uint64
	PublishedAt time.Time
	Attempts    int
}

// Deliveries lists a subscriber's delivery log in stream order.
func Deliveries(ctx context.Context, pool *pgxpool.Pool, subscriber uuid.UUID) ([]Delivery, error) {
	rows, err := pool.Query(ctx, `
		SELECT event_id, case_id, event_type, stream_seq, published_at, attempts
		FROM webhooks.deliveries WHERE subscriber_id = $1 ORDER BY stream_seq`, subscriber)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) {
		var d Delivery
		return d, r.Scan(&d.EventID, &d.CaseID, &d.EventType, &d.StreamSeq, &d.PublishedAt, &d.Attempts)
	})
}

// delivered returns which of ids the subscriber already has.
func delivered(ctx context.Context, pool *pgxpool.Pool, sub uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	rows, err := pool.Query(ctx, `
		SELECT event_id FROM webhooks.deliveries WHERE subscriber_id = $1 AND event_id = ANY($2::uuid[])`, sub, uuidTexts(ids))
	if err != nil {
		return nil, err
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	out := make(map[uuid.UUID]bool, len(got))
	for _, id := range got {
		out[id] = true
	}
	return out, err
}

// record writes delivered events to the log, before they are acknowledged.
func record(ctx context.Context, pool *pgxpool.Pool, sub uuid.UUID, ds []Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(ds))
	cases := make([]string, len(ds))
	types := make([]string, len(ds))
	seqs := make([]int64, len(ds))
	pubs := make([]time.Time, len(ds))
	atts := make([]int32, len(ds))
	for i, d := range ds {
		ids[i], cases[i], types[i], seqs[i], pubs[i], atts[i] = d.EventID, d.CaseID, d.EventType, int64(d.StreamSeq), d.PublishedAt, int32(d.Attempts)
	}
	_, err := pool.Exec(ctx, `
		INSERT INTO webhooks.deliveries (event_id, subscriber_id, case_id, event_type, stream_seq, published_at, attempts)
		SELECT e, $1, c, t, s, p, a FROM unnest($2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::timestamptz[], $7::int[]) AS u(e, c, t, s, p, a)
		ON CONFLICT DO NOTHING`, sub, uuidTexts(ids), cases, types, seqs, pubs, atts)
	return err
}

// moveStart forgets the subscriber's deliveries of events published at or
// after since and makes since its start, for a replay.
func moveStart(ctx context.Context, pool *pgxpool.Pool, sub uuid.UUID, since time.Time) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	tag, err := tx.Exec(ctx, `UPDATE webhooks.subscribers SET start_at = $2 WHERE subscriber_id = $1`, sub, since)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return structerr.NewNotFound("no such subscriber")
	}
	if _, err := tx.Exec(ctx, `DELETE FROM webhooks.deliveries WHERE subscriber_id = $1 AND published_at >= $2`, sub, since); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// uuidTexts spells ids as text: pgx encodes a []uuid.UUID through its
// driver.Valuer one reflection at a time, which showed in the fan-out profile.
func uuidTexts(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}
