package field

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// This file is field's Go API for the cases context, which lies above it:
// checking a violation event against what field committed, and linking
// photos to a case as evidence. Cases calls these; it never reads field's
// tables itself.

// StoredViolation is a violation report as field committed it: what a
// violation event on the bus must match before a case is opened for it.
type StoredViolation struct {
	EventID      string
	ReportID     string
	CountyCode   string
	TownshipCode string
	VillageCode  string
	ReporterID   string
	Category     string
	Severity     Severity
	Description  string
	Latitude     float64
	Longitude    float64
	ObservedAt   time.Time
	ReceivedAt   time.Time
	PhotoSHA256  []string
	// Places are the zones and reaches stored with the report, and what
	// the zone rules decided.
	Places Places
}

// LookupViolation returns the violation report whose outbox event id is
// eventID, or NotFound when field committed no violation with that event
// (a forged or foreign event).
func LookupViolation(ctx context.Context, q database.Querier, eventID string) (StoredViolation, error) {
	if _, err := checkUUID("event_id", eventID); err != nil {
		return StoredViolation{}, err
	}
	found, err := LookupViolations(ctx, q, []string{eventID})
	if err != nil {
		return StoredViolation{}, err
	}
	v, ok := found[strings.ToLower(eventID)]
	if !ok {
		return StoredViolation{}, structerr.NewNotFound("no violation with event %s was recorded", eventID)
	}
	return v, nil
}

// LookupViolations is LookupViolation for many event ids in one query (a
// batch of cased's case transaction): the violations found, by event id in
// lower case; ids not recorded, or not uuids, are absent.
func LookupViolations(ctx context.Context, q database.Querier, eventIDs []string) (map[string]StoredViolation, error) {
	ids := violationIDs(eventIDs)
	out := make(map[string]StoredViolation, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, lookupViolationsSQL, ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return out, scanViolations(rows, out)
}

// QueueLookupViolations queues on b the query of LookupViolations; the
// violations found are put into out when b's results are read (with
// pgx's batch callbacks), so the read can share a round trip with other
// statements (cased sends it with its transaction's BEGIN).
func QueueLookupViolations(b *pgx.Batch, eventIDs []string, out map[string]StoredViolation) {
	ids := violationIDs(eventIDs)
	if len(ids) == 0 {
		return
	}
	b.Queue(lookupViolationsSQL, ids).Query(func(rows pgx.Rows) error { return scanViolations(rows, out) })
}

func violationIDs(eventIDs []string) []string {
	ids := make([]string, 0, len(eventIDs))
	for _, id := range eventIDs {
		if _, err := checkUUID("event_id", id); err == nil {
			ids = append(ids, strings.ToLower(id))
		}
	}
	return ids
}

const lookupViolationsSQL = `SELECT event_id::text, id::text, county_code, coalesce(township_code, ''),
		coalesce(village_code, ''), reporter_id, category, severity, description,
		ST_Y(position), ST_X(position), observed_at, received_at, photo_sha256,
		zone_codes, reach_codes, reach_versions, escalate_now, zone_deadline, zone_reason, reported_severity
	FROM field.reports WHERE event_id = ANY($1::uuid[]) AND violation`

func scanViolations(rows pgx.Rows, out map[string]StoredViolation) error {
	for rows.Next() {
		var v StoredViolation
		var sev int16
		var reached []string
		var versions []int32
		var reported *int16
		if err := rows.Scan(&v.EventID, &v.ReportID, &v.CountyCode, &v.TownshipCode, &v.VillageCode, &v.ReporterID,
			&v.Category, &sev, &v.Description, &v.Latitude, &v.Longitude, &v.ObservedAt, &v.ReceivedAt, &v.PhotoSHA256,
			&v.Places.ZoneCodes, &reached, &versions, &v.Places.EscalateNow, &v.Places.Deadline, &v.Places.Reason, &reported); err != nil {
			return err
		}
		v.Severity = Severity(sev)
		v.Places.setReaches(reached, versions, reported)
		out[v.EventID] = v
	}
	return rows.Err()
}

// Evidence is a set of photos a case step cites.
type Evidence struct {
	CaseID      string
	CountyCode  string
	NodeCode    string // the case's grid node: whoever's scope covers it may download the photos
	SubmittedBy string // person id of whoever submits the step
	PhotoSHA256 []string
}

// LinkEvidence checks that every photo is real evidence — a completed
// upload whose bytes the submitter sent (not a hash they merely know), or a
// photo of a report of the same county — and links it to the case within
// tx, so that everyone who may see the case can download it. A photo that
// is not such evidence is FailedPrecondition naming it; nothing is linked
// then.
func LinkEvidence(ctx context.Context, tx pgx.Tx, e Evidence) error {
	for _, raw := range e.PhotoSHA256 {
		sum := strings.ToLower(raw)
		if !sha256Hex.MatchString(sum) {
			return structerr.NewInvalidArgument("photo %.40q is not a SHA-256 in hex", raw)
		}
		var ok bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM field.photos p WHERE p.sha256 = $1 AND (
				EXISTS (SELECT 1 FROM field.uploads u WHERE u.sha256 = p.sha256 AND u.uploader_id = $2
					AND u.completed_at IS NOT NULL AND NOT u.deduplicated)
				OR EXISTS (SELECT 1 FROM field.reports r WHERE r.county_code = $3 AND p.sha256 = ANY (r.photo_sha256)
					AND EXISTS (SELECT 1 FROM field.uploads u WHERE u.sha256 = p.sha256 AND u.uploader_id = r.reporter_id
						AND u.completed_at IS NOT NULL AND NOT u.deduplicated))))`,
			sum, e.SubmittedBy, e.CountyCode).Scan(&ok)
		if err != nil {
			return err
		}
		if !ok {
			return structerr.NewFailedPrecondition("photo %s was uploaded neither by you nor to a report of this county: upload it first", sum[:12])
		}
		if _, err := tx.Exec(ctx, `INSERT INTO field.case_evidence (case_id, sha256, county_code, node_code, submitted_by)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (case_id, sha256) DO NOTHING`,
			e.CaseID, sum, e.CountyCode, e.NodeCode, e.SubmittedBy); err != nil {
			return err
		}
	}
	return nil
}

// evidenceVisible reports whether photo sum is evidence of a case at a
// node the caller's scope covers.
func evidenceVisible(ctx context.Context, q database.Querier, c scope.Caller, sum string) (bool, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT node_code FROM field.case_evidence WHERE sha256 = $1`, sum)
	if err != nil {
		return false, err
	}
	nodes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(nodes, func(n string) bool { return n != "" && c.Covers(n) }), nil
}
