package cases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/structerr"
)

// caseColumns are read by scanCase, in order.
const caseColumns = `c.id::text, c.report_id::text, c.violation_event_id::text, c.county_code, c.township_code,
	c.village_code, c.node_code, c.category, c.severity, c.description, ST_Y(c.location), ST_X(c.location),
	c.reporter_id, c.photo_sha256, c.responsible, c.observed_at, c.reported_at, c.state, c.supervisor_id,
	c.handler_id, c.dispatched_at, c.deadline, c.extension_days, c.pending_extension_days,
	c.pending_extension_reason, c.pending_extension_by, c.rectification_note, c.rectification_photos,
	c.rectified_at, c.verified_by, c.verified_at, c.closed_at, c.escalated_at, c.escalation_reason,
	c.reopen_count, c.created_at, c.updated_at, c.version, c.zone_codes, c.reach_codes, c.zone_deadline`

func scanCase(row pgx.Row) (*Case, error) {
	var c Case
	var lat, lon *float64
	var responsible []byte
	var state string
	err := row.Scan(&c.ID, &c.ReportID, &c.ViolationEventID, &c.CountyCode, &c.TownshipCode,
		&c.VillageCode, &c.NodeCode, &c.Category, &c.Severity, &c.Description, &lat, &lon,
		&c.ReporterID, &c.PhotoSHA256, &responsible, &c.ObservedAt, &c.ReportedAt, &state, &c.SupervisorID,
		&c.HandlerID, &c.DispatchedAt, &c.Deadline, &c.ExtensionDays, &c.PendingExtensionDays,
		&c.PendingExtensionReason, &c.PendingExtensionBy, &c.RectificationNote, &c.RectificationPhotos,
		&c.RectifiedAt, &c.VerifiedBy, &c.VerifiedAt, &c.ClosedAt, &c.EscalatedAt, &c.EscalationReason,
		&c.ReopenCount, &c.CreatedAt, &c.UpdatedAt, &c.Version, &c.ZoneCodes, &c.ReachCodes, &c.ZoneDeadline)
	if err != nil {
		return nil, err
	}
	c.State = State(state)
	if lat != nil && lon != nil {
		c.Latitude, c.Longitude, c.HasLocation = *lat, *lon, true
	}
	if len(responsible) > 0 {
		if err := json.Unmarshal(responsible, &c.Responsible); err != nil {
			return nil, fmt.Errorf("case %s: responsible: %w", c.ID, err)
		}
	}
	return &c, nil
}

// getCase reads a case; forUpdate locks it until the transaction ends so
// transitions on one case are serialised.
func getCase(ctx context.Context, q database.Querier, id string, forUpdate bool) (*Case, error) {
	sql := `SELECT ` + caseColumns + ` FROM cases.cases c WHERE c.id = $1`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	c, err := scanCase(q.QueryRow(ctx, sql, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, structerr.NewNotFound("case %s not found", id)
	}
	return c, err
}

// queueInboxAndCase queues one statement that records the event in the
// inbox and stores its case. Its one row is true only when it created the case:
// false means the event was handled before, or its report already has a
// case (the case id derives from the report id, so the inbox row names the
// right case either way).
func queueInboxAndCase(b *pgx.Batch, c *Case, src Source) {
	responsible := []byte("[]")
	if len(c.Responsible) > 0 {
		responsible, _ = json.Marshal(c.Responsible) // plain strings: cannot fail
	}
	var lat, lon *float64
	if c.HasLocation {
		lat, lon = &c.Latitude, &c.Longitude
	}
	var seq *int64
	if src.StreamSeq > 0 {
		s := int64(src.StreamSeq)
		seq = &s
	}
	b.Queue(`
		WITH inbox AS (
			INSERT INTO cases.inbox (event_id, case_id, subject, source, stream_seq) VALUES ($3, $1, $22, $23, $24)
			ON CONFLICT (event_id) DO NOTHING
			RETURNING event_id
		), created AS (
			INSERT INTO cases.cases (id, report_id, violation_event_id, county_code, township_code, village_code,
				node_code, category, severity, description, location, reporter_id, photo_sha256, responsible,
				observed_at, reported_at, state, escalated_at, escalation_reason, created_at, updated_at,
				zone_codes, reach_codes, zone_deadline)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
				CASE WHEN $11::float8 IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint($12::float8, $11::float8), 4326) END,
				$13, $14, $15, $16, $17, $18, $19, $20, $21, $21, $25, $26, $27
			FROM inbox
			ON CONFLICT DO NOTHING
			RETURNING id
		)
		SELECT EXISTS (SELECT 1 FROM created)`,
		c.ID, c.ReportID, c.ViolationEventID, c.CountyCode, c.TownshipCode, c.VillageCode,
		c.NodeCode, c.Category, c.Severity, c.Description, lat, lon, c.ReporterID, nonNil(c.PhotoSHA256), string(responsible),
		c.ObservedAt, c.ReportedAt, string(c.State), c.EscalatedAt, c.EscalationReason, c.CreatedAt,
		src.Subject, src.Kind, seq, nonNil(c.ZoneCodes), nonNil(c.ReachCodes), c.ZoneDeadline)
}

// updateCase writes the workflow fields of a case read FOR UPDATE.
func updateCase(ctx context.Context, tx pgx.Tx, c *Case) error {
	tag, err := tx.Exec(ctx, `
		UPDATE cases.cases SET state = $2, supervisor_id = $3, handler_id = $4, dispatched_at = $5, deadline = $6,
			extension_days = $7, pending_extension_days = $8, pending_extension_reason = $9, pending_extension_by = $10,
			rectification_note = $11, rectification_photos = $12, rectified_at = $13, verified_by = $14,
			verified_at = $15, closed_at = $16, escalated_at = $17, escalation_reason = $18, reopen_count = $19,
			updated_at = $20, version = version + 1
		WHERE id = $1 AND version = $21`,
		c.ID, string(c.State), c.SupervisorID, c.HandlerID, c.DispatchedAt, c.Deadline,
		c.ExtensionDays, c.PendingExtensionDays, c.PendingExtensionReason, c.PendingExtensionBy,
		c.RectificationNote, nonNil(c.RectificationPhotos), c.RectifiedAt, c.VerifiedBy,
		c.VerifiedAt, c.ClosedAt, c.EscalatedAt, c.EscalationReason, c.ReopenCount,
		c.UpdatedAt, c.Version)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return structerr.NewAborted("case %s was changed concurrently, retry", c.ID)
	}
	c.Version++
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// TimelineEntry is one step in a case's history.
type TimelineEntry struct {
	ID            string
	Seq           int64
	CaseID        string
	Action        Action
	From, To      State
	ActorID       string
	ActorRole     string
	ActorNodeCode string
	Note          string
	Details       map[string]any
	At            time.Time
}

// setActor names who took the step, as the ledger records it.
func (e *TimelineEntry) setActor(a Actor) {
	e.ActorID, e.ActorRole, e.ActorNodeCode = a.PersonID, a.Role, a.NodeCode
}

// queueTransition queues the insert of a timeline entry on b.
func queueTransition(b *pgx.Batch, e *TimelineEntry) error {
	details := []byte("{}")
	if e.Details != nil {
		var err error
		if details, err = json.Marshal(e.Details); err != nil {
			return err
		}
	}
	b.Queue(`
		INSERT INTO cases.transitions (id, case_id, action, from_state, to_state, actor_id, actor_role,
			actor_node_code, note, details, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		e.ID, e.CaseID, string(e.Action), string(e.From), string(e.To), e.ActorID, e.ActorRole,
		e.ActorNodeCode, e.Note, string(details), e.At)
	return nil
}

// findTransition returns the case and action a request id was used for, or
// ok=false when it is new.
func findTransition(ctx context.Context, q database.Querier, id string) (caseID string, action Action, ok bool, err error) {
	var a string
	err = q.QueryRow(ctx, `SELECT case_id::text, action FROM cases.transitions WHERE id = $1`, id).Scan(&caseID, &a)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", false, nil
	}
	return caseID, Action(a), err == nil, err
}

// timeline returns a case's transitions in order.
func timeline(ctx context.Context, q database.Querier, caseID string) ([]TimelineEntry, error) {
	rows, err := q.Query(ctx, `
		SELECT id::text, seq, case_id::text, action, from_state, to_state, actor_id, actor_role,
			actor_node_code, note, details, at
		FROM cases.transitions WHERE case_id = $1 ORDER BY seq`, caseID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (TimelineEntry, error) {
		var e TimelineEntry
		var action, from, to string
		var details []byte
		err := row.Scan(&e.ID, &e.Seq, &e.CaseID, &action, &from, &to, &e.ActorID, &e.ActorRole,
			&e.ActorNodeCode, &e.Note, &details, &e.At)
		if err != nil {
			return e, err
		}
		e.Action, e.From, e.To = Action(action), State(from), State(to)
		return e, json.Unmarshal(details, &e.Details)
	})
}

// deadlineRule returns the county's rule for a severity, falling back to
// the defaults row and then to DefaultDeadlineRules.
func deadlineRule(ctx context.Context, q database.Querier, county, severity string) (DeadlineRule, error) {
	r := DeadlineRule{Severity: severity}
	err := q.QueryRow(ctx, `
		SELECT rectify_days, max_days FROM cases.deadline_rules
		WHERE county_code IN ($1, '') AND severity = $2
		ORDER BY county_code DESC LIMIT 1`, county, severity).Scan(&r.RectifyDays, &r.MaxDays)
	if errors.Is(err, pgx.ErrNoRows) {
		if d, ok := DefaultDeadlineRules[severity]; ok {
			return d, nil
		}
		return DefaultDeadlineRules["SEVERITY_NORMAL"], nil
	}
	return r, err
}

// SetDeadlineRule sets a county's deadline rule for one severity (county ""
// sets the default for all counties).
func SetDeadlineRule(ctx context.Context, q database.Querier, county string, r DeadlineRule) error {
	if _, ok := DefaultDeadlineRules[r.Severity]; !ok {
		return structerr.NewInvalidArgument("unknown severity %.40q", r.Severity)
	}
	if r.RectifyDays < 0 || r.MaxDays < r.RectifyDays || r.MaxDays > 60 {
		return structerr.NewInvalidArgument("deadline rule must have 0 <= rectify days <= max days <= 60")
	}
	_, err := q.Exec(ctx, `
		INSERT INTO cases.deadline_rules (county_code, severity, rectify_days, max_days) VALUES ($1, $2, $3, $4)
		ON CONFLICT (county_code, severity) DO UPDATE SET rectify_days = $3, max_days = $4, updated_at = now()`,
		county, r.Severity, r.RectifyDays, r.MaxDays)
	return err
}
