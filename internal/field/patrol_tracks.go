package field

import (
	"context"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twpayne/go-geom"

	"ecogrid/internal/database"
	"ecogrid/internal/people"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Limits of ListPatrolTracks: a map asks for a county's month at most, and
// draws each track with a bounded number of points.
const (
	maxTrackWindow        = 31 * 24 * time.Hour
	defaultTrackTolerance = 10.0 // metres
	defaultTrackPoints    = 500
	// metresPerDegree turns the tolerance into degrees of latitude; along
	// a parallel a degree is shorter (cos φ), so there the tolerance is a
	// little stricter than asked, never looser.
	metresPerDegree = 111_320.0
)

// TrackQuery selects the patrols of an area and a time window for a map.
type TrackQuery struct {
	// NodeCode is the county, township or village the tracks pass through.
	NodeCode string
	// From and To bound the patrols' start: [From, To), at most 31 days.
	From, To time.Time
	// PersonID, when set, keeps that person's patrols only.
	PersonID string
	// ToleranceM is the Douglas-Peucker tolerance in metres (0: 10 m).
	ToleranceM float64
	// MaxPoints bounds each simplified track (0: 500).
	MaxPoints int
	PageSize  int
	PageToken string
}

// MapTrack is a patrol as a map draws it.
type MapTrack struct {
	Patrol
	PersonName string
	// Line is the simplified track as longitude, latitude pairs, first and
	// last fix kept; nil for a patrol with fewer than two fixes.
	Line [][2]float64
}

func (q *TrackQuery) check() error {
	if len(q.NodeCode) < 6 || len(q.NodeCode) > 24 || (len(q.NodeCode)-6)%3 != 0 || strings.Trim(q.NodeCode, "0123456789") != "" {
		return structerr.NewInvalidArgument("node_code %.40q is not a grid code", q.NodeCode).WithField("node_code")
	}
	switch {
	case q.From.IsZero():
		return structerr.NewInvalidArgument("from is missing").WithField("from")
	case q.To.IsZero():
		return structerr.NewInvalidArgument("to is missing").WithField("to")
	case !q.To.After(q.From):
		return structerr.NewInvalidArgument("to (%s) must be after from (%s)", q.To.Format(time.RFC3339), q.From.Format(time.RFC3339)).WithField("to")
	case q.To.Sub(q.From) > maxTrackWindow:
		return structerr.NewInvalidArgument("the window from %s to %s is longer than %d days", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339), int(maxTrackWindow.Hours()/24)).WithField("to")
	}
	if q.PersonID != "" {
		if _, err := checkUUID("person_id", q.PersonID); err != nil {
			return err
		}
		q.PersonID = strings.ToLower(q.PersonID)
	}
	switch {
	case math.IsNaN(q.ToleranceM) || q.ToleranceM < 0 || q.ToleranceM > 5000:
		return structerr.NewInvalidArgument("tolerance_m must be between 0 and 5000 metres").WithField("tolerance_m")
	case q.ToleranceM == 0:
		q.ToleranceM = defaultTrackTolerance
	}
	switch {
	case q.MaxPoints == 1 || q.MaxPoints < 0 || q.MaxPoints > 5000:
		return structerr.NewInvalidArgument("max_points must be between 2 and 5000").WithField("max_points")
	case q.MaxPoints == 0:
		q.MaxPoints = defaultTrackPoints
	}
	switch {
	case q.PageSize <= 0:
		q.PageSize = 50
	case q.PageSize > 500:
		q.PageSize = 500
	}
	return nil
}

// ListPatrolTracks returns one page of the patrols started in the window
// whose track passed through a cell under the node (an active patrol, or
// one whose fixes all fell outside the grid: whose inspector's cells are
// under it), newest first, with their tracks simplified. Supervisors and
// the county office see every patrol under a node they cover; an
// inspector, under a node of their own cells, sees their own patrols
// only; any other node is NotFound.
func (ps *Patrols) ListPatrolTracks(ctx context.Context, c scope.Caller, q TrackQuery) ([]MapTrack, string, error) {
	if err := q.check(); err != nil {
		return nil, "", err
	}
	person := q.PersonID
	if !c.Covers(q.NodeCode, supervisorRoles...) {
		if !ownCellsMeet(c, q.NodeCode) {
			return nil, "", structerr.NewNotFound("grid node %s not found", q.NodeCode)
		}
		if person != "" && person != c.PersonID {
			return nil, "", nil
		}
		person = c.PersonID
	}
	var after *pageKey
	if q.PageToken != "" {
		k, err := decodePageToken(q.PageToken)
		if err != nil {
			return nil, "", err
		}
		after = &k
	}
	tracks, err := listTracks(ctx, ps.pool, q, person, after)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(tracks) > q.PageSize {
		tracks = tracks[:q.PageSize]
		last := tracks[len(tracks)-1]
		next = encodePageToken(pageKey{ReceivedAt: last.StartedAt, ID: last.ID})
	}
	ids := make([]string, 0, len(tracks))
	for _, t := range tracks {
		ids = append(ids, t.InspectorID)
	}
	names, err := people.Names(ctx, ps.pool, ids)
	if err != nil {
		return nil, "", err
	}
	tol := q.ToleranceM / metresPerDegree
	for i := range tracks {
		tracks[i].PersonName = names[tracks[i].InspectorID]
		tracks[i].Line = boundPoints(tracks[i].Line, q.MaxPoints, tol)
	}
	return tracks, next, nil
}

// ownCellsMeet reports whether one of the caller's own cells lies under
// node or contains it: an inspector asking about their village, township
// or county.
func ownCellsMeet(c scope.Caller, node string) bool {
	for _, root := range c.Roots() {
		if strings.HasPrefix(node, root) || strings.HasPrefix(root, node) {
			return true
		}
	}
	return false
}

// listTracks reads pageSize+1 patrols with their tracks simplified by
// PostGIS (ST_Simplify keeps a line's first and last point). An ended
// patrol's track is the stored line; an active one's is made from its
// fixes so far.
func listTracks(ctx context.Context, q database.Querier, tq TrackQuery, person string, after *pageKey) ([]MapTrack, error) {
	prefix := ""
	if len(tq.NodeCode) > 6 {
		prefix = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(tq.NodeCode) + "%"
	}
	var afterAt *time.Time
	afterID := ""
	if after != nil {
		afterAt, afterID = &after.ReceivedAt, after.ID
	}
	rows, err := q.Query(ctx, `
		SELECT p.id::text, p.inspector_id, p.county_code, p.started_at, p.ended_at, p.point_count,
			p.distance_m, p.duration_s, p.cell_codes, p.flags,
			ST_Simplify(coalesce(p.track, CASE WHEN p.ended_at IS NULL THEN
				(SELECT ST_MakeLine(t.position ORDER BY t.recorded_at) FROM field.track_points t
				 WHERE t.patrol_id = p.id HAVING count(*) >= 2) END), $5, true)
		FROM field.patrols p
		WHERE p.county_code = $1 AND p.started_at >= $2 AND p.started_at < $3
			AND ($4 = '' OR EXISTS (SELECT 1 FROM unnest(CASE WHEN cardinality(p.cell_codes) > 0
				THEN p.cell_codes ELSE p.assigned_roots END) AS cell WHERE cell LIKE $4))
			AND ($6 = '' OR p.inspector_id = $6)
			AND ($7::timestamptz IS NULL OR (p.started_at, p.id) < ($7, $8::uuid))
		ORDER BY p.started_at DESC, p.id DESC
		LIMIT $9`,
		tq.NodeCode[:6], tq.From, tq.To, prefix, tq.ToleranceM/metresPerDegree, person, afterAt, nullUUID(afterID), tq.PageSize+1)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (MapTrack, error) {
		var t MapTrack
		var dur int64
		var flags []string
		var line *geom.LineString
		err := row.Scan(&t.ID, &t.InspectorID, &t.CountyCode, &t.StartedAt, &t.EndedAt, &t.PointCount,
			&t.DistanceM, &dur, &t.CellCodes, &flags, &line)
		t.Duration = time.Duration(dur) * time.Second
		t.StartedAt, t.EndedAt = patrolTimesUTC(t.StartedAt, t.EndedAt)
		t.Flags = parseFlags(flags)
		if line != nil && line.NumCoords() >= 2 {
			t.Line = make([][2]float64, line.NumCoords())
			for i := range t.Line {
				co := line.Coord(i)
				t.Line[i] = [2]float64{co.X(), co.Y()}
			}
		}
		return t, err
	})
}

func nullUUID(id string) *string {
	if id == "" {
		return nil
	}
	return &id
}

// boundPoints simplifies line further (Douglas-Peucker, doubling the
// tolerance from tol degrees) until it has at most limit points. The first
// and last point always stay, so a loop still closes where it started.
func boundPoints(line [][2]float64, limit int, tol float64) [][2]float64 {
	if tol <= 0 {
		tol = 1e-7
	}
	for len(line) > limit {
		tol *= 2
		line = douglasPeucker(line, tol)
	}
	return line
}

// douglasPeucker keeps the points of line farther than tol from the chord
// of the stretch they are in (planar, in degrees), with the end points.
func douglasPeucker(line [][2]float64, tol float64) [][2]float64 {
	if len(line) < 3 {
		return line
	}
	keep := make([]bool, len(line))
	keep[0], keep[len(line)-1] = true, true
	stack := [][2]int{{0, len(line) - 1}}
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		far, farD := -1, tol
		for i := s[0] + 1; i < s[1]; i++ {
			if d := segmentDistance(line[i], line[s[0]], line[s[1]]); d > farD {
				far, farD = i, d
			}
		}
		if far >= 0 {
			keep[far] = true
			stack = append(stack, [2]int{s[0], far}, [2]int{far, s[1]})
		}
	}
	out := make([][2]float64, 0, len(line))
	for i, k := range keep {
		if k {
			out = append(out, line[i])
		}
	}
	return out
}

// segmentDistance is the planar distance from p to the segment a–b.
func segmentDistance(p, a, b [2]float64) float64 {
	dx, dy := b[0]-a[0], b[1]-a[1]
	t := 0.0
	if l2 := dx*dx + dy*dy; l2 > 0 {
		t = max(0, min(1, ((p[0]-a[0])*dx+(p[1]-a[1])*dy)/l2))
	}
	return math.Hypot(p[0]-a[0]-t*dx, p[1]-a[1]-t*dy)
}
