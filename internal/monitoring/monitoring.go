// Package monitoring owns water monitoring (issue 18): points (sections
// 断面, wells, intakes) with a GB 3838-2002 target class and a sampling
// schedule, and their samples, classified against the standard's Table 1
// (gb3838.go). A sample worse than its point's target class, or a
// scheduled sample missed when its window closes (Sweep), is a violation:
// written to monitoring.violations and announced with outbox.Enqueue in
// the same transaction as the sample or the miss, under a deterministic
// event id, so it reaches cased through the same outbox → JetStream → case
// path as an inspector's report, exactly once. LookupViolation is what
// cased checks an event against before opening a case.
package monitoring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database"
	"ecogrid/internal/grid"
	"ecogrid/internal/messaging"
	"ecogrid/internal/outbox"
	"ecogrid/internal/structerr"
	"ecogrid/internal/zones"
)

// Source is the ViolationReported.source of monitoring's violations.
const Source = "monitoring"

// Category is the report category of monitoring's violations.
const Category = "water"

// eventNamespace makes event ids deterministic: the same sample or missed
// window always gives the same id, so a repeated record or sweep enqueues
// nothing new.
var eventNamespace = uuid.MustParse("5f0a3c1e-9d52-4b8e-8f51-18a0c0de3838")

// Point is a monitoring point.
type Point struct {
	ID           uuid.UUID
	CountyCode   string
	Code         string
	Name         string
	Kind         ecogridv1.MonitoringPointKind
	WaterBody    WaterBody
	TargetClass  Class
	Lat, Lon     float64
	TownshipCode string
	VillageCode  string
	// Every is the sampling window; 0 means no schedule.
	Every         time.Duration
	ScheduleStart time.Time
}

// Measurement is one parameter's value, in the parameter's unit.
type Measurement struct {
	Parameter string  `json:"parameter"`
	Value     float64 `json:"value"`
	Unit      string  `json:"unit"`
	Class     Class   `json:"class"`
}

// Sample is a recorded sample.
type Sample struct {
	ID               uuid.UUID
	PointID          uuid.UUID
	SampledAt        time.Time
	Sampler, Lab     string
	Measurements     []Measurement
	Class            Class
	Exceeding        []string
	CorrectsID       uuid.UUID
	ViolationEventID uuid.UUID
	RecordedAt       time.Time
}

// Monitor records samples and sweeps schedules.
type Monitor struct {
	pool  *pgxpool.Pool
	grid  *grid.Index
	zones *zones.Index // nil: violations carry no zones
	log   *slog.Logger
	now   func() time.Time
	// SweepInterval is how often RunSweeper looks for closed windows
	// without a sample (default 1 min).
	SweepInterval time.Duration
}

// New returns a Monitor. The grid index places points in their cells; the
// zone index (optional) adds the zones of a point and their rules to its
// violations.
func New(pool *pgxpool.Pool, gridIndex *grid.Index, zoneIndex *zones.Index, logger *slog.Logger) *Monitor {
	if logger == nil {
		logger = slog.Default()
	}
	return &Monitor{pool: pool, grid: gridIndex, zones: zoneIndex, log: logger, now: time.Now, SweepInterval: time.Minute}
}

// CheckPoint refuses a point that could not be real.
func CheckPoint(p Point) error {
	switch {
	case p.ID == uuid.Nil:
		return structerr.NewInvalidArgument("point_id is required (a client-generated UUID)")
	case !zones.ValidCounty(p.CountyCode):
		return structerr.NewInvalidArgument("county_code %.20q is not six digits", p.CountyCode)
	case !zones.ValidCode(p.Code):
		return structerr.NewInvalidArgument("code %.64q must be 1–64 letters, digits, '.', '_' or '-'", p.Code)
	case strings.TrimSpace(p.Name) == "" || len(p.Name) > 200:
		return structerr.NewInvalidArgument("name is required (at most 200 bytes)")
	case p.Kind < 1 || p.Kind > 3:
		return structerr.NewInvalidArgument("kind must be section, well or intake")
	case p.WaterBody < River || p.WaterBody > Reservoir:
		return structerr.NewInvalidArgument("water_body must be river, lake or reservoir")
	case p.TargetClass < 1 || p.TargetClass > 5:
		return structerr.NewInvalidArgument("target_class must be 1 (I) to 5 (V)")
	case !(p.Lat >= -90 && p.Lat <= 90 && p.Lon >= -180 && p.Lon <= 180):
		return structerr.NewInvalidArgument("position is not a WGS-84 latitude and longitude")
	case p.Every < 0 || p.Every > 366*24*time.Hour || p.Every%time.Hour != 0:
		return structerr.NewInvalidArgument("sample_every_hours must be 0 to 8784")
	case p.Every > 0 && p.ScheduleStart.IsZero():
		return structerr.NewInvalidArgument("schedule_start is required with a schedule")
	}
	return nil
}

// CreatePoint stores a point in the grid cell its position lies in, which
// must belong to its county. Repeating it with the same id returns the
// stored point.
func (m *Monitor) CreatePoint(ctx context.Context, p Point, actor uuid.UUID) (Point, error) {
	if err := CheckPoint(p); err != nil {
		return Point{}, err
	}
	if stored, err := m.PointByID(ctx, p.ID); err == nil {
		return stored, nil
	} else if structerr.Code(err) != codes.NotFound {
		return Point{}, err
	}
	loc, ok, err := m.grid.LocateNow(p.Lat, p.Lon)
	if err != nil {
		return Point{}, err
	}
	if !ok || loc.CodeAt(grid.LevelCounty) != p.CountyCode {
		return Point{}, structerr.NewInvalidArgument("position %.5f, %.5f is not inside county %s", p.Lat, p.Lon, p.CountyCode)
	}
	p.TownshipCode, p.VillageCode = loc.CodeAt(grid.LevelTownship), loc.Cell.Code
	if p.ScheduleStart.IsZero() {
		p.ScheduleStart = m.now()
	}
	p.ScheduleStart = p.ScheduleStart.UTC().Truncate(time.Microsecond)
	_, err = m.pool.Exec(ctx, `INSERT INTO monitoring.points (id, county_code, code, name, kind, water_body, target_class, latitude, longitude,
			township_code, village_code, sample_every_hours, schedule_start, swept_until, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14)`,
		p.ID, p.CountyCode, p.Code, p.Name, int16(p.Kind), int16(p.WaterBody), int16(p.TargetClass), p.Lat, p.Lon,
		p.TownshipCode, p.VillageCode, int32(p.Every/time.Hour), p.ScheduleStart, nullUUID(actor))
	switch {
	case structerr.IsUniqueViolation(err, "points_pkey"):
		return m.PointByID(ctx, p.ID)
	case structerr.IsUniqueViolation(err, "points_code_key"):
		return Point{}, structerr.NewAlreadyExists("county %s already has a point %s", p.CountyCode, p.Code)
	case err != nil:
		return Point{}, err
	}
	return p, nil
}

func nullUUID(id uuid.UUID) any {
	if id == uuid.Nil {
		return nil
	}
	return id
}

const pointColumns = `id, county_code, code, name, kind, water_body, target_class, latitude, longitude, township_code, village_code, sample_every_hours, schedule_start`

func scanPoint(row pgx.Row) (Point, error) {
	var p Point
	var kind, body, class int16
	var hours int32
	err := row.Scan(&p.ID, &p.CountyCode, &p.Code, &p.Name, &kind, &body, &class, &p.Lat, &p.Lon, &p.TownshipCode, &p.VillageCode, &hours, &p.ScheduleStart)
	p.Kind, p.WaterBody, p.TargetClass, p.Every = ecogridv1.MonitoringPointKind(kind), WaterBody(body), Class(class), time.Duration(hours)*time.Hour
	return p, err
}

// PointByID returns a point, or NotFound.
func (m *Monitor) PointByID(ctx context.Context, id uuid.UUID) (Point, error) {
	p, err := scanPoint(m.pool.QueryRow(ctx, `SELECT `+pointColumns+` FROM monitoring.points WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Point{}, structerr.NewNotFound("monitoring point %s not found", id)
	}
	return p, err
}

// Points lists a county's points in code order.
func (m *Monitor) Points(ctx context.Context, county string) ([]Point, error) {
	return points(ctx, m.pool, `WHERE county_code = $1 ORDER BY code`, county)
}

func points(ctx context.Context, q database.Querier, where string, args ...any) ([]Point, error) {
	rows, err := q.Query(ctx, `SELECT `+pointColumns+` FROM monitoring.points `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Point
	for rows.Next() {
		p, err := scanPoint(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Classify checks and classifies a sample's measurements for a point:
// each value normalised to its parameter's unit and classed, the sample's
// class the worst of them, and the parameters worse than the target.
func Classify(p Point, ms []Measurement) ([]Measurement, Class, []string, error) {
	if len(ms) == 0 {
		return nil, 0, nil, structerr.NewInvalidArgument("a sample needs at least one measurement")
	}
	if len(ms) > len(Table1) {
		return nil, 0, nil, structerr.NewInvalidArgument("at most %d measurements per sample", len(Table1))
	}
	out := make([]Measurement, 0, len(ms))
	var worst Class
	var exceeding []string
	seen := map[string]bool{}
	for _, m := range ms {
		param, ok := LookupParameter(m.Parameter)
		if !ok {
			return nil, 0, nil, structerr.NewInvalidArgument("parameter %.30q is not in GB 3838-2002 Table 1", m.Parameter)
		}
		if seen[param.Code] {
			return nil, 0, nil, structerr.NewInvalidArgument("parameter %s given twice", param.Code)
		}
		seen[param.Code] = true
		if m.Value < 0 || m.Value != m.Value || m.Value > 1e9 {
			return nil, 0, nil, structerr.NewInvalidArgument("%s value %g is not a measurement", param.Code, m.Value)
		}
		v, err := param.Normalize(m.Value, m.Unit)
		if err != nil {
			return nil, 0, nil, structerr.NewInvalidArgument("%v", err)
		}
		c := param.Classify(v, p.WaterBody)
		out = append(out, Measurement{Parameter: param.Code, Value: v, Unit: param.Unit, Class: c})
		worst = max(worst, c)
		if c > p.TargetClass {
			exceeding = append(exceeding, param.Code)
		}
	}
	return out, worst, exceeding, nil
}

// SampleEventID is the event id of the violation a sample raises.
func SampleEventID(sampleID uuid.UUID) uuid.UUID {
	return uuid.NewSHA1(eventNamespace, []byte("sample/"+sampleID.String()))
}

// MissEventID is the event id of the violation a missed window raises.
func MissEventID(pointID uuid.UUID, windowStart time.Time) uuid.UUID {
	return uuid.NewSHA1(eventNamespace, []byte("miss/"+pointID.String()+"/"+windowStart.UTC().Format(time.RFC3339Nano)))
}

// RecordSample stores a sample of a point and, when it is worse than the
// point's target class, its violation and event, in one transaction.
// Recording the same id again returns the stored sample and writes
// nothing; an id already used for another sample is AlreadyExists.
func (m *Monitor) RecordSample(ctx context.Context, s Sample, actor uuid.UUID) (Sample, bool, error) {
	var out Sample
	var created bool
	err := database.InTx(ctx, m.pool, func(tx pgx.Tx) error {
		var err error
		out, created, err = m.recordSample(ctx, tx, s, actor)
		return err
	})
	return out, created, err
}

// RecordSamples records many samples all or nothing (a CSV import).
func (m *Monitor) RecordSamples(ctx context.Context, ss []Sample, actor uuid.UUID, dryRun bool) (recorded, unchanged, exceeding int, err error) {
	errDry := errors.New("dry run")
	err = database.InTx(ctx, m.pool, func(tx pgx.Tx) error {
		for _, s := range ss {
			got, created, err := m.recordSample(ctx, tx, s, actor)
			if err != nil {
				return err
			}
			if !created {
				unchanged++
				continue
			}
			recorded++
			if len(got.Exceeding) > 0 {
				exceeding++
			}
		}
		if dryRun {
			return errDry
		}
		return nil
	})
	if errors.Is(err, errDry) {
		err = nil
	}
	return recorded, unchanged, exceeding, err
}

func (m *Monitor) recordSample(ctx context.Context, tx pgx.Tx, s Sample, actor uuid.UUID) (Sample, bool, error) {
	if s.ID == uuid.Nil {
		return Sample{}, false, structerr.NewInvalidArgument("sample_id is required (a client-generated UUID)")
	}
	now := m.now()
	switch {
	case s.SampledAt.IsZero() || s.SampledAt.Year() < 2000:
		return Sample{}, false, structerr.NewInvalidArgument("sampled_at is required")
	case s.SampledAt.After(now.Add(10 * time.Minute)):
		return Sample{}, false, structerr.NewInvalidArgument("sampled_at %s is in the future", s.SampledAt.UTC().Format(time.RFC3339))
	case len(s.Sampler) > 200 || len(s.Lab) > 200:
		return Sample{}, false, structerr.NewInvalidArgument("sampler and lab may have at most 200 bytes")
	case strings.TrimSpace(s.Lab) == "":
		return Sample{}, false, structerr.NewInvalidArgument("lab is required")
	}
	p, err := scanPoint(tx.QueryRow(ctx, `SELECT `+pointColumns+` FROM monitoring.points WHERE id = $1`, s.PointID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Sample{}, false, structerr.NewNotFound("monitoring point %s not found", s.PointID)
	}
	if err != nil {
		return Sample{}, false, err
	}
	ms, class, exceeding, err := Classify(p, s.Measurements)
	if err != nil {
		return Sample{}, false, err
	}
	s.Measurements, s.Class, s.Exceeding = ms, class, exceeding
	if s.Exceeding == nil {
		s.Exceeding = []string{}
	}
	s.SampledAt = s.SampledAt.UTC().Truncate(time.Microsecond)
	if s.CorrectsID != uuid.Nil {
		var point uuid.UUID
		err := tx.QueryRow(ctx, `SELECT point_id FROM monitoring.samples WHERE id = $1`, s.CorrectsID).Scan(&point)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && point != s.PointID) {
			return Sample{}, false, structerr.NewInvalidArgument("corrects_sample_id %s is not a sample of this point", s.CorrectsID)
		}
		if err != nil {
			return Sample{}, false, err
		}
	}
	if len(exceeding) > 0 {
		s.ViolationEventID = SampleEventID(s.ID)
	}
	msJSON, err := json.Marshal(s.Measurements)
	if err != nil {
		return Sample{}, false, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO monitoring.samples (id, point_id, sampled_at, sampler, lab, measurements, class, exceeding, corrects_id, violation_event_id, recorded_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING`,
		s.ID, s.PointID, s.SampledAt, s.Sampler, s.Lab, msJSON, int16(s.Class), s.Exceeding, nullUUID(s.CorrectsID), nullUUID(s.ViolationEventID), nullUUID(actor))
	if err != nil {
		return Sample{}, false, err
	}
	if tag.RowsAffected() == 0 {
		stored, err := sampleByID(ctx, tx, s.ID)
		if err != nil {
			return Sample{}, false, err
		}
		if stored.PointID != s.PointID || !stored.SampledAt.Equal(s.SampledAt) || !slices.Equal(stored.Measurements, s.Measurements) {
			return Sample{}, false, structerr.NewAlreadyExists("sample id %s is already used for another sample", s.ID)
		}
		return stored, false, nil
	}
	if len(exceeding) > 0 {
		var names []string
		for _, m := range s.Measurements {
			if slices.Contains(exceeding, m.Parameter) {
				names = append(names, fmt.Sprintf("%s %g %s (class %s)", m.Parameter, m.Value, m.Unit, m.Class))
			}
		}
		desc := fmt.Sprintf("sample at %s %s is class %s, worse than the target class %s: %s", p.Code, p.Name, s.Class, p.TargetClass, strings.Join(names, ", "))
		sev := ecogridv1.Severity_SEVERITY_NORMAL
		if s.Class == WorseThanV || s.Class-p.TargetClass >= 2 {
			sev = ecogridv1.Severity_SEVERITY_SERIOUS
		}
		err = m.raise(ctx, tx, violation{
			Violation: Violation{EventID: s.ViolationEventID, CountyCode: p.CountyCode, TownshipCode: p.TownshipCode, VillageCode: p.VillageCode,
				PointID: p.ID, SampleID: s.ID, Category: Category, Severity: sev, Lat: p.Lat, Lon: p.Lon, OccurredAt: s.SampledAt, Description: desc},
		})
		if err != nil {
			return Sample{}, false, err
		}
	}
	s.RecordedAt = now
	return s, true, nil
}

func sampleByID(ctx context.Context, q database.Querier, id uuid.UUID) (Sample, error) {
	ss, err := samples(ctx, q, `WHERE id = $1`, id)
	if err != nil {
		return Sample{}, err
	}
	if len(ss) == 0 {
		return Sample{}, structerr.NewNotFound("sample %s not found", id)
	}
	return ss[0], nil
}

// Samples lists a point's samples, newest first, at most limit.
func (m *Monitor) Samples(ctx context.Context, pointID uuid.UUID, limit int) ([]Sample, error) {
	return samples(ctx, m.pool, `WHERE point_id = $1 ORDER BY sampled_at DESC, recorded_at DESC LIMIT $2`, pointID, limit)
}

func samples(ctx context.Context, q database.Querier, where string, args ...any) ([]Sample, error) {
	rows, err := q.Query(ctx, `SELECT id, point_id, sampled_at, sampler, lab, measurements, class, exceeding,
		coalesce(corrects_id, '00000000-0000-0000-0000-000000000000'), coalesce(violation_event_id, '00000000-0000-0000-0000-000000000000'), recorded_at
		FROM monitoring.samples `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Sample
	for rows.Next() {
		var s Sample
		var ms []byte
		var class int16
		if err := rows.Scan(&s.ID, &s.PointID, &s.SampledAt, &s.Sampler, &s.Lab, &ms, &class, &s.Exceeding, &s.CorrectsID, &s.ViolationEventID, &s.RecordedAt); err != nil {
			return nil, err
		}
		s.Class = Class(class)
		if err := json.Unmarshal(ms, &s.Measurements); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Violation is what monitoring committed about one violation it raised:
// what cased checks an event against before opening a case.
type Violation struct {
	EventID      uuid.UUID
	CountyCode   string
	TownshipCode string
	VillageCode  string // the node the case belongs to
	PointID      uuid.UUID
	SampleID     uuid.UUID // the exceeding sample; Nil for a missed window
	WindowStart  time.Time // the missed window; zero for a sample
	Category     string
	Severity     ecogridv1.Severity
	Lat, Lon     float64
	OccurredAt   time.Time
	Description  string
	ZoneCodes    []string
	EscalateNow  bool
	// ZoneDeadline is the rectification deadline a zone rule set; nil for none.
	ZoneDeadline *time.Time
}

type violation struct{ Violation }

// raise writes a violation and its ViolationReported event in tx. The
// zones containing the point, if a zone index was given, raise the
// severity, set the deadline and may escalate at once (zones.Apply).
func (m *Monitor) raise(ctx context.Context, tx pgx.Tx, v violation) error {
	var deadline *timestamppb.Timestamp
	if m.zones != nil {
		zs := m.zones.ZonesAt(v.Lat, v.Lon)
		if len(zs) > 0 {
			rules, err := zones.RulesFor(ctx, tx, v.CountyCode)
			if err != nil {
				return err
			}
			d := zones.Apply(rules, zs, v.Severity)
			v.Severity, v.EscalateNow, v.ZoneCodes = d.MinSeverity, d.EscalateNow, d.ZoneCodes
			if d.Deadline > 0 {
				dl := v.OccurredAt.Add(d.Deadline).UTC().Truncate(time.Microsecond)
				v.ZoneDeadline = &dl
				deadline = timestamppb.New(dl)
			}
			if d.Reason != "" {
				v.Description += "; " + d.Reason
			}
		}
	}
	if v.ZoneCodes == nil {
		v.ZoneCodes = []string{}
	}
	var sample, window any
	if v.SampleID != uuid.Nil {
		sample = v.SampleID
	} else {
		window = v.WindowStart
	}
	tag, err := tx.Exec(ctx, `INSERT INTO monitoring.violations (event_id, county_code, township_code, village_code, point_id, sample_id, window_start,
			category, severity, latitude, longitude, occurred_at, description, zone_codes, escalate_now, zone_deadline)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (event_id) DO NOTHING`,
		v.EventID, v.CountyCode, v.TownshipCode, v.VillageCode, v.PointID, sample, window,
		v.Category, v.Severity.String(), v.Lat, v.Lon, v.OccurredAt, clip(v.Description, 2000), v.ZoneCodes, v.EscalateNow, v.ZoneDeadline)
	if err != nil || tag.RowsAffected() == 0 {
		return err
	}
	source := Source
	ev := &eventsv1.ViolationReported{
		EventId: v.EventID.String(), ReportId: v.EventID.String(), CountyCode: v.CountyCode, TownshipCode: v.TownshipCode, VillageCode: v.VillageCode,
		Category: v.Category, Severity: v.Severity.String(), Description: clip(v.Description, 2000), Latitude: v.Lat, Longitude: v.Lon,
		ObservedAt: timestamppb.New(v.OccurredAt), ReceivedAt: timestamppb.New(m.now()),
		Source: &source, ZoneCodes: v.ZoneCodes, Deadline: deadline,
	}
	if v.EscalateNow {
		ev.EscalateNow = &v.EscalateNow
	}
	return outbox.Enqueue(ctx, tx, v.CountyCode, messaging.ViolationSubject(v.CountyCode), outbox.EventViolationReported, v.EventID, ev)
}

// LookupViolation returns what monitoring committed for a violation event
// (NotFound when it raised none with that id), read through q so cased can
// check inside its own transaction.
func LookupViolation(ctx context.Context, q database.Querier, eventID string) (Violation, error) {
	id, err := uuid.Parse(eventID)
	if err != nil {
		return Violation{}, structerr.NewInvalidArgument("event id %.40q is not a UUID", eventID)
	}
	var v Violation
	var sample *uuid.UUID
	var window *time.Time
	var sev string
	err = q.QueryRow(ctx, `SELECT event_id, county_code, township_code, village_code, point_id, sample_id, window_start, category, severity,
			latitude, longitude, occurred_at, description, zone_codes, escalate_now, zone_deadline
		FROM monitoring.violations WHERE event_id = $1`, id).
		Scan(&v.EventID, &v.CountyCode, &v.TownshipCode, &v.VillageCode, &v.PointID, &sample, &window, &v.Category, &sev,
			&v.Lat, &v.Lon, &v.OccurredAt, &v.Description, &v.ZoneCodes, &v.EscalateNow, &v.ZoneDeadline)
	if errors.Is(err, pgx.ErrNoRows) {
		return Violation{}, structerr.NewNotFound("monitoring raised no violation %s", id)
	}
	if err != nil {
		return Violation{}, err
	}
	if sample != nil {
		v.SampleID = *sample
	}
	if window != nil {
		v.WindowStart = *window
	}
	v.Severity = ecogridv1.Severity(ecogridv1.Severity_value[sev])
	return v, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
