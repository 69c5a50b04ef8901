package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"ecogrid/internal/people"
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
	// MaxBatch is the most events in one POST: 0 or 1 is one CaseEvent
	// per POST, more makes every POST a CaseEventBatch (at most 500).
	MaxBatch int
	// StartAt is the publication time of the first event delivered.
	StartAt   time.Time
	CreatedAt time.Time
	// DisabledAt is set once deliveries stopped for good.
	DisabledAt *time.Time
	// CreatedBy is the person who registered it (uuid.Nil from gridctl's
	// direct database path or a test).
	CreatedBy uuid.UUID
	// ReplayGeneration counts replays asked for; ReplayedGeneration the
	// ones the dispatcher has applied.
	ReplayGeneration, ReplayedGeneration int64
}

const subscriberColumns = `subscriber_id, county_code, url, secret, event_types, json, start_at, created_at,
	disabled_at, coalesce(created_by, '00000000-0000-0000-0000-000000000000'), replay_generation, replayed_generation, max_batch`

func scanSubscriber(r pgx.CollectableRow) (Subscriber, error) {
	var s Subscriber
	return s, r.Scan(&s.ID, &s.CountyCode, &s.URL, &s.Secret, &s.EventTypes, &s.JSON, &s.StartAt, &s.CreatedAt,
		&s.DisabledAt, &s.CreatedBy, &s.ReplayGeneration, &s.ReplayedGeneration, &s.MaxBatch)
}

// NewSecret makes a subscriber secret: 32 random bytes in hex.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b)
}

// Subscribe stores s (its ID is made when zero) and returns it; its
// deliveries start with events published from now on. Storing the same
// ID again with the same county, URL, secret, types and encoding is an
// idempotent replay returning the stored subscriber; anything else with
// that ID is AlreadyExists.
func Subscribe(ctx context.Context, pool *pgxpool.Pool, s Subscriber) (Subscriber, error) {
	if err := people.CheckCountyCode(s.CountyCode); err != nil {
		return s, err
	}
	if len(s.URL) > 2000 {
		return s, structerr.NewInvalidArgument("the webhook URL is longer than 2000 characters")
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return s, structerr.NewInvalidArgument("the webhook URL must be an absolute http or https URL without a user name")
	}
	if len(s.Secret) < 16 {
		return s, structerr.NewInvalidArgument("the secret must be at least 16 characters")
	}
	for _, t := range s.EventTypes {
		if !eventTypePattern.MatchString(t) {
			return s, structerr.NewInvalidArgument("event type %.40q is not a case event type (lower-case letters and _)", t)
		}
	}
	if s.MaxBatch < 0 || s.MaxBatch > 500 {
		return s, structerr.NewInvalidArgument("max_batch is 0 to 500 events per POST, not %d", s.MaxBatch)
	}
	s.MaxBatch = max(s.MaxBatch, 1)
	if s.ID == uuid.Nil {
		s.ID = uuid.New()
	}
	if s.EventTypes == nil {
		s.EventTypes = []string{}
	}
	var createdBy any
	if s.CreatedBy != uuid.Nil {
		createdBy = s.CreatedBy
	}
	tag, err := pool.Exec(ctx, `
		INSERT INTO webhooks.subscribers (subscriber_id, county_code, url, secret, event_types, json, created_by, max_batch)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (subscriber_id) DO NOTHING`,
		s.ID, s.CountyCode, s.URL, s.Secret, s.EventTypes, s.JSON, createdBy, s.MaxBatch)
	if err != nil {
		return s, fmt.Errorf("webhooks: storing subscriber: %w", err)
	}
	prev, err := GetSubscriber(ctx, pool, s.ID)
	if err != nil {
		return s, err
	}
	if tag.RowsAffected() == 0 && (prev.CountyCode != s.CountyCode || prev.URL != s.URL || prev.Secret != s.Secret ||
		!slices.Equal(prev.EventTypes, s.EventTypes) || prev.JSON != s.JSON || prev.MaxBatch != s.MaxBatch) {
		return s, structerr.NewAlreadyExists("subscriber id %s is already used for another subscriber", s.ID)
	}
	return prev, nil
}

var eventTypePattern = regexp.MustCompile(`^[a-z][a-z_]{1,39}$`)

// GetSubscriber reads one subscriber, disabled or not; NotFound when none.
func GetSubscriber(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID) (Subscriber, error) {
	rows, err := pool.Query(ctx, `SELECT `+subscriberColumns+` FROM webhooks.subscribers WHERE subscriber_id = $1`, id)
	if err != nil {
		return Subscriber{}, err
	}
	s, err := pgx.CollectExactlyOneRow(rows, scanSubscriber)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, structerr.NewNotFound("subscriber %s not found", id)
	}
	return s, err
}

// Subscribers lists every subscriber still enabled: the dispatcher's list.
func Subscribers(ctx context.Context, pool *pgxpool.Pool) ([]Subscriber, error) {
	rows, err := pool.Query(ctx, `SELECT `+subscriberColumns+` FROM webhooks.subscribers
		WHERE disabled_at IS NULL ORDER BY subscriber_id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanSubscriber)
}

// SubscribersOf lists a county's subscribers, disabled ones included,
// oldest first.
func SubscribersOf(ctx context.Context, pool *pgxpool.Pool, county string) ([]Subscriber, error) {
	rows, err := pool.Query(ctx, `SELECT `+subscriberColumns+` FROM webhooks.subscribers
		WHERE county_code = $1 ORDER BY created_at, subscriber_id`, county)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanSubscriber)
}

// Disable stops deliveries to a subscriber for good (the dispatcher drops
// its consumer at its next sync); its delivery log stays. Disabling it
// again is a no-op.
func Disable(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID) error {
	tag, err := pool.Exec(ctx, `UPDATE webhooks.subscribers SET disabled_at = coalesce(disabled_at, now()) WHERE subscriber_id = $1`, id)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return structerr.NewNotFound("subscriber %s not found", id)
	}
	return nil
}

// RequestReplay asks for the subscriber's events published from since to
// be delivered again. The dispatcher applies it at its next sync (in
// whichever process it runs): it stops the subscriber's worker, forgets
// the log's deliveries from since, and restarts the consumer there.
func RequestReplay(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID, since time.Time) error {
	if since.IsZero() || since.After(time.Now().Add(time.Minute)) {
		return structerr.NewInvalidArgument("a replay starts at a time in the past")
	}
	tag, err := pool.Exec(ctx, `UPDATE webhooks.subscribers SET start_at = $2, replay_generation = replay_generation + 1
		WHERE subscriber_id = $1 AND disabled_at IS NULL`, id, since)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		if _, err := GetSubscriber(ctx, pool, id); err != nil {
			return err
		}
		return structerr.NewFailedPrecondition("subscriber %s is disabled", id)
	}
	return nil
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
	DeliveredAt time.Time
}

// Deliveries lists a subscriber's delivery log in stream order.
func Deliveries(ctx context.Context, pool *pgxpool.Pool, subscriber uuid.UUID) ([]Delivery, error) {
	return DeliveriesSince(ctx, pool, subscriber, time.Time{}, 0)
}

// DeliveriesSince lists at most limit (0: all) of a subscriber's
// deliveries of events published from since, in stream order.
func DeliveriesSince(ctx context.Context, pool *pgxpool.Pool, subscriber uuid.UUID, since time.Time, limit int) ([]Delivery, error) {
	var lim any
	if limit > 0 {
		lim = limit
	}
	rows, err := pool.Query(ctx, `
		SELECT event_id, case_id, event_type, stream_seq, published_at, attempts, delivered_at
		FROM webhooks.deliveries WHERE subscriber_id = $1 AND published_at >= $2 ORDER BY stream_seq LIMIT $3`, subscriber, since, lim)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) {
		var d Delivery
		return d, r.Scan(&d.EventID, &d.CaseID, &d.EventType, &d.StreamSeq, &d.PublishedAt, &d.Attempts, &d.DeliveredAt)
	})
}

// lastLogged is the highest stream sequence in the subscriber's log.
func lastLogged(ctx context.Context, pool *pgxpool.Pool, sub uuid.UUID) (uint64, error) {
	var seq int64
	err := pool.QueryRow(ctx, `SELECT coalesce(max(stream_seq), 0) FROM webhooks.deliveries WHERE subscriber_id = $1`, sub).Scan(&seq)
	return uint64(seq), err
}

// delivered returns which of ids the subscriber already has.
func delivered(ctx context.Context, pool *pgxpool.Pool, sub uuid.UUID, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
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

// applyReplay forgets the subscriber's deliveries of events published at
// or after its start and marks the replay of generation gen applied. The
// dispatcher calls it with the subscriber's worker stopped, so no delivery
// of the old position is recorded after it.
func applyReplay(ctx context.Context, pool *pgxpool.Pool, s Subscriber) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if _, err := tx.Exec(ctx, `DELETE FROM webhooks.deliveries WHERE subscriber_id = $1 AND published_at >= $2`, s.ID, s.StartAt); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE webhooks.subscribers SET replayed_generation = $2 WHERE subscriber_id = $1`, s.ID, s.ReplayGeneration); err != nil {
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
