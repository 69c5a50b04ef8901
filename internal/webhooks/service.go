package webhooks

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/people"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Service is the WebhookService gRPC server: the county office manages its
// county's subscribers; the dispatcher (cased) picks the changes up at its
// next sync.
type Service struct {
	ecogridv1.UnimplementedWebhookServiceServer
	pool *pgxpool.Pool
	log  *slog.Logger
}

var _ ecogridv1.WebhookServiceServer = (*Service)(nil)

// NewService returns the WebhookService over pool.
func NewService(pool *pgxpool.Pool, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{pool: pool, log: log}
}

// manages checks that the caller is the county office of county (or an
// administrator); anyone else finds no such county.
func manages(ctx context.Context, county string) (scope.Caller, error) {
	c, ok := scope.FromContext(ctx)
	if !ok {
		return c, structerr.NewUnauthenticated("sign in first")
	}
	if err := people.CheckCountyCode(county); err != nil {
		return c, err
	}
	if !c.Covers(county, scope.RoleCountyOfficer) {
		return c, structerr.NewNotFound("county %.20s not found", county)
	}
	return c, nil
}

// subscriberOf reads a subscriber the caller manages; NotFound otherwise.
func subscriberOf(ctx context.Context, pool *pgxpool.Pool, id string) (Subscriber, error) {
	u, err := uuid.Parse(strings.TrimSpace(id))
	if err != nil {
		return Subscriber{}, structerr.NewInvalidArgument("subscriber_id %.40q is not a uuid", id)
	}
	s, err := GetSubscriber(ctx, pool, u)
	if err != nil {
		return s, err
	}
	if _, err := manages(ctx, s.CountyCode); err != nil {
		return s, structerr.NewNotFound("subscriber %s not found", u)
	}
	return s, nil
}

func subscriberProto(s Subscriber) *ecogridv1.Subscriber {
	p := &ecogridv1.Subscriber{SubscriberId: s.ID.String(), CountyCode: s.CountyCode, Url: s.URL, EventTypes: s.EventTypes,
		Json: s.JSON, CreatedAt: timestamppb.New(s.CreatedAt), StartAt: timestamppb.New(s.StartAt), MaxBatch: int32(s.MaxBatch)}
	if s.DisabledAt != nil {
		p.DisabledAt = timestamppb.New(*s.DisabledAt)
	}
	return p
}

// CreateSubscriber implements WebhookService. The secret is made here and
// returned once; a replay of the same request (same id, county, URL,
// types, encoding) returns it again.
func (s *Service) CreateSubscriber(ctx context.Context, req *ecogridv1.CreateSubscriberRequest) (*ecogridv1.CreateSubscriberResponse, error) {
	id, err := uuid.Parse(strings.TrimSpace(req.GetSubscriberId()))
	if err != nil {
		return nil, structerr.NewInvalidArgument("subscriber_id %.40q is not a uuid (the client makes one, so a retry is harmless)", req.GetSubscriberId())
	}
	c, err := manages(ctx, req.GetCountyCode())
	if err != nil {
		return nil, err
	}
	sub := Subscriber{ID: id, CountyCode: req.GetCountyCode(), URL: req.GetUrl(), EventTypes: req.GetEventTypes(), JSON: req.GetJson(),
		MaxBatch: int(req.GetMaxBatch())}
	if sub.EventTypes == nil {
		sub.EventTypes = []string{}
	}
	if prev, err := GetSubscriber(ctx, s.pool, id); err == nil {
		// A retry: the same request gets the stored secret back.
		sub.Secret = prev.Secret
		if _, err := manages(ctx, prev.CountyCode); err != nil {
			return nil, structerr.NewAlreadyExists("subscriber id %s is already used", id)
		}
	} else if structerr.Code(err) != codes.NotFound {
		return nil, err
	} else {
		sub.Secret = NewSecret()
	}
	sub.CreatedBy, _ = uuid.Parse(c.PersonID)
	stored, err := Subscribe(ctx, s.pool, sub)
	if err != nil {
		return nil, err
	}
	s.log.Info("webhooks: subscriber registered", "subscriber", stored.ID, "county", stored.CountyCode, "person", c.PersonID)
	return &ecogridv1.CreateSubscriberResponse{Subscriber: subscriberProto(stored), Secret: stored.Secret}, nil
}

// ListSubscribers implements WebhookService.
func (s *Service) ListSubscribers(ctx context.Context, req *ecogridv1.ListSubscribersRequest) (*ecogridv1.ListSubscribersResponse, error) {
	if _, err := manages(ctx, req.GetCountyCode()); err != nil {
		return nil, err
	}
	subs, err := SubscribersOf(ctx, s.pool, req.GetCountyCode())
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListSubscribersResponse{}
	for _, sub := range subs {
		resp.Subscribers = append(resp.Subscribers, subscriberProto(sub))
	}
	return resp, nil
}

// DisableSubscriber implements WebhookService.
func (s *Service) DisableSubscriber(ctx context.Context, req *ecogridv1.DisableSubscriberRequest) (*ecogridv1.DisableSubscriberResponse, error) {
	sub, err := subscriberOf(ctx, s.pool, req.GetSubscriberId())
	if err != nil {
		return nil, err
	}
	if err := Disable(ctx, s.pool, sub.ID); err != nil {
		return nil, err
	}
	return &ecogridv1.DisableSubscriberResponse{}, nil
}

// ListDeliveries implements WebhookService.
func (s *Service) ListDeliveries(ctx context.Context, req *ecogridv1.ListDeliveriesRequest) (*ecogridv1.ListDeliveriesResponse, error) {
	sub, err := subscriberOf(ctx, s.pool, req.GetSubscriberId())
	if err != nil {
		return nil, err
	}
	n := int(req.GetPageSize())
	switch {
	case n < 0 || n > 1000:
		return nil, structerr.NewInvalidArgument("page_size is 1 to 1000, not %d", n)
	case n == 0:
		n = 100
	}
	var since time.Time
	if req.GetSince() != nil {
		since = req.GetSince().AsTime()
	}
	ds, err := DeliveriesSince(ctx, s.pool, sub.ID, since, n)
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListDeliveriesResponse{}
	for _, d := range ds {
		resp.Deliveries = append(resp.Deliveries, &ecogridv1.Delivery{EventId: d.EventID.String(), CaseId: d.CaseID, EventType: d.EventType,
			StreamSequence: d.StreamSeq, PublishedAt: timestamppb.New(d.PublishedAt), Attempts: int32(d.Attempts), DeliveredAt: timestamppb.New(d.DeliveredAt)})
	}
	return resp, nil
}

// ReplaySubscriber implements WebhookService: the dispatcher applies the
// replay at its next sync.
func (s *Service) ReplaySubscriber(ctx context.Context, req *ecogridv1.ReplaySubscriberRequest) (*ecogridv1.ReplaySubscriberResponse, error) {
	sub, err := subscriberOf(ctx, s.pool, req.GetSubscriberId())
	if err != nil {
		return nil, err
	}
	if req.GetSince() == nil {
		return nil, structerr.NewInvalidArgument("a replay needs since, the publication time to start from")
	}
	if err := RequestReplay(ctx, s.pool, sub.ID, req.GetSince().AsTime()); err != nil {
		return nil, err
	}
	c, _ := scope.FromContext(ctx)
	s.log.Info("webhooks: replay requested", "subscriber", sub.ID, "since", req.GetSince().AsTime(), "person", c.PersonID)
	return &ecogridv1.ReplaySubscriberResponse{}, nil
}
