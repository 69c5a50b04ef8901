package departments

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/people"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Service is the DepartmentService gRPC server: thin handlers over this
// package's functions. The county office of a county manages its
// departments; another county's are NotFound.
type Service struct {
	ecogridv1.UnimplementedDepartmentServiceServer
	pool *pgxpool.Pool
	log  *slog.Logger
}

var _ ecogridv1.DepartmentServiceServer = (*Service)(nil)

// NewService returns the DepartmentService over pool.
func NewService(pool *pgxpool.Pool, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{pool: pool, log: log}
}

// manages checks that the caller is the county office of county (or an
// administrator); for anyone else the county's departments do not exist.
func manages(ctx context.Context, county string) (scope.Caller, error) {
	c, ok := scope.FromContext(ctx)
	if !ok {
		return c, structerr.NewUnauthenticated("sign in first")
	}
	if err := people.CheckCountyCode(county); err != nil {
		return c, err
	}
	if !c.Covers(county, scope.RoleCountyOfficer) {
		return c, structerr.NewNotFound("county %s not found", county)
	}
	return c, nil
}

// department reads a department the caller manages; NotFound otherwise.
func (s *Service) department(ctx context.Context, id string) (Department, error) {
	d, err := Get(ctx, s.pool, strings.TrimSpace(id))
	if err != nil {
		return d, err
	}
	if _, err := manages(ctx, d.CountyCode); err != nil {
		return d, structerr.NewNotFound("department %s not found", d.ID)
	}
	return d, nil
}

func timeOr(ts *timestamppb.Timestamp, def time.Time) time.Time {
	if ts == nil {
		return def
	}
	return ts.AsTime()
}

func (s *Service) departmentProto(ctx context.Context, d Department) (*ecogridv1.Department, error) {
	covered, err := CoveredAt(ctx, s.pool, d.ID, time.Now())
	if err != nil {
		return nil, err
	}
	return &ecogridv1.Department{DepartmentId: d.ID, CountyCode: d.CountyCode, TownshipCode: d.TownshipCode, Code: d.Code,
		NameZh: d.NameZh, NameEn: d.NameEn, CoveredNodeCodes: covered}, nil
}

// CreateDepartment implements DepartmentService.
func (s *Service) CreateDepartment(ctx context.Context, req *ecogridv1.CreateDepartmentRequest) (*ecogridv1.CreateDepartmentResponse, error) {
	if _, err := manages(ctx, req.GetCountyCode()); err != nil {
		return nil, err
	}
	d, err := Create(ctx, s.pool, Department{ID: req.GetDepartmentId(), CountyCode: req.GetCountyCode(), TownshipCode: req.GetTownshipCode(),
		Code: req.GetCode(), NameZh: req.GetNameZh(), NameEn: req.GetNameEn()})
	if err != nil {
		return nil, err
	}
	p, err := s.departmentProto(ctx, d)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.CreateDepartmentResponse{Department: p}, nil
}

// ListDepartments implements DepartmentService.
func (s *Service) ListDepartments(ctx context.Context, req *ecogridv1.ListDepartmentsRequest) (*ecogridv1.ListDepartmentsResponse, error) {
	if _, err := manages(ctx, req.GetCountyCode()); err != nil {
		return nil, err
	}
	ds, err := List(ctx, s.pool, req.GetCountyCode())
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListDepartmentsResponse{}
	for _, d := range ds {
		p, err := s.departmentProto(ctx, d)
		if err != nil {
			return nil, err
		}
		resp.Departments = append(resp.Departments, p)
	}
	return resp, nil
}

// CoverArea implements DepartmentService.
func (s *Service) CoverArea(ctx context.Context, req *ecogridv1.CoverAreaRequest) (*ecogridv1.CoverAreaResponse, error) {
	d, err := s.department(ctx, req.GetDepartmentId())
	if err != nil {
		return nil, err
	}
	if err := Cover(ctx, s.pool, d.ID, req.GetNodeCode(), timeOr(req.GetValidFrom(), time.Now())); err != nil {
		return nil, err
	}
	return &ecogridv1.CoverAreaResponse{}, nil
}

// UncoverArea implements DepartmentService.
func (s *Service) UncoverArea(ctx context.Context, req *ecogridv1.UncoverAreaRequest) (*ecogridv1.UncoverAreaResponse, error) {
	d, err := s.department(ctx, req.GetDepartmentId())
	if err != nil {
		return nil, err
	}
	if err := Uncover(ctx, s.pool, d.ID, req.GetNodeCode(), timeOr(req.GetEndedAt(), time.Now())); err != nil {
		return nil, err
	}
	return &ecogridv1.UncoverAreaResponse{}, nil
}

func memberProto(m Member) *ecogridv1.DepartmentMembership {
	p := &ecogridv1.DepartmentMembership{MembershipId: m.ID, DepartmentId: m.DepartmentID, PersonId: m.PersonID, Role: m.Role,
		ValidFrom: timestamppb.New(m.ValidFrom), EndReason: m.EndReason}
	if m.ValidTo != nil {
		p.ValidTo = timestamppb.New(*m.ValidTo)
	}
	return p
}

// AddStaff implements DepartmentService.
func (s *Service) AddStaff(ctx context.Context, req *ecogridv1.AddStaffRequest) (*ecogridv1.AddStaffResponse, error) {
	d, err := s.department(ctx, req.GetDepartmentId())
	if err != nil {
		return nil, err
	}
	m, err := AddMember(ctx, s.pool, Membership{ID: req.GetMembershipId(), DepartmentID: d.ID, PersonID: req.GetPersonId(),
		Role: req.GetRole(), ValidFrom: timeOr(req.GetValidFrom(), time.Now())})
	if structerr.Code(err) == codes.NotFound { // the person, not the department
		return nil, structerr.NewNotFound("person %.40s not found in county %s", req.GetPersonId(), d.CountyCode)
	}
	if err != nil {
		return nil, err
	}
	stored, err := GetMember(ctx, s.pool, m.ID)
	if err != nil {
		return nil, err
	}
	if stored.DepartmentID != d.ID || stored.PersonID != m.PersonID || stored.Role != m.Role {
		return nil, structerr.NewAlreadyExists("membership id %s is already used for another membership", m.ID)
	}
	return &ecogridv1.AddStaffResponse{Membership: memberProto(stored)}, nil
}

// EndStaff implements DepartmentService.
func (s *Service) EndStaff(ctx context.Context, req *ecogridv1.EndStaffRequest) (*ecogridv1.EndStaffResponse, error) {
	m, err := GetMember(ctx, s.pool, strings.TrimSpace(req.GetMembershipId()))
	if err != nil {
		return nil, err
	}
	if _, err := s.department(ctx, m.DepartmentID); err != nil {
		return nil, structerr.NewNotFound("membership %s not found", m.ID)
	}
	if err := checkName("reason", req.GetReason(), true); err != nil {
		return nil, err
	}
	if err := EndMember(ctx, s.pool, m.ID, timeOr(req.GetEndedAt(), time.Now()), req.GetReason()); err != nil {
		return nil, err
	}
	return &ecogridv1.EndStaffResponse{}, nil
}

// ListStaff implements DepartmentService.
func (s *Service) ListStaff(ctx context.Context, req *ecogridv1.ListStaffRequest) (*ecogridv1.ListStaffResponse, error) {
	d, err := s.department(ctx, req.GetDepartmentId())
	if err != nil {
		return nil, err
	}
	ms, err := ListMembers(ctx, s.pool, d.ID)
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListStaffResponse{}
	for _, m := range ms {
		resp.Memberships = append(resp.Memberships, memberProto(m))
	}
	return resp, nil
}

// ListTaxonomy implements DepartmentService.
func (s *Service) ListTaxonomy(ctx context.Context, req *ecogridv1.ListTaxonomyRequest) (*ecogridv1.ListTaxonomyResponse, error) {
	if _, err := manages(ctx, req.GetCountyCode()); err != nil {
		return nil, err
	}
	cats, err := Categories(ctx, s.pool, req.GetCountyCode())
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListTaxonomyResponse{}
	for _, c := range cats {
		resp.Categories = append(resp.Categories, &ecogridv1.TaxonomyCategory{CountyCode: c.CountyCode, Code: c.Code, NameZh: c.NameZh, NameEn: c.NameEn})
	}
	return resp, nil
}

// AddTaxonomyCategory implements DepartmentService.
func (s *Service) AddTaxonomyCategory(ctx context.Context, req *ecogridv1.AddTaxonomyCategoryRequest) (*ecogridv1.AddTaxonomyCategoryResponse, error) {
	if _, err := manages(ctx, req.GetCountyCode()); err != nil {
		return nil, err
	}
	if err := AddCategory(ctx, s.pool, Category{CountyCode: req.GetCountyCode(), Code: req.GetCode(), NameZh: req.GetNameZh(), NameEn: req.GetNameEn()}); err != nil {
		return nil, err
	}
	return &ecogridv1.AddTaxonomyCategoryResponse{}, nil
}

// SetRoute implements DepartmentService.
func (s *Service) SetRoute(ctx context.Context, req *ecogridv1.SetRouteRequest) (*ecogridv1.SetRouteResponse, error) {
	r := req.GetRoute()
	if r == nil {
		return nil, structerr.NewInvalidArgument("a route is required")
	}
	if _, err := manages(ctx, r.GetCountyCode()); err != nil {
		return nil, err
	}
	err := SetRoute(ctx, s.pool, Route{CountyCode: r.GetCountyCode(), Category: r.GetCategory(), ZoneKind: r.GetZoneKind(),
		LeadDepartmentID: r.GetLeadDepartmentId(), Cooperating: r.GetCooperatingDepartmentIds(), DeadlineDays: int(r.GetDeadlineDays())})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.SetRouteResponse{}, nil
}

// ListRoutes implements DepartmentService.
func (s *Service) ListRoutes(ctx context.Context, req *ecogridv1.ListRoutesRequest) (*ecogridv1.ListRoutesResponse, error) {
	if _, err := manages(ctx, req.GetCountyCode()); err != nil {
		return nil, err
	}
	rs, err := Routes(ctx, s.pool, req.GetCountyCode())
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListRoutesResponse{}
	for _, r := range rs {
		resp.Routes = append(resp.Routes, &ecogridv1.Route{CountyCode: r.CountyCode, Category: r.Category, ZoneKind: r.ZoneKind,
			LeadDepartmentId: r.LeadDepartmentID, CooperatingDepartmentIds: r.Cooperating, DeadlineDays: int32(r.DeadlineDays)})
	}
	return resp, nil
}
