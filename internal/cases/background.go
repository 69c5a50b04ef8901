package cases

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/database"
	"ecogrid/internal/messaging"
	"ecogrid/internal/outbox"
)

// EscalateOverdue puts every overdue case that is not yet under county
// supervision under it (督办), as the system, with a timeline entry, a
// ledger record and a CaseEvent each. Several replicas may sweep at once:
// each case is re-checked under its row lock. It returns how many cases it
// escalated.
func (t *Tracker) EscalateOverdue(ctx context.Context) (int, error) {
	now := t.now().UTC().Truncate(time.Microsecond)
	rows, err := t.pool.Query(ctx, `
		SELECT id::text FROM cases.cases
		WHERE state IN ('dispatched', 'in_progress') AND deadline < $1 AND escalated_at IS NULL
		ORDER BY deadline LIMIT 500`, now)
	if err != nil {
		return 0, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		done, err := t.escalateOne(ctx, id, now)
		if err != nil {
			return n, fmt.Errorf("escalating case %s: %w", id, err)
		}
		if done {
			n++
			escalations.Inc()
		}
	}
	return n, nil
}

func (t *Tracker) escalateOne(ctx context.Context, id string, now time.Time) (bool, error) {
	done := false
	err := database.InTx(ctx, t.pool, func(tx pgx.Tx) error {
		c, err := getCase(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if !c.Overdue(now) || c.EscalatedAt != nil {
			return nil // acted on meanwhile, or another sweeper was first
		}
		tr, _ := Rule(ActionEscalate)
		from := c.State
		days := c.OverdueDays(now)
		note := fmt.Sprintf("overdue by %d day(s): deadline was %s", days, c.Deadline.In(chinaTime).Format("2006-01-02 15:04"))
		actor := SystemActor(c.CountyCode)
		details, err := Apply(c, tr, actor, Input{Note: note}, DeadlineRule{}, now)
		if err != nil {
			return err
		}
		details["overdue_days"] = days
		if err := updateCase(ctx, tx, c); err != nil {
			return err
		}
		e := &TimelineEntry{
			ID:     uuid.NewSHA1(eventNamespace, []byte("overdue:"+c.ID+":"+c.Deadline.UTC().Format(time.RFC3339Nano))).String(),
			CaseID: c.ID, Action: ActionEscalate, From: from, To: c.State, Note: note, Details: details, At: now,
		}
		if err := t.record(ctx, tx, c, e, actor, tr.Event); err != nil {
			return err
		}
		done = true
		return nil
	})
	return done, err
}

// ReconcileConfig tunes the reconciler.
type ReconcileConfig struct {
	// Grace is how long a violation may take to become a case by the normal
	// path before the reconciler acts (default 2 minutes).
	Grace time.Duration
	// Lookback bounds how far back the reconciler searches (default 7 days).
	Lookback time.Duration
}

func (c *ReconcileConfig) setDefaults() {
	if c.Grace <= 0 {
		c.Grace = 2 * time.Minute
	}
	if c.Lookback <= 0 {
		c.Lookback = 7 * 24 * time.Hour
	}
}

// Reconcile opens the case of every violation written to the outbox more
// than Grace ago that no consumer has handled: NATS may have lost it (it
// acknowledges before fsync unless told otherwise), the relay may be stuck,
// or the message may have been parked. PostgreSQL decides: the outbox row
// is the violation, the inbox row says it was handled. It returns how many
// cases it opened.
func (t *Tracker) Reconcile(ctx context.Context, cfg ReconcileConfig) (int, error) {
	cfg.setDefaults()
	now := t.now()
	list, err := t.unhandledViolations(ctx, now.Add(-cfg.Lookback), now.Add(-cfg.Grace))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range list {
		var ev eventsv1.ViolationReported
		if err := proto.Unmarshal(p.Payload, &ev); err != nil {
			t.log.Error("outbox violation row cannot be decoded", "event_id", p.EventID, "err", err)
			if err := t.markUnusable(ctx, p.EventID, p.Subject); err != nil {
				return n, err
			}
			continue
		}
		ev.EventId = p.EventID
		out, err := t.OpenFromViolation(ctx, &ev, Source{Subject: p.Subject, Kind: "reconciler"})
		var poison *PoisonError
		if errors.As(err, &poison) {
			t.log.Error("outbox violation row is unusable", "event_id", p.EventID, "reason", poison.Reason)
			if err := t.markUnusable(ctx, p.EventID, p.Subject); err != nil {
				return n, err
			}
			continue
		}
		if err != nil {
			return n, err
		}
		if out.Created {
			n++
			casesOpened.WithLabelValues("reconciler", "created").Inc()
			t.log.Warn("violation had no case after the grace period; opened by the reconciler",
				"event_id", p.EventID, "case_id", out.CaseID)
		}
	}
	return n, nil
}

// maxReconcileBatch bounds how many unhandled violations one round opens.
const maxReconcileBatch = 1000

// unhandledViolations lists the violations the outbox holds from the
// window (after, before) that have no inbox row, oldest first. The outbox
// owns its table, so the events come from its Go API a page at a time and
// are checked against the inbox here.
func (t *Tracker) unhandledViolations(ctx context.Context, after, before time.Time) ([]outbox.StoredEvent, error) {
	var out []outbox.StoredEvent
	q := outbox.EventsQuery{Stream: messaging.StreamViolations, CreatedAfter: after, CreatedBefore: before}
	for len(out) < maxReconcileBatch {
		page, err := outbox.ListEvents(ctx, t.pool, q)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return out, nil
		}
		ids := make([]string, len(page))
		for i, e := range page {
			ids[i] = e.EventID
		}
		rows, err := t.pool.Query(ctx, `SELECT event_id::text FROM cases.inbox WHERE event_id = ANY ($1::uuid[])`, ids)
		if err != nil {
			return nil, err
		}
		handled, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		seen := make(map[string]bool, len(handled))
		for _, id := range handled {
			seen[id] = true
		}
		for _, e := range page {
			if !seen[e.EventID] && len(out) < maxReconcileBatch {
				out = append(out, e)
			}
		}
		q.AfterSeq = page[len(page)-1].Seq
	}
	return out, nil
}

// markUnusable records in the inbox that an event can never become a case,
// so that the reconciler reports it once instead of every round; the
// report stays in the field service for an operator to look at.
func (t *Tracker) markUnusable(ctx context.Context, eventID, subject string) error {
	_, err := t.pool.Exec(ctx, `INSERT INTO cases.inbox (event_id, subject, source) VALUES ($1, $2, 'unusable')
		ON CONFLICT (event_id) DO NOTHING`, eventID, subject)
	return err
}

// BackgroundConfig sets how often the periodic jobs run.
type BackgroundConfig struct {
	SweepInterval     time.Duration // overdue escalation (default 1 minute)
	ReconcileInterval time.Duration // reconciliation (default 1 minute)
	Reconcile         ReconcileConfig
}

// RunBackground runs the overdue sweeper and the reconciler until ctx
// ends. Failures are logged and retried at the next tick.
func (t *Tracker) RunBackground(ctx context.Context, cfg BackgroundConfig) error {
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Minute
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = time.Minute
	}
	sweep := time.NewTicker(cfg.SweepInterval)
	defer sweep.Stop()
	reconcile := time.NewTicker(cfg.ReconcileInterval)
	defer reconcile.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sweep.C:
			if n, err := t.EscalateOverdue(ctx); err != nil && ctx.Err() == nil {
				t.log.Error("overdue sweep failed", "err", err, "escalated", n)
			} else if n > 0 {
				t.log.Info("overdue cases escalated", "escalated", n)
			}
		case <-reconcile.C:
			if _, err := t.Reconcile(ctx, cfg.Reconcile); err != nil && ctx.Err() == nil {
				t.log.Error("reconciliation failed", "err", err)
			}
		}
	}
}
