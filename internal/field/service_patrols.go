package field

import (
	"context"
	"strconv"

	ecogridv1 "ecogrid/api/ecogrid/v1"
)

// StartPatrol implements FieldService.
func (s *Service) StartPatrol(ctx context.Context, req *ecogridv1.StartPatrolRequest) (*ecogridv1.StartPatrolResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	started, err := timeOf("started_at", req.GetStartedAt())
	if err != nil {
		return nil, err
	}
	p, err := s.patrols.StartPatrol(ctx, c, req.GetPatrolId(), started)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.StartPatrolResponse{Patrol: patrolPB(p)}, nil
}

// AppendTrackPoints implements FieldService.
func (s *Service) AppendTrackPoints(ctx context.Context, req *ecogridv1.AppendTrackPointsRequest) (*ecogridv1.AppendTrackPointsResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	pts := make([]TrackPoint, len(req.GetPoints()))
	for i, p := range req.GetPoints() {
		// A bad point is refused inside the domain and counted; conversion
		// errors leave a zero point, which the domain refuses the same way.
		at, _ := timeOf("recorded_at", p.GetRecordedAt())
		pos, _ := positionOf(p.GetPosition())
		pts[i] = TrackPoint{RecordedAt: at, Position: pos}
	}
	res, err := s.patrols.AppendTrackPoints(ctx, c, req.GetPatrolId(), pts)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.AppendTrackPointsResponse{
		Added: int32(res.Added), Duplicates: int32(res.Duplicates), PointCount: res.PointCount,
		Rejected: int32(res.Rejected), FirstRejection: res.FirstRejection,
	}, nil
}

// EndPatrol implements FieldService.
func (s *Service) EndPatrol(ctx context.Context, req *ecogridv1.EndPatrolRequest) (*ecogridv1.EndPatrolResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	ended, err := timeOf("ended_at", req.GetEndedAt())
	if err != nil {
		return nil, err
	}
	p, err := s.patrols.EndPatrol(ctx, c, req.GetPatrolId(), ended)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.EndPatrolResponse{Patrol: patrolPB(p)}, nil
}

// GetPatrol implements FieldService.
func (s *Service) GetPatrol(ctx context.Context, req *ecogridv1.GetPatrolRequest) (*ecogridv1.GetPatrolResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	p, err := s.patrols.GetPatrol(ctx, c, req.GetPatrolId())
	if err != nil {
		return nil, err
	}
	return &ecogridv1.GetPatrolResponse{Patrol: patrolPB(p)}, nil
}

// GetPatrolCompliance implements FieldService.
func (s *Service) GetPatrolCompliance(ctx context.Context, req *ecogridv1.GetPatrolComplianceRequest) (*ecogridv1.GetPatrolComplianceResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	from, err := timeOf("from", req.GetFrom())
	if err != nil {
		return nil, err
	}
	to, err := timeOf("to", req.GetTo())
	if err != nil {
		return nil, err
	}
	rows, err := s.compliance.PatrolCompliance(ctx, c, req.GetNodeCode(), Period(req.GetPeriod()), from, to)
	if err != nil {
		return nil, err
	}
	out := &ecogridv1.GetPatrolComplianceResponse{}
	for _, r := range rows {
		out.Rows = append(out.Rows, &ecogridv1.ComplianceRow{
			InspectorId: r.InspectorID, CellCode: r.CellCode, PeriodStart: tsOf(r.PeriodStart),
			Required: int32(r.Required), Done: int32(r.Done), Implausible: int32(r.Implausible), Compliant: r.Compliant(),
		})
	}
	return out, nil
}

// ListPatrolTracks implements FieldService.
func (s *Service) ListPatrolTracks(ctx context.Context, req *ecogridv1.ListPatrolTracksRequest) (*ecogridv1.ListPatrolTracksResponse, error) {
	c, err := callerOf(ctx)
	if err != nil {
		return nil, err
	}
	from, err := timeOf("from", req.GetFrom())
	if err != nil {
		return nil, err
	}
	to, err := timeOf("to", req.GetTo())
	if err != nil {
		return nil, err
	}
	tracks, next, err := s.patrols.ListPatrolTracks(ctx, c, TrackQuery{
		NodeCode: req.GetNodeCode(), From: from, To: to, PersonID: req.GetPersonId(),
		ToleranceM: req.GetToleranceM(), MaxPoints: int(req.GetMaxPoints()),
		PageSize: int(req.GetPage().GetPageSize()), PageToken: req.GetPage().GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	out := &ecogridv1.ListPatrolTracksResponse{NextPageToken: next}
	for _, t := range tracks {
		out.Tracks = append(out.Tracks, trackPB(t))
	}
	return out, nil
}

func trackPB(t MapTrack) *ecogridv1.PatrolTrack {
	p := patrolPB(t.Patrol)
	return &ecogridv1.PatrolTrack{
		PatrolId: p.PatrolId, PersonId: p.InspectorId, PersonName: t.PersonName, State: p.State,
		StartedAt: p.StartedAt, EndedAt: p.EndedAt, DistanceM: p.DistanceM, DurationS: p.DurationS,
		VillageCodes: p.CellCodes, PointCount: p.PointCount, GeometryGeojson: lineGeoJSON(t.Line), Flags: p.Flags,
	}
}

// lineGeoJSON writes a GeoJSON LineString with 6 decimals (about 0.1 m),
// or "" for no line.
func lineGeoJSON(line [][2]float64) string {
	if len(line) < 2 {
		return ""
	}
	b := make([]byte, 0, 40+len(line)*24)
	b = append(b, `{"type":"LineString","coordinates":[`...)
	for i, p := range line {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		b = strconv.AppendFloat(b, p[0], 'f', 6, 64)
		b = append(b, ',')
		b = strconv.AppendFloat(b, p[1], 'f', 6, 64)
		b = append(b, ']')
	}
	return string(append(b, "]}"...))
}
