package field

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/coord"
	"ecogrid/internal/database"
	"ecogrid/internal/ledger"
	"ecogrid/internal/messaging"
	"ecogrid/internal/outbox"
	"ecogrid/internal/pagetoken"
)

// errReportExists is returned by insertReport when the id is taken.
var errReportExists = errors.New("report id exists")

func nullText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func point(lat, lon float64) *geom.Point {
	return geom.NewPointFlat(geom.XY, []float64{lon, lat})
}

// insertReport stores r and returns the server's receive time.
func insertReport(ctx context.Context, tx database.Querier, r *Report, reqHash []byte) (time.Time, error) {
	sql, args := reportInsert(r, reqHash)
	return scanReceived(tx.QueryRow(ctx, sql, args...))
}

// reportInsert is the statement insertReport runs, for queuing on a batch
// (the violations' group commit); scanReceived reads its result.
func reportInsert(r *Report, reqHash []byte) (string, []any) {
	photos := r.PhotoSHA256
	if photos == nil {
		photos = []string{}
	}
	return `
		INSERT INTO field.reports (id, request_hash, reporter_id, county_code, township_code, village_code,
			cell_code, category, severity, description, observed_at, position, orig_lat, orig_lon,
			orig_system, accuracy_m, patrol_id, photo_sha256, violation, outside_area, event_id,
			zone_codes, reach_codes, reach_versions, escalate_now, zone_deadline, zone_reason, reported_severity)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
			$22, $23, $24, $25, $26, $27, $28)
		ON CONFLICT (id) DO NOTHING
		RETURNING received_at`, append([]any{
			r.ID, reqHash, r.ReporterID, r.Location.CountyCode, nullText(r.Location.TownshipCode),
			nullText(r.Location.VillageCode), r.Location.Cell(), r.Category, int16(r.Severity), r.Description,
			r.ObservedAt, point(r.Lat, r.Lon), r.Position.Lat, r.Position.Lon, int16(r.Position.System),
			r.Position.AccuracyM, nullText(r.PatrolID), photos, r.Violation, r.OutsideArea, nullText(r.EventID),
		}, placeValues(r)...)
}

func scanReceived(row pgx.Row) (time.Time, error) {
	var received time.Time
	err := row.Scan(&received)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, errReportExists
	}
	return received, err
}

const reportColumns = `r.id::text, r.request_hash, r.reporter_id, r.county_code, coalesce(r.township_code, ''),
	coalesce(r.village_code, ''), r.category, r.severity, r.description, r.observed_at, r.received_at,
	ST_Y(r.position), ST_X(r.position), r.orig_lat, r.orig_lon, r.orig_system, r.accuracy_m,
	coalesce(r.patrol_id::text, ''), r.photo_sha256, r.violation, r.outside_area, coalesce(r.event_id::text, ''),
	coalesce((SELECT array_agg(p.sha256 ORDER BY p.sha256) FROM field.report_photos p
	          WHERE p.report_id = r.id AND p.exif_mismatch), '{}'),
	r.zone_codes, r.reach_codes, r.reach_versions, r.escalate_now, r.zone_deadline, r.zone_reason, r.reported_severity`

func scanReport(row pgx.Row) (Report, []byte, error) {
	var r Report
	var reqHash []byte
	var sev, sys int16
	var reachCodes []string
	var reachVersions []int32
	var reported *int16
	err := row.Scan(&r.ID, &reqHash, &r.ReporterID, &r.Location.CountyCode, &r.Location.TownshipCode,
		&r.Location.VillageCode, &r.Category, &sev, &r.Description, &r.ObservedAt, &r.ReceivedAt,
		&r.Lat, &r.Lon, &r.Position.Lat, &r.Position.Lon, &sys, &r.Position.AccuracyM,
		&r.PatrolID, &r.PhotoSHA256, &r.Violation, &r.OutsideArea, &r.EventID, &r.ExifMismatch,
		&r.Places.ZoneCodes, &reachCodes, &reachVersions, &r.Places.EscalateNow, &r.Places.Deadline, &r.Places.Reason, &reported)
	r.Severity = Severity(sev)
	r.Places.setReaches(reachCodes, reachVersions, reported)
	r.Position.System = coord.System(sys)
	r.ObservedAt = r.ObservedAt.UTC()
	r.ReceivedAt = r.ReceivedAt.UTC()
	return r, reqHash, err
}

func getReport(ctx context.Context, q database.Querier, id string) (Report, []byte, error) {
	return scanReport(q.QueryRow(ctx, `SELECT `+reportColumns+` FROM field.reports r WHERE r.id = $1`, id))
}

func categoryExists(ctx context.Context, q database.Querier, county, code string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM field.categories
		WHERE code = $2 AND (county_code = '' OR county_code = $1))`, county, code).Scan(&ok)
	return ok, err
}

func listCategories(ctx context.Context, q database.Querier, county string) ([]Category, error) {
	rows, err := q.Query(ctx, `SELECT county_code, code, name FROM field.categories
		WHERE county_code = '' OR county_code = $1 ORDER BY county_code, code`, county)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Category, error) {
		var c Category
		err := row.Scan(&c.CountyCode, &c.Code, &c.Name)
		return c, err
	})
}

func insertCategory(ctx context.Context, q database.Querier, c Category, by string) error {
	_, err := q.Exec(ctx, `INSERT INTO field.categories (county_code, code, name, created_by)
		VALUES ($1, $2, $3, $4)`, c.CountyCode, c.Code, c.Name, by)
	return err
}

// enqueueViolationEvent writes the ViolationReported outbox event of a
// report stored with r.EventID, in the report's transaction.
func enqueueViolationEvent(ctx context.Context, tx pgx.Tx, r *Report, responsible []ledger.Responsible) error {
	b := &pgx.Batch{}
	if err := queueViolationEvent(b, r, responsible); err != nil {
		return err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("outbox: writing %s: %w", outbox.EventViolationReported, err)
	}
	return nil
}

// queueViolationEvent queues enqueueViolationEvent's insert on b.
func queueViolationEvent(b *pgx.Batch, r *Report, responsible []ledger.Responsible) error {
	ev := &eventsv1.ViolationReported{
		EventId:      r.EventID,
		ReportId:     r.ID,
		CountyCode:   r.Location.CountyCode,
		TownshipCode: r.Location.TownshipCode,
		VillageCode:  r.Location.VillageCode,
		ReporterId:   r.ReporterID,
		Category:     r.Category,
		Severity:     r.Severity.String(),
		Description:  r.Description,
		Latitude:     r.Lat,
		Longitude:    r.Lon,
		ObservedAt:   timestamppb.New(r.ObservedAt),
		ReceivedAt:   timestamppb.New(r.ReceivedAt),
		PhotoSha256:  r.PhotoSHA256,
		ZoneCodes:    r.Places.ZoneCodes,
	}
	if r.Places.EscalateNow {
		ev.EscalateNow = &r.Places.EscalateNow
	}
	if r.Places.Deadline != nil {
		ev.Deadline = timestamppb.New(*r.Places.Deadline)
	}
	for _, p := range responsible {
		ev.Responsible = append(ev.Responsible, &eventsv1.ResponsiblePerson{
			PersonId: p.PersonID, Name: p.Name, Role: p.Role, NodeCode: p.NodeCode,
		})
	}
	id, err := uuid.Parse(r.EventID)
	if err != nil {
		return fmt.Errorf("violation event id %q: %w", r.EventID, err)
	}
	county := r.Location.CountyCode
	return outbox.QueueEnqueue(b, county, messaging.ViolationSubject(county), outbox.EventViolationReported, id, ev)
}

// PhotoMeta is a stored photo's metadata.
type PhotoMeta struct {
	SHA256      string
	Size        int64
	ContentType string
	Width       int
	Height      int
	ExifLat     *float64
	ExifLon     *float64
	ExifTime    *time.Time
}

func getPhotos(ctx context.Context, q database.Querier, sums []string) ([]PhotoMeta, error) {
	rows, err := q.Query(ctx, `SELECT sha256, size, content_type, width, height, exif_lat, exif_lon, exif_time
		FROM field.photos WHERE sha256 = ANY($1) ORDER BY sha256`, sums)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (PhotoMeta, error) {
		var p PhotoMeta
		err := row.Scan(&p.SHA256, &p.Size, &p.ContentType, &p.Width, &p.Height, &p.ExifLat, &p.ExifLon, &p.ExifTime)
		return p, err
	})
}

func upsertReportPhoto(ctx context.Context, q database.Querier, reportID, sum string, m ExifCheck) error {
	_, err := q.Exec(ctx, `INSERT INTO field.report_photos (report_id, sha256, distance_m, time_delta_s, exif_mismatch)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (report_id, sha256) DO UPDATE SET distance_m = EXCLUDED.distance_m,
			time_delta_s = EXCLUDED.time_delta_s, exif_mismatch = EXCLUDED.exif_mismatch, checked_at = now()`,
		reportID, sum, m.DistanceM, m.TimeDeltaS, m.Mismatch)
	return err
}

// pageKey is the keyset position of ListReports: the last row's sort key.
type pageKey struct {
	ReceivedAt time.Time
	ID         string
}

func encodePageToken(k pageKey) string { return pagetoken.EncodeTimeID(k.ReceivedAt, k.ID) }

func decodePageToken(s string) (pageKey, error) {
	at, id, err := pagetoken.DecodeTimeID(s)
	return pageKey{ReceivedAt: at, ID: id}, err
}

// reportQuery builds the WHERE clause shared by lists and exports: visible
// to the caller (cell under one of roots, or filed by own) and matching fl.
func reportQuery(roots []string, own string, fl ReportFilter) (string, []any) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	var vis []string
	if len(roots) > 0 {
		patterns := make([]string, len(roots))
		for i, r := range roots {
			patterns[i] = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(r) + "%"
		}
		vis = append(vis, "r.cell_code LIKE ANY ("+arg(patterns)+"::text[])")
	}
	if own != "" {
		vis = append(vis, "r.reporter_id = "+arg(own))
	}
	where = append(where, "("+strings.Join(vis, " OR ")+")")
	if fl.NodeCode != "" {
		where = append(where, "r.cell_code LIKE "+arg(fl.NodeCode+"%"))
	}
	if !fl.ObservedFrom.IsZero() {
		where = append(where, "r.observed_at >= "+arg(fl.ObservedFrom))
	}
	if !fl.ObservedTo.IsZero() {
		where = append(where, "r.observed_at < "+arg(fl.ObservedTo))
	}
	if fl.Category != "" {
		where = append(where, "r.category = "+arg(fl.Category))
	}
	if fl.ReporterID != "" {
		where = append(where, "r.reporter_id = "+arg(fl.ReporterID))
	}
	if fl.Violation != nil {
		where = append(where, "r.violation = "+arg(*fl.Violation))
	}
	return strings.Join(where, " AND "), args
}

func listReports(ctx context.Context, q database.Querier, roots []string, own string, fl ReportFilter, after *pageKey, limit int) ([]Report, error) {
	where, args := reportQuery(roots, own, fl)
	if after != nil {
		args = append(args, after.ReceivedAt, after.ID)
		where += fmt.Sprintf(" AND (r.received_at, r.id) < ($%d, $%d::uuid)", len(args)-1, len(args))
	}
	args = append(args, limit)
	rows, err := q.Query(ctx, `SELECT `+reportColumns+` FROM field.reports r WHERE `+where+
		fmt.Sprintf(` ORDER BY r.received_at DESC, r.id DESC LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Report
	for rows.Next() {
		r, _, err := scanReport(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
