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

// openingRows gathers, as columns, the inbox rows, cases and opening
// timeline entries of a batch of violations of one county, written by one
// statement (queue): a statement per row would cost the database far more
// than the rows themselves.
type openingRows struct {
	county string
	now    time.Time

	// One per event: its inbox row, and its case when candidate.
	ids, reportIDs, eventIDs                           []string
	townships, villages, nodes, categories, severities []string
	descriptions, reporters, photos, responsible       []string
	lats, lons                                         []*float64
	observed, reported, escalatedAt, zoneDeadlines     []*time.Time
	escalationReasons, zoneCodes, reachCodes           []string
	subjects, sources                                  []string
	streamSeqs                                         []*int64
	candidate                                          []bool
	stepIDs, stepCases, actions, froms, tos            []string
	actorIDs, actorRoles, actorNodes, notes, details   []string
	stepAt                                             []time.Time
}

func newOpeningRows(county string, now time.Time) *openingRows {
	return &openingRows{county: county, now: now}
}

// jsonStrings encodes a text[] column's value for the statement, which
// decodes it with jsonb_array_elements_text.
func jsonStrings(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(v) // plain strings: cannot fail
	return string(b)
}

// add adds the event of case c to the inbox rows, and c with its opening
// steps to the cases when candidate (the first event of its report in
// the batch).
func (r *openingRows) add(c *Case, src Source, candidate bool) error {
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
	r.ids, r.reportIDs, r.eventIDs = append(r.ids, c.ID), append(r.reportIDs, c.ReportID), append(r.eventIDs, c.ViolationEventID)
	r.townships, r.villages, r.nodes = append(r.townships, c.TownshipCode), append(r.villages, c.VillageCode), append(r.nodes, c.NodeCode)
	r.categories, r.severities = append(r.categories, c.Category), append(r.severities, c.Severity)
	r.descriptions, r.reporters = append(r.descriptions, c.Description), append(r.reporters, c.ReporterID)
	r.photos, r.responsible = append(r.photos, jsonStrings(c.PhotoSHA256)), append(r.responsible, string(responsible))
	r.lats, r.lons = append(r.lats, lat), append(r.lons, lon)
	r.observed, r.reported = append(r.observed, c.ObservedAt), append(r.reported, &c.ReportedAt)
	r.escalatedAt, r.escalationReasons = append(r.escalatedAt, c.EscalatedAt), append(r.escalationReasons, c.EscalationReason)
	r.zoneCodes, r.reachCodes, r.zoneDeadlines = append(r.zoneCodes, jsonStrings(c.ZoneCodes)), append(r.reachCodes, jsonStrings(c.ReachCodes)), append(r.zoneDeadlines, c.ZoneDeadline)
	r.subjects, r.sources, r.streamSeqs = append(r.subjects, src.Subject), append(r.sources, src.Kind), append(r.streamSeqs, seq)
	r.candidate = append(r.candidate, candidate)
	if !candidate {
		return nil
	}
	for _, st := range openingSteps(c, src) {
		e := st.entry
		e.setActor(SystemActor(c.CountyCode))
		details := []byte("{}")
		if e.Details != nil {
			var err error
			if details, err = json.Marshal(e.Details); err != nil {
				return err
			}
		}
		r.stepIDs, r.stepCases, r.actions = append(r.stepIDs, e.ID), append(r.stepCases, e.CaseID), append(r.actions, string(e.Action))
		r.froms, r.tos = append(r.froms, string(e.From)), append(r.tos, string(e.To))
		r.actorIDs, r.actorRoles, r.actorNodes = append(r.actorIDs, e.ActorID), append(r.actorRoles, e.ActorRole), append(r.actorNodes, e.ActorNodeCode)
		r.notes, r.details, r.stepAt = append(r.notes, e.Note), append(r.details, string(details)), append(r.stepAt, e.At)
	}
	return nil
}

// queue queues the statement that records every event in the inbox and,
// for the candidates whose event is new to the inbox, stores the case
// (unless its report already has one) and its opening timeline entries.
// When the batch's results are read, created holds the ids of the cases
// it created.
func (r *openingRows) queue(b *pgx.Batch, created map[string]bool) {
	if len(r.ids) == 0 {
		return
	}
	b.Queue(`
		WITH ev AS (
			SELECT * FROM unnest($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[],
				$9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::float8[], $15::float8[],
				$16::timestamptz[], $17::timestamptz[], $18::timestamptz[], $19::text[], $20::text[], $21::text[],
				$22::timestamptz[], $23::text[], $24::text[], $25::bigint[], $26::boolean[])
				AS e(id, report_id, event_id, township, village, node, category, severity, description, reporter,
				photos, responsible, lat, lon, observed_at, reported_at, escalated_at, escalation_reason,
				zone_codes, reach_codes, zone_deadline, subject, source, stream_seq, candidate)
		), inbox AS (
			INSERT INTO cases.inbox (event_id, case_id, subject, source, stream_seq)
			SELECT event_id, id, subject, source, stream_seq FROM ev
			ON CONFLICT (event_id) DO NOTHING
			RETURNING event_id
		), created AS (
			INSERT INTO cases.cases (id, report_id, violation_event_id, county_code, township_code, village_code,
				node_code, category, severity, description, location, reporter_id, photo_sha256, responsible,
				observed_at, reported_at, state, escalated_at, escalation_reason, created_at, updated_at,
				zone_codes, reach_codes, zone_deadline)
			SELECT e.id, e.report_id, e.event_id, $1, e.township, e.village, e.node, e.category, e.severity, e.description,
				CASE WHEN e.lat IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(e.lon, e.lat), 4326) END,
				e.reporter,
				CASE WHEN e.photos = '[]' THEN '{}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(e.photos::jsonb)) END,
				e.responsible::jsonb, e.observed_at, e.reported_at, 'reported', e.escalated_at, e.escalation_reason,
				$27, $27,
				CASE WHEN e.zone_codes = '[]' THEN '{}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(e.zone_codes::jsonb)) END,
				CASE WHEN e.reach_codes = '[]' THEN '{}'::text[] ELSE ARRAY(SELECT jsonb_array_elements_text(e.reach_codes::jsonb)) END,
				e.zone_deadline
			FROM ev e
			WHERE e.candidate AND e.event_id IN (SELECT event_id FROM inbox)
			ON CONFLICT DO NOTHING
			RETURNING id
		), steps AS (
			INSERT INTO cases.transitions (id, case_id, action, from_state, to_state, actor_id, actor_role,
				actor_node_code, note, details, at)
			SELECT s.id, s.case_id, s.action, s.from_state, s.to_state, s.actor_id, s.actor_role, s.actor_node,
				s.note, s.details::jsonb, s.at
			FROM unnest($28::uuid[], $29::uuid[], $30::text[], $31::text[], $32::text[], $33::text[], $34::text[],
				$35::text[], $36::text[], $37::text[], $38::timestamptz[]) WITH ORDINALITY
				AS s(id, case_id, action, from_state, to_state, actor_id, actor_role, actor_node, note, details, at, ord)
			WHERE s.case_id IN (SELECT id FROM created)
			ORDER BY s.ord
		)
		SELECT id::text FROM created`,
		r.county, r.ids, r.reportIDs, r.eventIDs, r.townships, r.villages, r.nodes, r.categories, r.severities,
		r.descriptions, r.reporters, r.photos, r.responsible, r.lats, r.lons, r.observed, r.reported, r.escalatedAt,
		r.escalationReasons, r.zoneCodes, r.reachCodes, r.zoneDeadlines, r.subjects, r.sources, r.streamSeqs, r.candidate,
		r.now,
		r.stepIDs, r.stepCases, r.actions, r.froms, r.tos, r.actorIDs, r.actorRoles, r.actorNodes, r.notes, r.details, r.stepAt,
	).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			created[id] = true
		}
		return rows.Err()
	})
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
