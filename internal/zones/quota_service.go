package zones

import (
	"context"
	"time"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/structerr"
)

// PatrolTracks reads the tracks of a county's ended patrols started in
// [from, to). Field owns patrols and implements it (field.Tracks); zones
// lies below field and cannot import it.
type PatrolTracks interface {
	CountyTracks(ctx context.Context, county string, from, to time.Time) ([][]Point, error)
}

// chinaTime is where a county office's months begin.
var chinaTime = time.FixedZone("CST", 8*3600)

// monthOf parses YYYY-MM (China Standard Time), "" being the month of now.
func monthOf(s string, now time.Time) (time.Time, error) {
	if s == "" {
		n := now.In(chinaTime)
		return time.Date(n.Year(), n.Month(), 1, 0, 0, 0, 0, chinaTime), nil
	}
	m, err := time.ParseInLocation("2006-01", s, chinaTime)
	if err != nil {
		return time.Time{}, structerr.NewInvalidArgument("month %.20q is not YYYY-MM", s)
	}
	return m, nil
}

// GetZonePatrolQuotas implements ZoneService: the county's patrols of the
// month counted per current zone (a patrol counts for a zone when a point
// of its track lies inside), against the rule's patrols per month.
func (s *Service) GetZonePatrolQuotas(ctx context.Context, req *ecogridv1.GetZonePatrolQuotasRequest) (*ecogridv1.GetZonePatrolQuotasResponse, error) {
	c, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	if err := county(c, req.GetCountyCode(), false); err != nil {
		return nil, err
	}
	if s.Tracks == nil {
		return nil, structerr.NewUnavailable("patrol tracks are not available on this server")
	}
	from, err := monthOf(req.GetMonth(), time.Now())
	if err != nil {
		return nil, err
	}
	tracks, err := s.Tracks.CountyTracks(ctx, req.GetCountyCode(), from, from.AddDate(0, 1, 0))
	if err != nil {
		return nil, err
	}
	rules, err := RulesFor(ctx, s.store.pool, req.GetCountyCode())
	if err != nil {
		return nil, err
	}
	zs := s.index.InForce(req.GetCountyCode())
	names := make(map[Key]string, len(zs))
	for _, z := range zs {
		names[z.Key()] = z.Name
	}
	resp := &ecogridv1.GetZonePatrolQuotasResponse{Month: from.Format("2006-01")}
	for _, q := range Quotas(rules, zs, s.index.CountPatrols(tracks)) {
		resp.Quotas = append(resp.Quotas, &ecogridv1.ZonePatrolQuota{ZoneCode: q.Zone.String(), Kind: string(q.Kind), Name: names[q.Zone],
			Required: int32(q.Required), Done: int32(q.Done), Short: q.Short()})
	}
	return resp, nil
}
