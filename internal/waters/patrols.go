package waters

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/grid"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// PatrolTrack is a finished or running patrol's track as waters needs it.
type PatrolTrack struct {
	PatrolID   string
	PersonID   string
	CountyCode string
	CellCodes  []string // the cells the patrol passed through
	StartedAt  time.Time
	Ended      bool
	Points     [][2]float64 // [latitude, longitude], WGS-84, in recording order
}

// TrackSource reads patrol tracks. Field owns patrols and implements it
// (field.Tracks); waters sits below field in the layers and so cannot
// import it. Unknown patrols are NotFound.
type TrackSource interface {
	PatrolTrack(ctx context.Context, patrolID string) (PatrolTrack, error)
	// PatrolsOf lists a person's ended patrols started in [from, to).
	PatrolsOf(ctx context.Context, personID string, from, to time.Time) ([]PatrolTrack, error)
}

// periodsIn counts the task periods in [from, to) (calendar days, weeks
// from `from`, calendar months and quarters in China Standard Time) that
// the period touches.
func periodsIn(p grid.TaskPeriod, from, to time.Time) int {
	if !to.After(from) {
		return 0
	}
	cst := time.FixedZone("CST", 8*3600)
	from, to = from.In(cst), to.In(cst)
	n := 0
	switch p {
	case grid.PeriodDay:
		for d := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, cst); d.Before(to); d = d.AddDate(0, 0, 1) {
			n++
		}
	case grid.PeriodWeek:
		for d := from; d.Before(to); d = d.AddDate(0, 0, 7) {
			n++
		}
	case grid.PeriodMonth, PeriodQuarter:
		step := 1
		if p == PeriodQuarter {
			step = 3
		}
		m := time.Date(from.Year(), from.Month()-(from.Month()-1)%time.Month(step), 1, 0, 0, 0, 0, cst)
		for ; m.Before(to); m = m.AddDate(0, step, 0) {
			n++
		}
	}
	return n
}

// ChiefCompliance is one chief's patrols of a reach in a period against the
// patrol quota of their tasks.
type ChiefCompliance struct {
	Chief      Chief
	Required   int
	Counted    int
	NotCounted int
}

// Compliant reports whether the quota is met.
func (c ChiefCompliance) Compliant() bool { return c.Counted >= c.Required }

// Compliance counts, for each reach chief of the reach whose appointment
// overlaps [from, to), the chief's patrols in the period that covered the
// reach (the version in force when each patrol started).
func (s *Store) Compliance(ctx context.Context, tracks TrackSource, reachCode string, from, to time.Time) ([]ChiefCompliance, error) {
	if !to.After(from) || to.Sub(from) > 400*24*time.Hour {
		return nil, structerr.NewInvalidArgument("give a period [from, to) of at most 400 days")
	}
	rows, err := s.pool.Query(ctx, `SELECT `+chiefColumns+` FROM waters.chiefs c
		WHERE c.role = 'reach_chief' AND c.reach_code = $1 AND c.valid_from < $3 AND (c.valid_to IS NULL OR c.valid_to > $2)
		ORDER BY c.valid_from, c.id`, reachCode, from, to)
	if err != nil {
		return nil, err
	}
	var chiefs []Chief
	for rows.Next() {
		c, err := scanChief(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		chiefs = append(chiefs, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	versions := map[int]Reach{}
	var out []ChiefCompliance
	for _, c := range chiefs {
		// The chief answers for the part of the period they held the post.
		cf, ct := from, to
		if c.ValidFrom.After(cf) {
			cf = c.ValidFrom
		}
		if c.ValidTo != nil && c.ValidTo.Before(ct) {
			ct = *c.ValidTo
		}
		cc := ChiefCompliance{Chief: c}
		for _, t := range c.Tasks {
			if t.Kind == TaskPatrol {
				cc.Required += t.Count * periodsIn(t.Period, cf, ct)
			}
		}
		patrols, err := tracks.PatrolsOf(ctx, c.PersonID.String(), cf, ct)
		if err != nil {
			return nil, err
		}
		for _, p := range patrols {
			r, err := s.versionAt(ctx, versions, reachCode, p.StartedAt)
			if err != nil {
				return nil, err
			}
			if r.Geometry != nil && Coverage(r.Geometry, p.Points, DefaultBufferM).Counts(DefaultMinShare) {
				cc.Counted++
			} else {
				cc.NotCounted++
			}
		}
		out = append(out, cc)
	}
	return out, nil
}

// versionAt returns the reach version in force at t, cached by version;
// a reach not yet drawn at t is the zero Reach.
func (s *Store) versionAt(ctx context.Context, cache map[int]Reach, code string, t time.Time) (Reach, error) {
	for _, r := range cache {
		if !r.ValidFrom.After(t) && (r.ValidTo == nil || r.ValidTo.After(t)) {
			return r, nil
		}
	}
	r, err := s.ReachAt(ctx, code, t)
	if structerr.Code(err) == codes.NotFound { // not drawn yet
		return Reach{}, nil
	}
	if err != nil {
		return Reach{}, err
	}
	cache[r.Version] = r
	return r, nil
}

// mayReadPatrol: the patroller themselves, or someone whose scope covers a
// cell the patrol passed through.
func mayReadPatrol(c scope.Caller, p PatrolTrack) bool {
	if p.PersonID == c.PersonID {
		return true
	}
	for _, cell := range p.CellCodes {
		if c.Covers(cell, scope.RoleGridChief, scope.RoleTownshipSupervisor, scope.RoleCountyOfficer) {
			return true
		}
	}
	return c.Covers(p.CountyCode, scope.RoleCountyOfficer)
}

// GetPatrolCoverage implements WatersService.
func (s *Service) GetPatrolCoverage(ctx context.Context, req *ecogridv1.GetPatrolCoverageRequest) (*ecogridv1.GetPatrolCoverageResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := uuid.Parse(req.GetPatrolId()); err != nil {
		return nil, structerr.NewInvalidArgument("patrol_id %.40q is not a UUID", req.GetPatrolId())
	}
	buffer, share := req.GetBufferM(), req.GetMinShare()
	if buffer < 0 || buffer > 1000 || share < 0 || share > 1 {
		return nil, structerr.NewInvalidArgument("buffer_m is between 0 and 1000 and min_share between 0 and 1")
	}
	if s.tracks == nil {
		return nil, structerr.NewUnavailable("patrol tracks are not available on this server")
	}
	p, err := s.tracks.PatrolTrack(ctx, strings.ToLower(req.GetPatrolId()))
	if err != nil {
		return nil, err
	}
	if !mayReadPatrol(c, p) {
		return nil, structerr.NewNotFound("patrol %s not found", req.GetPatrolId())
	}
	r, err := s.visibleReach(ctx, c, req.GetReachCode(), p.StartedAt)
	if err != nil {
		return nil, err
	}
	cov := Coverage(r.Geometry, p.Points, buffer)
	return &ecogridv1.GetPatrolCoverageResponse{ReachLengthM: cov.ReachLengthM, CoveredLengthM: cov.CoveredM, Share: cov.Share, Counts: cov.Counts(share)}, nil
}

// GetReachCompliance implements WatersService.
func (s *Service) GetReachCompliance(ctx context.Context, req *ecogridv1.GetReachComplianceRequest) (*ecogridv1.GetReachComplianceResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	from, to := timeOrZero(req.GetFrom()), timeOrZero(req.GetTo())
	if _, err := s.visibleReach(ctx, c, req.GetReachCode(), time.Now()); err != nil {
		return nil, err
	}
	if s.tracks == nil {
		return nil, structerr.NewUnavailable("patrol tracks are not available on this server")
	}
	rows, err := s.store.Compliance(ctx, s.tracks, req.GetReachCode(), from, to)
	if err != nil {
		return nil, err
	}
	out := &ecogridv1.GetReachComplianceResponse{}
	for _, r := range rows {
		out.Chiefs = append(out.Chiefs, &ecogridv1.ChiefCompliance{Chief: chiefProto(r.Chief), Required: int32(r.Required),
			Counted: int32(r.Counted), NotCounted: int32(r.NotCounted), Compliant: r.Compliant()})
	}
	return out, nil
}
