package field

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"ecogrid/internal/coord"
	"ecogrid/internal/database"
	"ecogrid/internal/ledger"
	"ecogrid/internal/people"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
	"ecogrid/internal/textcheck"
)

// Severity of an observed problem; the values match ecogrid.v1.Severity.
type Severity int

// Severities.
const (
	SeverityMinor    Severity = 1
	SeverityNormal   Severity = 2
	SeveritySerious  Severity = 3
	SeverityCritical Severity = 4
)

// String returns the ecogrid.v1.Severity value name used in events.
func (s Severity) String() string {
	switch s {
	case SeverityMinor:
		return "SEVERITY_MINOR"
	case SeverityNormal:
		return "SEVERITY_NORMAL"
	case SeveritySerious:
		return "SEVERITY_SERIOUS"
	case SeverityCritical:
		return "SEVERITY_CRITICAL"
	}
	return "SEVERITY_UNSPECIFIED"
}

// Position is a geotag as the device reported it.
type Position struct {
	Lat, Lon  float64
	System    coord.System
	AccuracyM float64
}

// check validates p and returns its WGS-84 latitude and longitude.
func (p Position) check(maxAccuracy float64) (lat, lon float64, err error) {
	if !p.System.Valid() {
		return 0, 0, structerr.NewInvalidArgument("position: coordinate system is not given (want WGS-84, GCJ-02 or BD-09)").WithField("position.coordinate_system")
	}
	if math.IsNaN(p.AccuracyM) || math.IsInf(p.AccuracyM, 0) || p.AccuracyM < 0 || p.AccuracyM > maxAccuracy {
		return 0, 0, structerr.NewInvalidArgument("position: accuracy %g m is not between 0 and %g m", p.AccuracyM, maxAccuracy).WithField("position.accuracy_m")
	}
	if p.Lat == 0 && p.Lon == 0 {
		return 0, 0, structerr.NewInvalidArgument("position: latitude and longitude are both 0 (no GPS fix)").WithField("position")
	}
	lat, lon, err = coord.ToWGS84(p.Lat, p.Lon, p.System)
	if err != nil {
		return 0, 0, structerr.NewInvalidArgument("position: %v", err).WithField("position")
	}
	return lat, lon, nil
}

// Draft is a report as the phone app files it.
type Draft struct {
	ID          string
	ObservedAt  time.Time
	Category    string
	Severity    Severity
	Description string
	Position    Position
	PatrolID    string
	PhotoSHA256 []string
	Violation   bool
}

// Report is a filed report.
type Report struct {
	Draft
	ReporterID   string
	ReceivedAt   time.Time
	Lat, Lon     float64 // WGS-84
	Location     Location
	OutsideArea  bool
	ExifMismatch []string // photos whose EXIF disagrees with the report
	EventID      string   // outbox event of a violation
	// Places are the protected zones and river reaches of the report.
	Places Places
}

var (
	categoryCode = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)
	sha256Hex    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	gridCode     = regexp.MustCompile(`^[0-9]{6,40}$`)
)

func checkUUID(what, id string) (uuid.UUID, error) {
	if id == "" {
		return uuid.Nil, structerr.NewInvalidArgument("%s is missing (a client-generated UUID)", what).WithField(what)
	}
	u, err := uuid.Parse(id)
	if err != nil || u == uuid.Nil || len(id) != 36 {
		return uuid.Nil, structerr.NewInvalidArgument("%s %.40q is not a UUID", what, id).WithField(what)
	}
	return u, nil
}

// normalize checks a draft and brings it to canonical form (lower-case
// ids, deduplicated photo hashes) so that a replay hashes the same.
func (rs *Reports) normalize(d *Draft, now time.Time) error {
	if _, err := checkUUID("report_id", d.ID); err != nil {
		return err
	}
	d.ID = strings.ToLower(d.ID)
	if d.ObservedAt.IsZero() {
		return structerr.NewInvalidArgument("observed_at is missing").WithField("observed_at")
	}
	if d.ObservedAt.After(now.Add(rs.cfg.MaxClockSkew)) {
		return structerr.NewInvalidArgument("observed_at %s is in the future (server time %s): check the phone's clock",
			d.ObservedAt.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)).WithField("observed_at")
	}
	if d.ObservedAt.Before(now.Add(-rs.cfg.MaxReportAge)) {
		return structerr.NewInvalidArgument("observed_at %s is more than %d days ago",
			d.ObservedAt.UTC().Format(time.RFC3339), int(rs.cfg.MaxReportAge.Hours()/24)).WithField("observed_at")
	}
	d.ObservedAt = d.ObservedAt.UTC().Truncate(time.Microsecond)
	if !categoryCode.MatchString(d.Category) {
		return structerr.NewInvalidArgument("category %.40q is not a category code", d.Category).WithField("category")
	}
	if d.Severity < SeverityMinor || d.Severity > SeverityCritical {
		return structerr.NewInvalidArgument("severity is missing or unknown").WithField("severity")
	}
	if !utf8.ValidString(d.Description) {
		return structerr.NewInvalidArgument("description is not valid UTF-8").WithField("description")
	}
	if n := utf8.RuneCountInString(d.Description); n > rs.cfg.MaxDescriptionRunes {
		return structerr.NewInvalidArgument("description has %d characters, at most %d are allowed", n, rs.cfg.MaxDescriptionRunes).WithField("description")
	}
	if err := textcheck.Text("description", d.Description); err != nil {
		return err
	}
	if d.PatrolID != "" {
		if _, err := checkUUID("patrol_id", d.PatrolID); err != nil {
			return err
		}
		d.PatrolID = strings.ToLower(d.PatrolID)
	}
	if len(d.PhotoSHA256) > rs.cfg.MaxPhotosPerReport {
		return structerr.NewInvalidArgument("%d photos, at most %d per report", len(d.PhotoSHA256), rs.cfg.MaxPhotosPerReport).WithField("photo_sha256")
	}
	photos := make([]string, 0, len(d.PhotoSHA256))
	for _, h := range d.PhotoSHA256 {
		h = strings.ToLower(h)
		if !sha256Hex.MatchString(h) {
			return structerr.NewInvalidArgument("photo reference %.70q is not a SHA-256 in hex", h).WithField("photo_sha256")
		}
		if !slices.Contains(photos, h) {
			photos = append(photos, h)
		}
	}
	d.PhotoSHA256 = photos
	_, _, err := d.Position.check(rs.cfg.MaxAccuracyM)
	return err
}

// hash is the idempotency fingerprint of a normalized draft: the same id
// with the same content is a replay, with other content a conflict.
func (d *Draft) hash(reporterID string) []byte {
	h := sha256.New()
	str := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	num := func(v uint64) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], v)
		h.Write(n[:])
	}
	str("report/v1")
	str(reporterID)
	str(d.ID)
	num(uint64(d.ObservedAt.UnixMicro()))
	str(d.Category)
	num(uint64(d.Severity))
	str(d.Description)
	num(math.Float64bits(d.Position.Lat))
	num(math.Float64bits(d.Position.Lon))
	num(uint64(d.Position.System))
	num(math.Float64bits(d.Position.AccuracyM))
	str(d.PatrolID)
	num(uint64(len(d.PhotoSHA256)))
	for _, p := range d.PhotoSHA256 {
		str(p)
	}
	if d.Violation {
		num(1)
	} else {
		num(0)
	}
	return h.Sum(nil)
}

// outsideArea reports whether code is outside the cells the caller
// patrols: their inspector grants, or any grant when they hold none.
func outsideArea(c scope.Caller, code string) bool {
	if code == "" {
		return true
	}
	if c.HasRole(scope.RoleInspector) {
		return !c.Covers(code, scope.RoleInspector)
	}
	return !c.Covers(code)
}

// actingGrant names the role and node an act by c at code is recorded under.
func actingGrant(c scope.Caller, code string) scope.Grant {
	if g, ok := c.GrantFor(code); ok {
		return g
	}
	if len(c.Grants) > 0 {
		return c.Grants[0]
	}
	return scope.Grant{}
}

// homeCounty is the county of the caller's first grant, where a report
// that falls outside the grid is kept.
func homeCounty(c scope.Caller) string {
	for _, g := range c.Grants {
		if len(g.NodeCode) >= 6 {
			return g.NodeCode[:6]
		}
	}
	return ""
}

// SubmitReport files a report. A replay of an earlier submission (same id,
// same content) returns the stored report with replayed=true; the same id
// with different content is AlreadyExists.
func (rs *Reports) SubmitReport(ctx context.Context, c scope.Caller, d Draft) (Report, bool, error) {
	if c.PersonID == "" {
		return Report{}, false, structerr.NewUnauthenticated("no caller")
	}
	if _, err := checkUUID("report_id", d.ID); err != nil {
		return Report{}, false, err
	}
	d.ID = strings.ToLower(d.ID)
	orig := d
	now := rs.now()
	if err := rs.normalize(&d, now); err != nil {
		// An offline queue replayed long after may fail today's checks
		// (observed_at is now too old) although the report was valid when
		// it was filed: a stored report answers the replay.
		if r, ok, rerr := rs.replay(ctx, c, orig); ok || rerr != nil {
			return r, ok, rerr
		}
		return Report{}, false, err
	}
	r := Report{Draft: d, ReporterID: c.PersonID}
	var err error
	r.Lat, r.Lon, err = d.Position.check(rs.cfg.MaxAccuracyM)
	if err != nil {
		return Report{}, false, err
	}
	loc, found, err := rs.locate(ctx, r.Lat, r.Lon, d.ObservedAt, now)
	if err != nil {
		return Report{}, false, fmt.Errorf("locating report: %w", err)
	}
	if !found {
		loc = Location{CountyCode: homeCounty(c)}
		if loc.CountyCode == "" {
			return Report{}, false, structerr.NewInvalidArgument("the position %.6f, %.6f is outside the grid", r.Lat, r.Lon)
		}
	}
	r.Location = loc
	r.OutsideArea = !found || outsideArea(c, loc.Cell())
	if err := rs.place(ctx, rs.pool, &r); err != nil {
		return Report{}, false, err
	}
	if err := checkReportPatrol(ctx, rs.pool, c, d.PatrolID); err != nil {
		return Report{}, false, err
	}
	if err := rs.checkCategory(ctx, rs.pool, loc.CountyCode, d.Category); err != nil {
		return Report{}, false, err
	}
	reqHash := d.hash(c.PersonID)
	if r.Violation {
		r.EventID = uuid.NewString() // the outbox event announcing it
	}
	switch {
	case !r.Violation && len(r.PhotoSHA256) == 0:
		// One statement, no transaction: the hot path of an online report.
		r.ReceivedAt, err = insertReport(ctx, rs.pool, &r, reqHash)
	case r.Violation && rs.violations != nil:
		err = rs.fileViolation(ctx, c, &r, reqHash)
	default:
		err = database.InTx(ctx, rs.pool, func(tx pgx.Tx) error {
			r.ReceivedAt, err = insertReport(ctx, tx, &r, reqHash)
			if err != nil {
				return err
			}
			if err := rs.linkPhotos(ctx, tx, &r); err != nil {
				return err
			}
			if r.Violation {
				return rs.recordViolation(ctx, tx, c, &r)
			}
			return nil
		})
	}
	if errors.Is(err, errReportExists) {
		// Filed before (a retry, an offline replay) or concurrently.
		if r, ok, err := rs.replay(ctx, c, orig); ok || err != nil {
			return r, ok, err
		}
		return Report{}, false, structerr.NewAborted("report %s is being filed concurrently, retry", d.ID)
	}
	if err != nil {
		return Report{}, false, err
	}
	rs.metrics.reportFiled(r)
	return r, false, nil
}

// checkReportPatrol refuses a report filed on a patrol that does not exist
// or that another inspector walks: the report would count for a patrol
// it was not part of. Patrol ids are the apps' own UUIDs, so naming
// someone else's is a broken or forged client, told so plainly.
func checkReportPatrol(ctx context.Context, q database.Querier, c scope.Caller, patrolID string) error {
	if patrolID == "" {
		return nil
	}
	p, _, err := getPatrol(ctx, q, patrolID, false)
	if errors.Is(err, pgx.ErrNoRows) {
		return structerr.NewNotFound("patrol %s not found: start the patrol before filing reports on it", patrolID)
	}
	if err != nil {
		return err
	}
	if p.InspectorID != c.PersonID {
		return structerr.NewPermissionDenied("patrol %s is another inspector's: file the report on your own patrol", patrolID)
	}
	return nil
}

// locate finds the cell of a report: in the current grid, or, for an
// observation older than HistoricLocateAfter and a locator that keeps
// history, in the grid as it was at the observation.
func (rs *Reports) locate(ctx context.Context, lat, lon float64, observed, now time.Time) (Location, bool, error) {
	if observed.Before(now.Add(-HistoricLocateAfter)) {
		return rs.locator.LocateAt(ctx, lat, lon, observed)
	}
	return rs.locator.Locate(ctx, lat, lon)
}

// replay returns the stored report when d.ID was filed before by the same
// person with the same content, and counts the replay.
func (rs *Reports) replay(ctx context.Context, c scope.Caller, d Draft) (Report, bool, error) {
	r, reqHash, err := getReport(ctx, rs.pool, d.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Report{}, false, nil
	}
	if err != nil {
		return Report{}, false, err
	}
	if r.ReporterID != c.PersonID {
		return Report{}, false, structerr.NewAlreadyExists("report id %s is already used by another report", d.ID)
	}
	nd := d
	if err := rs.normalize(&nd, r.ReceivedAt); err != nil || string(nd.hash(c.PersonID)) != string(reqHash) {
		return Report{}, false, structerr.NewAlreadyExists("report %s was already filed with different content", d.ID)
	}
	rs.metrics.replays.Inc()
	return r, true, nil
}

// checkCategory answers from the cache of known categories, asking the
// database on a miss. Categories are never deleted, so a cached "known"
// never goes stale, and a category just created on another replica is a
// miss that the database answers.
func (rs *Reports) checkCategory(ctx context.Context, q database.Querier, county, code string) error {
	key := county + "/" + code
	if _, ok := rs.knownCategories.Load(key); ok {
		return nil
	}
	ok, err := categoryExists(ctx, q, county, code)
	if err != nil {
		return err
	}
	if !ok {
		return structerr.NewInvalidArgument("category %.40q is not known in county %s", code, county).WithField("category")
	}
	rs.knownCategories.Store(key, true)
	return nil
}

// fileViolation files a violation through the county's group committer:
// the report, its photos' links, its outbox event and its ledger record
// commit in one transaction, shared with the other violations of the
// county at hand (one chain-head hold and one WAL flush for them all).
// Who answers for the place is read first, outside the transaction (it is
// a read of the people and waters registers, as of the observation).
func (rs *Reports) fileViolation(ctx context.Context, c scope.Caller, r *Report, reqHash []byte) error {
	responsible, err := rs.violationResponsible(ctx, rs.pool, r)
	if err != nil {
		return err
	}
	if len(r.PhotoSHA256) == 0 {
		// Queued, not run: the batch's reports go in one round trip, then
		// their events in another.
		_, err = rs.violations.DoStaged(ctx, r.Location.CountyCode, ledger.StagedAct{
			Stages: func() []ledger.Stage {
				return []ledger.Stage{{
					Queue: func(b *pgx.Batch) error {
						sql, args := reportInsert(r, reqHash)
						b.Queue(sql, args...)
						return nil
					},
					Read: func(br pgx.BatchResults) (err error) {
						r.ReceivedAt, err = scanReceived(br.QueryRow())
						return err
					},
				}, {
					Queue: func(b *pgx.Batch) error { return queueViolationEvent(b, r, responsible) },
					Read:  func(br pgx.BatchResults) error { _, err := br.Exec(); return err },
				}}
			},
			Entries: func() ([]ledger.Entry, error) {
				return []ledger.Entry{violationEntry(c, r, responsible)}, nil
			},
		})
		return err
	}
	_, err = rs.violations.Do(ctx, r.Location.CountyCode, func(ctx context.Context, tx pgx.Tx) ([]ledger.Entry, error) {
		var err error
		if r.ReceivedAt, err = insertReport(ctx, tx, r, reqHash); err != nil {
			return nil, err
		}
		if err := rs.linkPhotos(ctx, tx, r); err != nil {
			return nil, err
		}
		if err := enqueueViolationEvent(ctx, tx, r, responsible); err != nil {
			return nil, err
		}
		return []ledger.Entry{violationEntry(c, r, responsible)}, nil
	})
	return err
}

// violationResponsible names who answers for a violation: the people
// responsible for its cell at the observation, and the chiefs of the
// reaches beside it (with the reaches' codes).
func (rs *Reports) violationResponsible(ctx context.Context, q database.Querier, r *Report) ([]ledger.Responsible, error) {
	responsible, err := people.ResponsibleAt(ctx, q, r.Location.Cell(), r.ObservedAt)
	if err != nil {
		return nil, fmt.Errorf("finding the responsible people: %w", err)
	}
	return rs.withReachChiefs(ctx, r, responsible)
}

// recordViolation writes the outbox event and the accountability record
// of a violation inside the report's transaction.
func (rs *Reports) recordViolation(ctx context.Context, tx pgx.Tx, c scope.Caller, r *Report) error {
	responsible, err := rs.violationResponsible(ctx, tx, r)
	if err != nil {
		return err
	}
	if err := enqueueViolationEvent(ctx, tx, r, responsible); err != nil {
		return err
	}
	_, err = ledger.Append(ctx, tx, violationEntry(c, r, responsible))
	return err
}

// violationEntry is the ledger record of a violation report.
func violationEntry(c scope.Caller, r *Report, responsible []ledger.Responsible) ledger.Entry {
	g := actingGrant(c, r.Location.Cell())
	payload := map[string]any{
		"event_id":     r.EventID,
		"category":     r.Category,
		"severity":     r.Severity.String(),
		"observed_at":  r.ObservedAt.Format(time.RFC3339Nano),
		"latitude":     r.Lat,
		"longitude":    r.Lon,
		"outside_area": r.OutsideArea,
		"photo_sha256": r.PhotoSHA256,
		"reach_codes":  r.Places.ReachCodes(),
		"zone_codes":   r.Places.ZoneCodes,
	}
	addZoneDecision(payload, r.Places)
	return ledger.Entry{
		CountyCode:    r.Location.CountyCode,
		ActorID:       c.PersonID,
		ActorRole:     string(g.Role),
		ActorNodeCode: g.NodeCode,
		Action:        ActionViolationReported,
		SubjectType:   "report",
		SubjectID:     r.ID,
		NodeCode:      r.Location.Cell(),
		Responsible:   responsible,
		Payload:       payload,
		At:            r.ReceivedAt,
	}
}

// linkPhotos compares the report with the EXIF of the photos it references
// that have already arrived; photos uploaded later are compared on upload.
func (rs *Reports) linkPhotos(ctx context.Context, tx pgx.Tx, r *Report) error {
	if len(r.PhotoSHA256) == 0 {
		return nil
	}
	photos, err := getPhotos(ctx, tx, r.PhotoSHA256)
	if err != nil {
		return err
	}
	for _, p := range photos {
		// Only the reporter's own photos: comparing with a photo someone
		// else took would tell the reporter where and when it was taken.
		if own, err := uploadedByAny(ctx, tx, p.SHA256, []string{r.ReporterID}); err != nil {
			return err
		} else if !own {
			continue
		}
		m := rs.cfg.compareExif(p, r.Lat, r.Lon, r.ObservedAt)
		if err := upsertReportPhoto(ctx, tx, r.ID, p.SHA256, m); err != nil {
			return err
		}
		if m.Mismatch {
			r.ExifMismatch = append(r.ExifMismatch, p.SHA256)
		}
	}
	return nil
}

// ExifCheck is the comparison of a photo's EXIF with its report.
type ExifCheck struct {
	DistanceM  *float64
	TimeDeltaS *float64
	Mismatch   bool
}

func (c Config) compareExif(p PhotoMeta, lat, lon float64, observed time.Time) ExifCheck {
	var m ExifCheck
	if p.ExifLat != nil && p.ExifLon != nil {
		d := coord.DistanceMeters(lat, lon, *p.ExifLat, *p.ExifLon)
		m.DistanceM = &d
		m.Mismatch = m.Mismatch || d > c.ExifMaxDistanceM
	}
	if p.ExifTime != nil {
		dt := math.Abs(p.ExifTime.Sub(observed).Seconds())
		m.TimeDeltaS = &dt
		m.Mismatch = m.Mismatch || dt > c.ExifMaxTimeDelta.Seconds()
	}
	return m
}

// GetReport returns a report the caller may see (their own, or one inside
// their scope); anything else is NotFound.
func (rs *Reports) GetReport(ctx context.Context, c scope.Caller, id string) (Report, error) {
	if _, err := checkUUID("report_id", id); err != nil {
		return Report{}, err
	}
	r, _, err := getReport(ctx, rs.pool, strings.ToLower(id))
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !canSee(c, r)) {
		return Report{}, structerr.NewNotFound("report %s not found", id)
	}
	return r, err
}

func canSee(c scope.Caller, r Report) bool {
	if r.ReporterID == c.PersonID {
		return true
	}
	if r.Location.Cell() == "" {
		return false
	}
	return c.Covers(r.Location.Cell())
}

// BatchResult is the outcome of one item of SubmitReportBatch.
type BatchResult struct {
	Report   Report
	Replayed bool
	Err      error
}

// SubmitReportBatch files an offline queue. Items are independent: each
// commits on its own, so one bad item never loses the others.
func (rs *Reports) SubmitReportBatch(ctx context.Context, c scope.Caller, drafts []Draft) ([]BatchResult, error) {
	if len(drafts) == 0 {
		return nil, structerr.NewInvalidArgument("the batch is empty")
	}
	if len(drafts) > rs.cfg.MaxBatchReports {
		return nil, structerr.NewInvalidArgument("the batch has %d reports, at most %d are allowed", len(drafts), rs.cfg.MaxBatchReports)
	}
	out := make([]BatchResult, len(drafts))
	for i, d := range drafts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		r, replayed, err := rs.SubmitReport(ctx, c, d)
		if err != nil && structerr.Code(err) == structerr.Code(structerr.NewInternal("")) {
			rs.log.ErrorContext(ctx, "batch report failed", "report_id", d.ID, "error", err)
		}
		out[i] = BatchResult{Report: r, Replayed: replayed, Err: err}
	}
	return out, nil
}

// ReportFilter narrows ListReports and exports.
type ReportFilter struct {
	NodeCode     string
	ObservedFrom time.Time
	ObservedTo   time.Time
	Category     string
	Violation    *bool
	// ReporterID keeps the reports filed by one person (their UUID).
	ReporterID string
}

func (fl ReportFilter) check() error {
	if fl.NodeCode != "" && !gridCode.MatchString(fl.NodeCode) {
		return structerr.NewInvalidArgument("node code %.40q is not a grid code", fl.NodeCode)
	}
	if fl.Category != "" && !categoryCode.MatchString(fl.Category) {
		return structerr.NewInvalidArgument("category %.40q is not a category code", fl.Category)
	}
	if fl.ReporterID != "" {
		if _, err := uuid.Parse(fl.ReporterID); err != nil {
			return structerr.NewInvalidArgument("reporter id %.40q is not a UUID", fl.ReporterID)
		}
	}
	if !fl.ObservedFrom.IsZero() && !fl.ObservedTo.IsZero() && !fl.ObservedTo.After(fl.ObservedFrom) {
		return structerr.NewInvalidArgument("the time range ends before it starts")
	}
	return nil
}

// visibleRoots returns the code prefixes the caller may read under the
// filter's node, or nil when the node is outside their scope entirely.
func visibleRoots(c scope.Caller, node string) []string {
	roots := c.Roots()
	if node == "" {
		return roots
	}
	var out []string
	for _, r := range roots {
		switch {
		case strings.HasPrefix(node, r):
			return []string{node}
		case strings.HasPrefix(r, node):
			out = append(out, r)
		}
	}
	return out
}

// ListReports returns one page of the reports the caller may see, newest
// received first, and the token of the next page ("" at the end).
func (rs *Reports) ListReports(ctx context.Context, c scope.Caller, fl ReportFilter, pageSize int, token string) ([]Report, string, error) {
	if err := fl.check(); err != nil {
		return nil, "", err
	}
	switch {
	case pageSize <= 0:
		pageSize = 50
	case pageSize > 500:
		pageSize = 500
	}
	var after *pageKey
	if token != "" {
		k, err := decodePageToken(token)
		if err != nil {
			return nil, "", err
		}
		after = &k
	}
	roots := visibleRoots(c, fl.NodeCode)
	own := ""
	if fl.NodeCode == "" {
		own = c.PersonID // their own reports, even filed outside their cells
	}
	if len(roots) == 0 && own == "" {
		return nil, "", nil
	}
	reports, err := listReports(ctx, rs.pool, roots, own, fl, after, pageSize+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(reports) > pageSize {
		reports = reports[:pageSize]
		last := reports[len(reports)-1]
		next = encodePageToken(pageKey{ReceivedAt: last.ReceivedAt, ID: last.ID})
	}
	return reports, next, nil
}

// Category is one entry of the report taxonomy.
type Category struct {
	CountyCode string
	Code       string
	Name       string
}

// ListCategories returns the national taxonomy plus the county's own.
func (rs *Reports) ListCategories(ctx context.Context, county string) ([]Category, error) {
	return listCategories(ctx, rs.pool, county)
}

// CreateCategory adds a county category; county officers of that county only.
func (rs *Reports) CreateCategory(ctx context.Context, c scope.Caller, cat Category) (Category, error) {
	if len(cat.CountyCode) != 6 || strings.Trim(cat.CountyCode, "0123456789") != "" {
		return Category{}, structerr.NewInvalidArgument("county code %.20q is not six digits", cat.CountyCode)
	}
	if !c.Covers(cat.CountyCode, scope.RoleCountyOfficer) {
		return Category{}, structerr.NewPermissionDenied("only the county office of %s may add categories", cat.CountyCode)
	}
	if !categoryCode.MatchString(cat.Code) {
		return Category{}, structerr.NewInvalidArgument("category code %.40q must be lower-case letters, digits and _ (at most 40)", cat.Code)
	}
	cat.Name = strings.TrimSpace(cat.Name)
	if cat.Name == "" || utf8.RuneCountInString(cat.Name) > 100 || !utf8.ValidString(cat.Name) {
		return Category{}, structerr.NewInvalidArgument("category name must be 1 to 100 characters")
	}
	if ok, err := categoryExists(ctx, rs.pool, "", cat.Code); err != nil {
		return Category{}, err
	} else if ok {
		return Category{}, structerr.NewAlreadyExists("category %.40q is in the national taxonomy", cat.Code)
	}
	err := insertCategory(ctx, rs.pool, cat, c.PersonID)
	if structerr.IsUniqueViolation(err, "categories_pkey") {
		existing, err := listCategories(ctx, rs.pool, cat.CountyCode)
		if err != nil {
			return Category{}, err
		}
		for _, e := range existing {
			if e.Code == cat.Code && e.CountyCode == cat.CountyCode && e.Name == cat.Name {
				return e, nil // idempotent replay
			}
		}
		return Category{}, structerr.NewAlreadyExists("category %.40q already exists in county %s", cat.Code, cat.CountyCode)
	}
	return cat, err
}
