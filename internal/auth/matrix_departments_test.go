package auth_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/departments"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/webhooks"
)

// Rows of the departments and webhooks services (issue 16): everything
// is the county office's, about the county of the village; another
// county's departments and subscribers are NotFound. Objects addressed by
// id are made directly with the packages' Go API first.
func init() {
	for name, row := range map[string]matrixRow{
		ecogridv1.DepartmentService_CreateDepartment_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			_, err := h.departments.CreateDepartment(ctx, &ecogridv1.CreateDepartmentRequest{DepartmentId: uuid.NewString(), CountyCode: v[:6], Code: "d" + shortName(), NameZh: "水利局"})
			return err
		}},
		ecogridv1.DepartmentService_ListDepartments_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			_, err := h.departments.ListDepartments(ctx, &ecogridv1.ListDepartmentsRequest{CountyCode: v[:6]})
			return err
		}},
		ecogridv1.DepartmentService_CoverArea_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			_, err := h.departments.CoverArea(ctx, &ecogridv1.CoverAreaRequest{DepartmentId: makeDepartment(t, h, v), NodeCode: v})
			return err
		}},
		ecogridv1.DepartmentService_UncoverArea_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			id := makeDepartment(t, h, v)
			if err := departments.Cover(context.Background(), h.pool, id, v, time.Now().Add(-time.Hour)); err != nil {
				t.Fatal(err)
			}
			_, err := h.departments.UncoverArea(ctx, &ecogridv1.UncoverAreaRequest{DepartmentId: id, NodeCode: v})
			return err
		}},
		ecogridv1.DepartmentService_AddStaff_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			_, err := h.departments.AddStaff(ctx, &ecogridv1.AddStaffRequest{MembershipId: uuid.NewString(), DepartmentId: makeDepartment(t, h, v),
				PersonId: h.residents[v].Person.ID, Role: "staff"})
			return err
		}},
		ecogridv1.DepartmentService_EndStaff_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			m, err := departments.AddMember(context.Background(), h.pool, departments.Membership{ID: uuid.NewString(), DepartmentID: makeDepartment(t, h, v),
				PersonID: h.residents[v].Person.ID, Role: "staff", ValidFrom: time.Now().Add(-time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = h.departments.EndStaff(ctx, &ecogridv1.EndStaffRequest{MembershipId: m.ID, Reason: "moved post"})
			return err
		}},
		ecogridv1.DepartmentService_ListStaff_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			_, err := h.departments.ListStaff(ctx, &ecogridv1.ListStaffRequest{DepartmentId: makeDepartment(t, h, v)})
			return err
		}},
		ecogridv1.DepartmentService_ListTaxonomy_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			_, err := h.departments.ListTaxonomy(ctx, &ecogridv1.ListTaxonomyRequest{CountyCode: v[:6]})
			return err
		}},
		ecogridv1.DepartmentService_AddTaxonomyCategory_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			_, err := h.departments.AddTaxonomyCategory(ctx, &ecogridv1.AddTaxonomyCategoryRequest{CountyCode: v[:6], Code: "c" + shortName(), NameZh: "秸秆焚烧"})
			return err
		}},
		ecogridv1.DepartmentService_SetRoute_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			_, err := h.departments.SetRoute(ctx, &ecogridv1.SetRouteRequest{Route: &ecogridv1.Route{CountyCode: v[:6], Category: "illegal_dumping",
				LeadDepartmentId: makeDepartment(t, h, v), DeadlineDays: 7}})
			return err
		}},
		ecogridv1.DepartmentService_ListRoutes_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			_, err := h.departments.ListRoutes(ctx, &ecogridv1.ListRoutesRequest{CountyCode: v[:6]})
			return err
		}},
		ecogridv1.WebhookService_CreateSubscriber_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			_, err := h.webhooks.CreateSubscriber(ctx, &ecogridv1.CreateSubscriberRequest{SubscriberId: uuid.NewString(), CountyCode: v[:6], Url: "https://water.example/hook"})
			return err
		}},
		ecogridv1.WebhookService_ListSubscribers_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			_, err := h.webhooks.ListSubscribers(ctx, &ecogridv1.ListSubscribersRequest{CountyCode: v[:6]})
			return err
		}},
		ecogridv1.WebhookService_DisableSubscriber_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			_, err := h.webhooks.DisableSubscriber(ctx, &ecogridv1.DisableSubscriberRequest{SubscriberId: makeSubscriber(t, h, v)})
			return err
		}},
		ecogridv1.WebhookService_ListDeliveries_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			_, err := h.webhooks.ListDeliveries(ctx, &ecogridv1.ListDeliveriesRequest{SubscriberId: makeSubscriber(t, h, v)})
			return err
		}},
		ecogridv1.WebhookService_ReplaySubscriber_FullMethodName: {call: func(t *testing.T, h *harness, ctx context.Context, _ peopletest.Member, v string) error {
			_, err := h.webhooks.ReplaySubscriber(ctx, &ecogridv1.ReplaySubscriberRequest{SubscriberId: makeSubscriber(t, h, v),
				Since: timestamppb.New(time.Now().Add(-time.Hour))})
			return err
		}},
	} {
		matrix[name] = row
	}
}

// makeDepartment adds a department to the county of village v.
func makeDepartment(t *testing.T, h *harness, v string) string {
	t.Helper()
	d, err := departments.Create(context.Background(), h.pool, departments.Department{ID: uuid.NewString(), CountyCode: v[:6], Code: "d" + shortName(), NameZh: "城管局"})
	if err != nil {
		t.Fatal(err)
	}
	return d.ID
}

// makeSubscriber adds a webhook subscriber of the county of village v.
func makeSubscriber(t *testing.T, h *harness, v string) string {
	t.Helper()
	s, err := webhooks.Subscribe(context.Background(), h.pool, webhooks.Subscriber{CountyCode: v[:6], URL: "https://water.example/hook", Secret: webhooks.NewSecret()})
	if err != nil {
		t.Fatal(err)
	}
	return s.ID.String()
}
