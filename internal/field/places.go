package field

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database"
	"ecogrid/internal/ledger"
	"ecogrid/internal/structerr"
	"ecogrid/internal/zones"
)

// ReachRef is a river or reservoir reach a report is attached to, by the
// version in force when the report was filed: a reach redrawn later
// leaves the report on the reach as it was.
type ReachRef struct {
	Code    string
	Version int
}

// Places is where a report lies beside its grid cell: the protected zones
// containing it and the reaches within ReachBufferM of it, nearest first,
// and what the zones' rules decided (issues 17 and 18).
type Places struct {
	// ZoneCodes are county-qualified zone codes (zones.Key), sorted.
	ZoneCodes []string
	Reaches   []ReachRef
	// EscalateNow: a zone rule sends a violation here to the county at once.
	EscalateNow bool
	// Deadline is the rectification deadline a zone rule sets; nil for none.
	Deadline *time.Time
	// Reason says which zone rule did what; "" when none changed anything.
	Reason string
	// ReportedSeverity is the severity as filed when a zone's minimum
	// raised it; 0 when it stands as filed.
	ReportedSeverity Severity
}

// ReachCodes are the codes of the reaches, nearest first.
func (p Places) ReachCodes() []string {
	out := make([]string, len(p.Reaches))
	for i, r := range p.Reaches {
		out[i] = r.Code
	}
	return out
}

// place finds the zones and reaches of a report at its WGS-84 position
// and applies the zones' rules of its county: the severity is raised to
// the strictest zone's minimum, and a violation takes the zones'
// escalation and deadline. Reaches and zones come from the in-memory
// indexes; only the county's rules are read, and only inside a zone.
func (rs *Reports) place(ctx context.Context, q database.Querier, r *Report) error {
	r.Places = Places{ZoneCodes: []string{}, Reaches: []ReachRef{}}
	if rs.reaches != nil {
		for _, reach := range rs.reaches.ReachesNear(r.Lat, r.Lon, ReachBufferM) {
			r.Places.Reaches = append(r.Places.Reaches, ReachRef{Code: reach.Code, Version: reach.Version})
		}
	}
	if rs.zones == nil {
		return nil
	}
	zs := rs.zones.ZonesAt(r.Lat, r.Lon)
	if len(zs) == 0 {
		return nil
	}
	rules, err := zones.RulesFor(ctx, q, r.Location.CountyCode)
	if err != nil {
		return fmt.Errorf("reading the zone rules of county %s: %w", r.Location.CountyCode, err)
	}
	d := zones.Apply(rules, zs, ecogridv1.Severity(r.Severity))
	r.Places.ZoneCodes = d.ZoneCodes
	if s := Severity(d.MinSeverity); s > r.Severity {
		r.Places.ReportedSeverity = r.Severity
		r.Severity = s
	}
	if r.Violation {
		r.Places.EscalateNow = d.EscalateNow
		if d.Deadline > 0 {
			dl := r.ObservedAt.Add(d.Deadline).UTC().Truncate(time.Microsecond)
			r.Places.Deadline = &dl
		}
	}
	r.Places.Reason = d.Reason
	return nil
}

// addZoneDecision writes into a violation's ledger payload what the zone
// rules decided, so the record says a zone escalated it or set its
// deadline.
func addZoneDecision(payload map[string]any, p Places) {
	if p.Reason == "" {
		return
	}
	payload["zone_rule"] = p.Reason
	payload["escalate_now"] = p.EscalateNow
	if p.Deadline != nil {
		payload["zone_deadline"] = p.Deadline.Format(time.RFC3339)
	}
	if p.ReportedSeverity != 0 {
		payload["reported_severity"] = p.ReportedSeverity.String()
	}
}

// ReachBufferM is how near a river or reservoir reach a report must be to
// be attached to it, and a violation for the reach's chiefs to answer for
// it, as for reach patrols.
const ReachBufferM = 50

// withReachChiefs adds to responsible the chiefs on the day of observation
// of every reach the report is attached to (the village, township and
// county reach chiefs and the chief river chief), once each.
func (rs *Reports) withReachChiefs(ctx context.Context, r *Report, responsible []ledger.Responsible) ([]ledger.Responsible, error) {
	if rs.chiefs == nil {
		return responsible, nil
	}
	seen := map[ledger.Responsible]bool{}
	for _, p := range responsible {
		seen[p] = true
	}
	for _, reach := range r.Places.Reaches {
		chiefs, err := rs.chiefs.ChiefsOn(ctx, reach.Code, r.ObservedAt)
		if structerr.Code(err) == codes.NotFound {
			continue // the reach was abolished since the index loaded
		}
		if err != nil {
			return nil, fmt.Errorf("finding the chiefs of reach %s: %w", reach.Code, err)
		}
		for _, ch := range chiefs {
			if !seen[ch] {
				seen[ch] = true
				responsible = append(responsible, ch)
			}
		}
	}
	return responsible, nil
}

// setReaches fills the reaches and the reported severity from their columns.
func (p *Places) setReaches(codes []string, versions []int32, reported *int16) {
	p.Reaches = make([]ReachRef, 0, len(codes))
	for i := range codes {
		if i < len(versions) {
			p.Reaches = append(p.Reaches, ReachRef{Code: codes[i], Version: int(versions[i])})
		}
	}
	if reported != nil {
		p.ReportedSeverity = Severity(*reported)
	}
}

// ReportPlaces returns the zones and reaches stored with a report (NotFound
// for an unknown report).
func ReportPlaces(ctx context.Context, q database.Querier, reportID string) (Places, error) {
	if _, err := checkUUID("report_id", reportID); err != nil {
		return Places{}, err
	}
	var p Places
	var codes []string
	var versions []int32
	var reported *int16
	err := q.QueryRow(ctx, `SELECT zone_codes, reach_codes, reach_versions, escalate_now, zone_deadline, zone_reason, reported_severity
		FROM field.reports WHERE id = $1`, reportID).
		Scan(&p.ZoneCodes, &codes, &versions, &p.EscalateNow, &p.Deadline, &p.Reason, &reported)
	if errors.Is(err, pgx.ErrNoRows) {
		return Places{}, structerr.NewNotFound("report %s not found", reportID)
	}
	if err != nil {
		return Places{}, err
	}
	p.setReaches(codes, versions, reported)
	return p, nil
}

// placeValues are the values insertReport writes for r.Places.
func placeValues(r *Report) []any {
	codes := r.Places.ReachCodes()
	versions := make([]int32, len(r.Places.Reaches))
	for i, rr := range r.Places.Reaches {
		versions[i] = int32(rr.Version)
	}
	zoneCodes := r.Places.ZoneCodes
	if zoneCodes == nil {
		zoneCodes = []string{}
	}
	var reported any
	if r.Places.ReportedSeverity != 0 {
		reported = int16(r.Places.ReportedSeverity)
	}
	return []any{zoneCodes, codes, versions, r.Places.EscalateNow, r.Places.Deadline, r.Places.Reason, reported}
}

var _ zones.PatrolTracks = Tracks{}

// CountyTracks implements zones.PatrolTracks: the tracks ([lat, lon]
// points in recording order) of a county's ended patrols started in
// [from, to), for the zones' patrol quotas.
func (t Tracks) CountyTracks(ctx context.Context, county string, from, to time.Time) ([][]zones.Point, error) {
	rows, err := t.Q.Query(ctx, `SELECT id::text FROM field.patrols
		WHERE county_code = $1 AND started_at >= $2 AND started_at < $3 AND ended_at IS NOT NULL ORDER BY started_at, id`, county, from, to)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make([][]zones.Point, 0, len(ids))
	for _, id := range ids {
		pts, err := trackCoordinates(ctx, t.Q, id)
		if err != nil {
			return nil, err
		}
		track := make([]zones.Point, len(pts))
		for i, p := range pts {
			track[i] = zones.Point{Lat: p[0], Lon: p[1]}
		}
		out = append(out, track)
	}
	return out, nil
}
