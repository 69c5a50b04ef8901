package field

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
)

func insertPatrol(ctx context.Context, q database.Querier, p Patrol, reqHash []byte) (bool, error) {
	tag, err := q.Exec(ctx, `INSERT INTO field.patrols (id, request_hash, inspector_id, county_code, assigned_roots, started_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
		p.ID, reqHash, p.InspectorID, p.CountyCode, p.AssignedRoots, p.StartedAt)
	return tag.RowsAffected() == 1, err
}

const patrolColumns = `id::text, request_hash, inspector_id, county_code, assigned_roots, started_at, ended_at,
	point_count, distance_m, duration_s, max_speed_kmh, points_outside_area, cell_codes, flags`

func scanPatrol(row pgx.Row) (Patrol, []byte, error) {
	var p Patrol
	var h []byte
	var dur int64
	var flags []string
	err := row.Scan(&p.ID, &h, &p.InspectorID, &p.CountyCode, &p.AssignedRoots, &p.StartedAt, &p.EndedAt,
		&p.PointCount, &p.DistanceM, &dur, &p.MaxSpeedKmh, &p.PointsOutsideArea, &p.CellCodes, &flags)
	p.Duration = time.Duration(dur) * time.Second
	p.StartedAt, p.EndedAt = patrolTimesUTC(p.StartedAt, p.EndedAt)
	p.Flags = parseFlags(flags)
	return p, h, err
}

func getPatrol(ctx context.Context, q database.Querier, id string, lock bool) (Patrol, []byte, error) {
	sql := `SELECT ` + patrolColumns + ` FROM field.patrols WHERE id = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	return scanPatrol(q.QueryRow(ctx, sql, id))
}

// trackBatch holds a batch of points column-wise for one unnest INSERT.
type trackBatch struct {
	times              []time.Time
	lats, lons         []float64
	origLats, origLons []float64
	systems            []int16
	accuracies         []float64
	villages           []*string
}

func (b *trackBatch) add(t time.Time, lat, lon float64, orig Position, village string) {
	b.times = append(b.times, t)
	b.lats = append(b.lats, lat)
	b.lons = append(b.lons, lon)
	b.origLats = append(b.origLats, orig.Lat)
	b.origLons = append(b.origLons, orig.Lon)
	b.systems = append(b.systems, int16(orig.System))
	b.accuracies = append(b.accuracies, orig.AccuracyM)
	b.villages = append(b.villages, nullText(village))
}

// insertTrackPoints stores a batch in one statement; points already stored
// (same patrol and time) are skipped, which is what makes replays merge
// exactly once.
func insertTrackPoints(ctx context.Context, tx pgx.Tx, patrolID string, b trackBatch) (int64, error) {
	tag, err := tx.Exec(ctx, `
		INSERT INTO field.track_points (patrol_id, recorded_at, position, orig_lat, orig_lon, orig_system, accuracy_m, village_code)
		SELECT $1, t, ST_SetSRID(ST_MakePoint(lon, lat), 4326), olat, olon, sys, acc, v
		FROM unnest($2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], $6::float8[], $7::int2[], $8::float8[], $9::text[])
			AS u(t, lat, lon, olat, olon, sys, acc, v)
		ON CONFLICT (patrol_id, recorded_at) DO NOTHING`,
		patrolID, b.times, b.lats, b.lons, b.origLats, b.origLons, b.systems, b.accuracies, b.villages)
	return tag.RowsAffected(), err
}

func bumpPointCount(ctx context.Context, tx pgx.Tx, patrolID string, added int) (int64, error) {
	var n int64
	err := tx.QueryRow(ctx, `UPDATE field.patrols SET point_count = point_count + $2 WHERE id = $1 RETURNING point_count`,
		patrolID, added).Scan(&n)
	return n, err
}

type summary struct {
	points      int64
	span        time.Duration
	distanceM   float64
	maxSpeedKmh float64
	outside     int64
	cells       []string
}

// trackSummary computes a patrol's figures in PostGIS: the geodesic length
// of the ordered track line, and the highest speed between consecutive
// fixes after subtracting both fixes' accuracy radii (so GPS jitter while
// standing still is not a car ride).
func trackSummary(ctx context.Context, q database.Querier, patrolID string, roots []string) (summary, error) {
	patterns := make([]string, len(roots))
	for i, r := range roots {
		patterns[i] = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(r) + "%"
	}
	var s summary
	var spanS float64
	err := q.QueryRow(ctx, `
		WITH seg AS (
			SELECT recorded_at, village_code,
				ST_Distance(position::geography, lag(position) OVER w::geography) AS d,
				extract(epoch FROM recorded_at - lag(recorded_at) OVER w) AS dt,
				accuracy_m + lag(accuracy_m) OVER w AS acc
			FROM field.track_points WHERE patrol_id = $1
			WINDOW w AS (ORDER BY recorded_at))
		SELECT count(*),
			coalesce(extract(epoch FROM max(recorded_at) - min(recorded_at)), 0)::float8,
			coalesce(max(greatest(d - acc, 0) / nullif(dt, 0)) * 3.6, 0)::float8,
			count(*) FILTER (WHERE village_code IS NULL OR NOT village_code LIKE ANY ($2::text[])),
			coalesce(array_agg(DISTINCT village_code ORDER BY village_code) FILTER (WHERE village_code IS NOT NULL), '{}'),
			coalesce((SELECT ST_Length(ST_MakeLine(position ORDER BY recorded_at)::geography)
			          FROM field.track_points WHERE patrol_id = $1 HAVING count(*) >= 2), 0)::float8
		FROM seg`, patrolID, patterns).Scan(&s.points, &spanS, &s.maxSpeedKmh, &s.outside, &s.cells, &s.distanceM)
	if err != nil {
		return summary{}, err
	}
	s.span = time.Duration(spanS * float64(time.Second))
	return s, nil
}

// saveSummary stores the computed figures and the track line itself
// (a LineString GIS staff can open in QGIS).
func saveSummary(ctx context.Context, tx pgx.Tx, p Patrol) error {
	flags := make([]string, len(p.Flags))
	for i, f := range p.Flags {
		flags[i] = f.String()
	}
	_, err := tx.Exec(ctx, `
		UPDATE field.patrols SET ended_at = $2, point_count = $3, duration_s = $4, max_speed_kmh = $5,
			points_outside_area = $6, cell_codes = $7, flags = $8, distance_m = $9, track = l.line
		FROM (SELECT CASE WHEN count(*) >= 2 THEN ST_MakeLine(position ORDER BY recorded_at) END AS line
		      FROM field.track_points WHERE patrol_id = $1) l
		WHERE id = $1`,
		p.ID, p.EndedAt, p.PointCount, int64(p.Duration/time.Second), p.MaxSpeedKmh, p.PointsOutsideArea,
		p.CellCodes, flags, p.DistanceM)
	return err
}

// patrolCounts counts ended patrols per inspector, cell passed and period
// (weeks from Monday, months from the 1st, China Standard Time) for cells
// under root; flagged patrols are counted apart.
func patrolCounts(ctx context.Context, q database.Querier, root string, p Period, from, to time.Time) ([]ComplianceRow, error) {
	unit := "week"
	if p == PeriodMonth {
		unit = "month"
	}
	pattern := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(root) + "%"
	rows, err := q.Query(ctx, `
		SELECT p.inspector_id, cell,
			date_trunc($4, p.started_at AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai' AS period,
			count(*) FILTER (WHERE cardinality(p.flags) = 0),
			count(*) FILTER (WHERE cardinality(p.flags) > 0)
		FROM field.patrols p, unnest(p.cell_codes) AS cell
		WHERE p.ended_at IS NOT NULL AND p.started_at >= $2 AND p.started_at < $3 AND cell LIKE $1
		GROUP BY 1, 2, 3`, pattern, from, to, unit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ComplianceRow, error) {
		var r ComplianceRow
		err := row.Scan(&r.InspectorID, &r.CellCode, &r.PeriodStart, &r.Done, &r.Implausible)
		r.PeriodStart = r.PeriodStart.In(chinaTime)
		return r, err
	})
}

// trackCoordinates returns the WGS-84 latitude and longitude of a patrol's
// fixes in time order.
func trackCoordinates(ctx context.Context, q database.Querier, patrolID string) ([][2]float64, error) {
	rows, err := q.Query(ctx, `SELECT ST_Y(position), ST_X(position) FROM field.track_points
		WHERE patrol_id = $1 ORDER BY recorded_at`, patrolID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]float64, error) {
		var p [2]float64
		err := r.Scan(&p[0], &p[1])
		return p, err
	})
}
