package assessment

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"strconv"

	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Service is the AssessmentService.
type Service struct {
	ecogridv1.UnimplementedAssessmentServiceServer
	a      *Assessor
	logger *slog.Logger
}

var _ ecogridv1.AssessmentServiceServer = (*Service)(nil)

// NewService returns the AssessmentService over a.
func NewService(a *Assessor, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{a: a, logger: logger}
}

func caller(ctx context.Context) (scope.Caller, error) {
	c, ok := scope.FromContext(ctx)
	if !ok {
		return c, structerr.NewUnauthenticated("sign in first")
	}
	return c, nil
}

func indicatorProto(ind Indicator) *ecogridv1.Indicator {
	return &ecogridv1.Indicator{Code: ind.Code, Name: ind.Name, Definition: ind.Definition, Unit: ind.Unit, Direction: string(ind.Direction),
		Best: ind.Best, Worst: ind.Worst, Source: string(ind.Source), ScoringRule: ind.ScoringRule()}
}

// ListIndicators implements AssessmentService.
func (s *Service) ListIndicators(ctx context.Context, req *ecogridv1.ListIndicatorsRequest) (*ecogridv1.ListIndicatorsResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	cat, err := s.a.Catalogue(ctx, c, req.GetCountyCode())
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListIndicatorsResponse{}
	for _, ind := range cat {
		resp.Indicators = append(resp.Indicators, indicatorProto(ind))
	}
	return resp, nil
}

// DefineIndicator implements AssessmentService.
func (s *Service) DefineIndicator(ctx context.Context, req *ecogridv1.DefineIndicatorRequest) (*ecogridv1.DefineIndicatorResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	in := req.GetIndicator()
	if in == nil {
		return nil, structerr.NewInvalidArgument("give the indicator")
	}
	ind, err := s.a.DefineIndicator(ctx, c, req.GetCountyCode(), Indicator{Code: in.GetCode(), Name: in.GetName(), Definition: in.GetDefinition(),
		Unit: in.GetUnit(), Direction: Direction(in.GetDirection()), Best: in.GetBest(), Worst: in.GetWorst(), Source: Source(in.GetSource())})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.DefineIndicatorResponse{Indicator: indicatorProto(ind)}, nil
}

// ListWeightSets implements AssessmentService.
func (s *Service) ListWeightSets(ctx context.Context, req *ecogridv1.ListWeightSetsRequest) (*ecogridv1.ListWeightSetsResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	sets, err := s.a.WeightSets(ctx, c, req.GetCountyCode())
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListWeightSetsResponse{}
	for _, k := range sortedKinds(sets) {
		resp.WeightSets = append(resp.WeightSets, &ecogridv1.WeightSet{AreaKind: string(k), Weights: sets[k]})
	}
	return resp, nil
}

func sortedKinds(m map[AreaKind]Weights) []AreaKind { return slices.Sorted(maps.Keys(m)) }

// SetWeights implements AssessmentService.
func (s *Service) SetWeights(ctx context.Context, req *ecogridv1.SetWeightsRequest) (*ecogridv1.SetWeightsResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.a.SetWeights(ctx, c, req.GetCountyCode(), AreaKind(req.GetAreaKind()), req.GetWeights()); err != nil {
		return nil, err
	}
	return &ecogridv1.SetWeightsResponse{}, nil
}

// SetNodeKind implements AssessmentService.
func (s *Service) SetNodeKind(ctx context.Context, req *ecogridv1.SetNodeKindRequest) (*ecogridv1.SetNodeKindResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.a.SetNodeKind(ctx, c, req.GetNodeCode(), AreaKind(req.GetAreaKind())); err != nil {
		return nil, err
	}
	return &ecogridv1.SetNodeKindResponse{}, nil
}

// RecordIndicatorValue implements AssessmentService.
func (s *Service) RecordIndicatorValue(ctx context.Context, req *ecogridv1.RecordIndicatorValueRequest) (*ecogridv1.RecordIndicatorValueResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	v, err := s.a.RecordValue(ctx, c, ValueInput{ID: req.GetValueId(), Period: req.GetPeriod(), NodeCode: req.GetNodeCode(), Indicator: req.GetIndicator(),
		Value: req.GetValue(), EvidenceNote: req.GetEvidenceNote(), AttachmentName: req.GetAttachmentName(), AttachmentType: req.GetAttachmentType(),
		Attachment: req.GetAttachment()})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.RecordIndicatorValueResponse{Value: &ecogridv1.IndicatorValue{ValueId: v.ID, NodeCode: v.NodeCode, Period: v.Period,
		Indicator: v.Indicator, Value: v.Value, EvidenceNote: v.EvidenceNote, AttachmentName: v.AttachmentName, AttachmentSha256: v.AttachmentSHA,
		EnteredBy: v.EnteredBy, EnteredAt: timestamppb.New(v.EnteredAt), LedgerRecord: v.NodeCode[:6] + "/" + strconv.FormatInt(v.Seq, 10), Late: v.Late}}, nil
}

// GetIndicatorValueAttachment implements AssessmentService.
func (s *Service) GetIndicatorValueAttachment(ctx context.Context, req *ecogridv1.GetIndicatorValueAttachmentRequest) (*ecogridv1.GetIndicatorValueAttachmentResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	name, ct, data, err := s.a.Attachment(ctx, c, req.GetValueId())
	if err != nil {
		return nil, err
	}
	return &ecogridv1.GetIndicatorValueAttachmentResponse{Name: name, ContentType: ct, Data: data}, nil
}

func levelOf(l ecogridv1.ScorecardLevel) (string, error) {
	switch l {
	case ecogridv1.ScorecardLevel_SCORECARD_LEVEL_VILLAGE:
		return LevelVillage, nil
	case ecogridv1.ScorecardLevel_SCORECARD_LEVEL_TOWNSHIP:
		return LevelTownship, nil
	case ecogridv1.ScorecardLevel_SCORECARD_LEVEL_PERSON:
		return LevelPerson, nil
	}
	return "", structerr.NewInvalidArgument("level must be village, township or person")
}

func figureProto(f Figure) *ecogridv1.Figure {
	out := &ecogridv1.Figure{Indicator: f.Code, Applicable: f.Applicable, Value: f.Value, Score: f.Score, Weight: f.Weight,
		ItemCount: int32(f.Count), LateItems: int32(f.Late)}
	for _, it := range f.Items {
		out.Items = append(out.Items, &ecogridv1.FigureItem{Ref: it.Ref, Kind: it.Kind, Action: it.Action, SubjectType: it.SubjectType,
			SubjectId: it.SubjectID, NodeCode: it.NodeCode, At: timestamppb.New(it.At), Late: it.Late})
	}
	return out
}

// GetScorecards implements AssessmentService.
func (s *Service) GetScorecards(ctx context.Context, req *ecogridv1.GetScorecardsRequest) (*ecogridv1.GetScorecardsResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	level, err := levelOf(req.GetLevel())
	if err != nil {
		return nil, err
	}
	q := Query{County: req.GetCountyCode(), Period: req.GetPeriod(), Level: level, Parent: req.GetParentCode(), Trend: int(req.GetTrendPeriods())}
	cards, closed, err := s.a.Scorecards(ctx, c, q)
	if err != nil {
		return nil, err
	}
	p, _ := ParsePeriod(q.County, q.Period)
	data, err := json.Marshal(cards)
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.GetScorecardsResponse{Period: p.Label, FromTime: timestamppb.New(p.From), ToTime: timestamppb.New(p.To), Closed: closed, ScorecardsJson: data}
	for _, sc := range cards {
		pc := &ecogridv1.Scorecard{Code: sc.Code, Name: sc.Name, ParentCode: sc.Parent, AreaKind: string(sc.Kind), Total: sc.Total,
			Rank: int32(sc.Rank), Siblings: int32(sc.Of), LateItems: int32(sc.Late)}
		for _, f := range sc.Figures {
			pc.Figures = append(pc.Figures, figureProto(f))
		}
		for _, t := range sc.Trend {
			pc.Trend = append(pc.Trend, &ecogridv1.TrendPoint{Period: t.Period, Total: t.Total, Found: t.Found})
		}
		resp.Scorecards = append(resp.Scorecards, pc)
	}
	if req.GetFormat() != ecogridv1.ScorecardFormat_SCORECARD_FORMAT_UNSPECIFIED {
		cat, err := s.a.Catalogue(ctx, c, q.County)
		if err != nil {
			return nil, err
		}
		sheet := Sheet{Period: p, Level: level, Closed: closed, Catalogue: cat, Cards: cards}
		var b bytes.Buffer
		switch req.GetFormat() {
		case ecogridv1.ScorecardFormat_SCORECARD_FORMAT_CSV:
			err, resp.ContentType = WriteCSV(&b, sheet), "text/csv; charset=utf-8"
		case ecogridv1.ScorecardFormat_SCORECARD_FORMAT_XLSX:
			err, resp.ContentType = WriteXLSX(&b, sheet), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
		case ecogridv1.ScorecardFormat_SCORECARD_FORMAT_PDF:
			err, resp.ContentType = WritePDF(&b, sheet), "application/pdf"
		default:
			return nil, structerr.NewInvalidArgument("format must be CSV, XLSX or PDF")
		}
		if err != nil {
			return nil, err
		}
		resp.Document = b.Bytes()
	}
	return resp, nil
}

// GetFigureDetail implements AssessmentService.
func (s *Service) GetFigureDetail(ctx context.Context, req *ecogridv1.GetFigureDetailRequest) (*ecogridv1.GetFigureDetailResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	level, err := levelOf(req.GetLevel())
	if err != nil {
		return nil, err
	}
	f, closed, err := s.a.Detail(ctx, c, Query{County: req.GetCountyCode(), Period: req.GetPeriod(), Level: level}, req.GetCode(), req.GetIndicator())
	if err != nil {
		return nil, err
	}
	return &ecogridv1.GetFigureDetailResponse{Closed: closed, Figure: figureProto(f)}, nil
}

// ClosePeriod implements AssessmentService.
func (s *Service) ClosePeriod(ctx context.Context, req *ecogridv1.ClosePeriodRequest) (*ecogridv1.ClosePeriodResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	rec, err := s.a.ClosePeriod(ctx, c, req.GetCountyCode(), req.GetPeriod())
	if err != nil {
		return nil, err
	}
	s.logger.Info("assessment period closed", "county", rec.CountyCode, "period", req.GetPeriod(), "seq", rec.Seq, "actor_id", rec.ActorID)
	return &ecogridv1.ClosePeriodResponse{LedgerRecord: rec.CountyCode + "/" + strconv.FormatInt(rec.Seq, 10), ClosedAt: timestamppb.New(rec.RecordedAt)}, nil
}
