package field

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/coord"
	"ecogrid/internal/database"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// PatrolFlag marks why a patrol may not count as done. The values match
// ecogrid.v1.PatrolFlag.
type PatrolFlag int

// Patrol flags.
const (
	FlagImpossibleSpeed     PatrolFlag = 1
	FlagTooShortDuration    PatrolFlag = 2
	FlagTooShortDistance    PatrolFlag = 3
	FlagOutsideAssignedArea PatrolFlag = 4
	FlagNoTrack             PatrolFlag = 5
)

var flagNames = map[PatrolFlag]string{
	FlagImpossibleSpeed:     "impossible_speed",
	FlagTooShortDuration:    "too_short_duration",
	FlagTooShortDistance:    "too_short_distance",
	FlagOutsideAssignedArea: "outside_assigned_area",
	FlagNoTrack:             "no_track",
}

// String is the name stored in the database.
func (f PatrolFlag) String() string { return flagNames[f] }

// parseFlags are the known flags of a stored patrol; unknown ones are dropped.
func parseFlags(stored []string) []PatrolFlag {
	var out []PatrolFlag
	for _, f := range stored {
		if fl := parseFlag(f); fl != 0 {
			out = append(out, fl)
		}
	}
	return out
}

// patrolTimesUTC is a stored patrol's start and end (nil while under way) in UTC.
func patrolTimesUTC(start time.Time, end *time.Time) (time.Time, *time.Time) {
	if end != nil {
		e := end.UTC()
		end = &e
	}
	return start.UTC(), end
}

func parseFlag(s string) PatrolFlag {
	for k, v := range flagNames {
		if v == s {
			return k
		}
	}
	return 0
}

// Patrol is one walk or drive of an inspector.
type Patrol struct {
	ID                string
	InspectorID       string
	CountyCode        string
	AssignedRoots     []string
	StartedAt         time.Time
	EndedAt           *time.Time
	PointCount        int64
	DistanceM         float64
	Duration          time.Duration
	MaxSpeedKmh       float64
	PointsOutsideArea int64
	CellCodes         []string
	Flags             []PatrolFlag
}

// Plausible reports whether the patrol counts as done.
func (p Patrol) Plausible() bool { return len(p.Flags) == 0 }

// TrackPoint is one GPS fix.
type TrackPoint struct {
	RecordedAt time.Time
	Position   Position
}

// patrolRoles are the roles whose holders patrol cells.
var patrolRoles = []scope.Role{scope.RoleInspector, scope.RoleGridChief}

// StartPatrol opens a patrol under a client-generated id. A replay returns
// the original patrol; the id reused for another start is AlreadyExists.
func (ps *Patrols) StartPatrol(ctx context.Context, c scope.Caller, id string, startedAt time.Time) (Patrol, error) {
	if c.PersonID == "" {
		return Patrol{}, structerr.NewUnauthenticated("no caller")
	}
	if _, err := checkUUID("patrol_id", id); err != nil {
		return Patrol{}, err
	}
	id = strings.ToLower(id)
	if startedAt.IsZero() {
		return Patrol{}, structerr.NewInvalidArgument("started_at is missing")
	}
	startedAt = startedAt.UTC().Truncate(time.Microsecond)
	reqHash := []byte(c.PersonID + "\x00" + startedAt.Format(time.RFC3339Nano))
	if p, h, err := getPatrol(ctx, ps.pool, id, false); err == nil {
		if p.InspectorID != c.PersonID || string(h) != string(reqHash) {
			return Patrol{}, structerr.NewAlreadyExists("patrol %s was already started with different details", id)
		}
		return p, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return Patrol{}, err
	}
	now := ps.now()
	if startedAt.After(now.Add(ps.cfg.MaxClockSkew)) {
		return Patrol{}, structerr.NewInvalidArgument("started_at %s is in the future: check the phone's clock", startedAt.Format(time.RFC3339))
	}
	if startedAt.Before(now.Add(-ps.cfg.MaxReportAge)) {
		return Patrol{}, structerr.NewInvalidArgument("started_at %s is too long ago", startedAt.Format(time.RFC3339))
	}
	roots := c.Roots(patrolRoles...)
	if len(roots) == 0 {
		roots = c.Roots()
	}
	county := homeCounty(c)
	if county == "" {
		return Patrol{}, structerr.NewPermissionDenied("you are not assigned to any grid cell")
	}
	p := Patrol{ID: id, InspectorID: c.PersonID, CountyCode: county, AssignedRoots: roots, StartedAt: startedAt}
	inserted, err := insertPatrol(ctx, ps.pool, p, reqHash)
	if err != nil {
		return Patrol{}, err
	}
	if !inserted { // a concurrent start of the same id
		return ps.StartPatrol(ctx, c, id, startedAt)
	}
	return p, nil
}

// ownPatrol loads the caller's patrol (locked when tx); another
// inspector's patrol is NotFound.
func ownPatrol(ctx context.Context, q database.Querier, c scope.Caller, id string, lock bool) (Patrol, error) {
	if _, err := checkUUID("patrol_id", id); err != nil {
		return Patrol{}, err
	}
	p, _, err := getPatrol(ctx, q, strings.ToLower(id), lock)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && p.InspectorID != c.PersonID) {
		return Patrol{}, structerr.NewNotFound("patrol %s not found", id)
	}
	return p, err
}

// AppendResult says what a batch of track points did.
type AppendResult struct {
	Added          int
	Duplicates     int
	Rejected       int
	FirstRejection string
	PointCount     int64
}

// slack is how far outside the patrol's start and end a fix may lie (the
// app may take the first fix before pressing start).
const slack = 10 * time.Minute

// AppendTrackPoints stores a batch of fixes exactly once, whatever order
// and however often batches arrive. Unusable fixes are counted and
// skipped; the rest of the batch is kept. A late batch for an ended patrol
// recomputes its summary.
func (ps *Patrols) AppendTrackPoints(ctx context.Context, c scope.Caller, patrolID string, points []TrackPoint) (AppendResult, error) {
	if len(points) == 0 {
		return AppendResult{}, structerr.NewInvalidArgument("the batch has no points")
	}
	if len(points) > ps.cfg.MaxTrackBatch {
		return AppendResult{}, structerr.NewInvalidArgument("the batch has %d points, at most %d are allowed", len(points), ps.cfg.MaxTrackBatch)
	}
	var res AppendResult
	err := database.InTx(ctx, ps.pool, func(tx pgx.Tx) error {
		res = AppendResult{}
		p, err := ownPatrol(ctx, tx, c, patrolID, true)
		if err != nil {
			return err
		}
		now := ps.now()
		batch := trackBatch{}
		seen := make(map[int64]bool, len(points))
		reject := func(i int, why string) {
			res.Rejected++
			if res.FirstRejection == "" {
				res.FirstRejection = fmt.Sprintf("point %d: %s", i, why)
			}
		}
		for i, pt := range points {
			if pt.RecordedAt.IsZero() {
				reject(i, "recorded_at is missing")
				continue
			}
			t := pt.RecordedAt.UTC().Truncate(time.Microsecond)
			switch {
			case t.After(now.Add(ps.cfg.MaxClockSkew)):
				reject(i, "recorded_at is in the future")
				continue
			case t.Before(p.StartedAt.Add(-slack)):
				reject(i, "recorded_at is before the patrol started")
				continue
			case p.EndedAt != nil && t.After(p.EndedAt.Add(slack)):
				reject(i, "recorded_at is after the patrol ended")
				continue
			}
			lat, lon, err := pt.Position.check(ps.cfg.MaxAccuracyM)
			if err != nil {
				reject(i, err.Error())
				continue
			}
			if seen[t.UnixMicro()] {
				res.Duplicates++
				continue
			}
			seen[t.UnixMicro()] = true
			loc, found, err := ps.locator.Locate(ctx, lat, lon)
			if err != nil {
				return fmt.Errorf("locating track point: %w", err)
			}
			village := ""
			if found {
				village = loc.VillageCode
			}
			batch.add(t, lat, lon, pt.Position, village)
		}
		if len(batch.times) > 0 {
			added, err := insertTrackPoints(ctx, tx, p.ID, batch)
			if err != nil {
				return err
			}
			res.Added = int(added)
			res.Duplicates += len(batch.times) - res.Added
			ps.metrics.trackPoints.Add(float64(added))
		}
		res.PointCount, err = bumpPointCount(ctx, tx, p.ID, res.Added)
		if err != nil {
			return err
		}
		if p.EndedAt != nil && res.Added > 0 {
			_, err = ps.summarize(ctx, tx, p)
		}
		return err
	})
	return res, err
}

// EndPatrol closes a patrol and computes its summary. Ending it again
// returns the same patrol (the first end time stays). A zero endedAt
// means now: the app that ends a patrol as the inspector taps "end" need
// not send its own clock (issue 14).
func (ps *Patrols) EndPatrol(ctx context.Context, c scope.Caller, patrolID string, endedAt time.Time) (Patrol, error) {
	if endedAt.IsZero() {
		endedAt = ps.now()
	}
	endedAt = endedAt.UTC().Truncate(time.Microsecond)
	var out Patrol
	wasEnded := false
	err := database.InTx(ctx, ps.pool, func(tx pgx.Tx) error {
		p, err := ownPatrol(ctx, tx, c, patrolID, true)
		if err != nil {
			return err
		}
		if p.EndedAt != nil {
			out, wasEnded = p, true
			return nil
		}
		if endedAt.Before(p.StartedAt) {
			return structerr.NewInvalidArgument("ended_at %s is before started_at %s", endedAt.Format(time.RFC3339), p.StartedAt.Format(time.RFC3339))
		}
		if endedAt.After(ps.now().Add(ps.cfg.MaxClockSkew)) {
			return structerr.NewInvalidArgument("ended_at %s is in the future: check the phone's clock", endedAt.Format(time.RFC3339))
		}
		p.EndedAt = &endedAt
		out, err = ps.summarize(ctx, tx, p)
		return err
	})
	if err == nil && !wasEnded {
		ps.metrics.patrols.WithLabelValues(strconv.FormatBool(out.Plausible())).Inc()
	}
	return out, err
}

// summarize computes distance, duration, cells and flags of an ended
// patrol from its stored track, and saves them.
func (ps *Patrols) summarize(ctx context.Context, tx pgx.Tx, p Patrol) (Patrol, error) {
	s, err := trackSummary(ctx, tx, p.ID, p.AssignedRoots)
	if err != nil {
		return Patrol{}, err
	}
	p.PointCount = s.points
	p.DistanceM = s.distanceM
	p.Duration = s.span
	p.MaxSpeedKmh = s.maxSpeedKmh
	p.PointsOutsideArea = s.outside
	p.CellCodes, err = ps.cellsAlongTrack(ctx, tx, p.ID, s.cells)
	if err != nil {
		return Patrol{}, err
	}
	p.Flags = nil
	if s.points < 2 {
		p.Flags = append(p.Flags, FlagNoTrack)
	}
	if s.maxSpeedKmh > ps.cfg.MaxSpeedKmh {
		p.Flags = append(p.Flags, FlagImpossibleSpeed)
	}
	rule, err := ps.strictestRule(ctx, tx, p.CellCodes)
	if err != nil {
		return Patrol{}, err
	}
	if s.points >= 2 {
		if s.span < rule.MinDuration {
			p.Flags = append(p.Flags, FlagTooShortDuration)
		}
		if s.distanceM < rule.MinDistanceM {
			p.Flags = append(p.Flags, FlagTooShortDistance)
		}
	}
	if s.outside > 0 {
		p.Flags = append(p.Flags, FlagOutsideAssignedArea)
	}
	if err := saveSummary(ctx, tx, p); err != nil {
		return Patrol{}, err
	}
	return p, nil
}

// Track interpolation: fixes are often sparse (battery saving, tunnels), so
// a walk can cross a cell with no fix inside it. Between consecutive fixes
// further apart than sampleStepM the line is sampled every sampleStepM and
// each sample located; legs longer than maxInterpolatedLegM are jumps (no
// signal, or implausible) and are not filled in.
const (
	sampleStepM         = 25.0
	maxInterpolatedLegM = 5000.0
)

// cellsAlongTrack adds to the cells of the fixes those the straight legs
// between fixes pass through, and returns them sorted.
func (ps *Patrols) cellsAlongTrack(ctx context.Context, q database.Querier, patrolID string, cells []string) ([]string, error) {
	pts, err := trackCoordinates(ctx, q, patrolID)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, c := range cells {
		set[c] = true
	}
	for i := 1; i < len(pts); i++ {
		a, b := pts[i-1], pts[i]
		d := coord.DistanceMeters(a[0], a[1], b[0], b[1])
		if d <= sampleStepM || d > maxInterpolatedLegM {
			continue
		}
		n := int(d / sampleStepM)
		for k := 1; k <= n; k++ {
			t := float64(k) / float64(n+1)
			loc, found, err := ps.locator.Locate(ctx, a[0]+(b[0]-a[0])*t, a[1]+(b[1]-a[1])*t)
			if err != nil {
				return nil, fmt.Errorf("locating track: %w", err)
			}
			if found && loc.VillageCode != "" {
				set[loc.VillageCode] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	slices.Sort(out)
	return out, nil
}

// strictestRule is the most demanding minimum among the cells passed.
func (ps *Patrols) strictestRule(ctx context.Context, q database.Querier, cells []string) (PatrolRule, error) {
	rule := PatrolRule{}
	rules := map[string]PatrolRule{}
	if len(cells) > 0 {
		var err error
		rules, err = patrolRules(ctx, q, cells)
		if err != nil {
			return PatrolRule{}, fmt.Errorf("reading patrol rules: %w", err)
		}
	}
	if len(cells) == 0 {
		cells = []string{""}
	}
	for _, c := range cells {
		r, ok := rules[c]
		if !ok || (r.MinDuration == 0 && r.MinDistanceM == 0) {
			r.MinDuration, r.MinDistanceM = ps.cfg.DefaultPatrolRule.MinDuration, ps.cfg.DefaultPatrolRule.MinDistanceM
		}
		rule.MinDuration = max(rule.MinDuration, r.MinDuration)
		rule.MinDistanceM = max(rule.MinDistanceM, r.MinDistanceM)
	}
	return rule, nil
}

// GetPatrol returns the caller's own patrol, or one in a cell under the
// caller's supervision.
func (ps *Patrols) GetPatrol(ctx context.Context, c scope.Caller, id string) (Patrol, error) {
	if _, err := checkUUID("patrol_id", id); err != nil {
		return Patrol{}, err
	}
	p, _, err := getPatrol(ctx, ps.pool, strings.ToLower(id), false)
	if errors.Is(err, pgx.ErrNoRows) {
		return Patrol{}, structerr.NewNotFound("patrol %s not found", id)
	}
	if err != nil {
		return Patrol{}, err
	}
	if p.InspectorID == c.PersonID {
		return p, nil
	}
	codes := p.CellCodes
	if len(codes) == 0 {
		codes = p.AssignedRoots
	}
	if slices.ContainsFunc(codes, func(code string) bool { return c.Covers(code, supervisorRoles...) }) {
		return p, nil
	}
	return Patrol{}, structerr.NewNotFound("patrol %s not found", id)
}

// supervisorRoles may read other people's patrols and compliance.
var supervisorRoles = []scope.Role{scope.RoleGridChief, scope.RoleTownshipSupervisor, scope.RoleCountyOfficer}
