package people

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/accounts"
	"ecogrid/internal/accounts/password"
	"ecogrid/internal/grid"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Service implements PeopleService. Every handler reads the caller put in
// the context by the auth interceptor and answers NotFound for objects
// outside the caller's scope.
type Service struct {
	ecogridv1.UnimplementedPeopleServiceServer
	db     Pool
	store  *Store
	grid   *grid.Store
	hasher *password.Hasher
	log    *slog.Logger
}

var _ ecogridv1.PeopleServiceServer = (*Service)(nil)

// NewService returns the PeopleService. grid resolves the nodes of new
// assignments; handover (the cases tracker) moves a leaving person's open
// cases to their successor in the transaction that ends the post, and is
// nil only where no case can exist.
func NewService(pool Pool, grid *grid.Store, handover DutyHandover, hasher *password.Hasher, log *slog.Logger) *Service {
	return &Service{db: pool, store: NewStore(pool, handover), grid: grid, hasher: hasher, log: log}
}

func caller(ctx context.Context) (scope.Caller, error) {
	c, ok := scope.FromContext(ctx)
	if !ok {
		return scope.Caller{}, structerr.NewUnauthenticated("this call needs an access token; log in first")
	}
	return c, nil
}

// countyGrant is the caller's county-office grant over county, or NotFound.
func countyGrant(c scope.Caller, county, what string) (scope.Grant, error) {
	g, ok := c.GrantFor(county, scope.RoleCountyOfficer)
	if !ok {
		return scope.Grant{}, structerr.NewNotFound("%s not found", what)
	}
	return g, nil
}

// CreatePerson registers a person in a county the caller's office manages.
func (s *Service) CreatePerson(ctx context.Context, req *ecogridv1.CreatePersonRequest) (*ecogridv1.CreatePersonResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	p := Person{ID: req.GetPersonId(), CountyCode: req.GetCountyCode(), Name: req.GetName(), Phone: req.GetPhone(), EmployeeCode: req.GetEmployeeCode()}
	if err := p.Check(); err != nil {
		return nil, err
	}
	p.ID, _ = NormaliseID("person id", p.ID)
	g, err := countyGrant(c, p.CountyCode, "county "+p.CountyCode)
	if err != nil {
		return nil, err
	}
	stored, created, err := s.store.CreatePerson(ctx, ActorFor(c, g), p)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.CreatePersonResponse{Person: PersonProto(stored), Created: created}, nil
}

// GetPerson returns a visible person with their current assignments.
func (s *Service) GetPerson(ctx context.Context, req *ecogridv1.GetPersonRequest) (*ecogridv1.GetPersonResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	p, err := VisiblePerson(ctx, s.db, c, req.GetPersonId())
	if err != nil {
		return nil, err
	}
	hist, err := History(ctx, s.db, p.ID)
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.GetPersonResponse{Person: PersonProto(p)}
	now := time.Now()
	for _, a := range hist {
		if a.ValidTo == nil || a.ValidTo.After(now) {
			resp.CurrentAssignments = append(resp.CurrentAssignments, AssignmentProto(a))
		}
	}
	_, err = accounts.ByPerson(ctx, s.db, p.ID)
	switch {
	case err == nil:
		resp.HasAccount = true
	case !errors.Is(err, accounts.ErrNotFound):
		return nil, err
	}
	return resp, nil
}

// ListPersons lists the visible persons.
func (s *Service) ListPersons(ctx context.Context, req *ecogridv1.ListPersonsRequest) (*ecogridv1.ListPersonsResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if code := req.GetNodeCode(); code != "" && !c.Covers(code) {
		if err := CheckNodeCode(code); err != nil {
			return nil, err
		}
		return nil, structerr.NewNotFound("grid node %s not found", code)
	}
	ps, next, err := ListPersons(ctx, s.db, c, PersonFilter{
		NodeCode: req.GetNodeCode(), NameContains: req.GetNameContains(),
		PageSize: int(req.GetPage().GetPageSize()), PageToken: req.GetPage().GetPageToken(),
	})
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListPersonsResponse{NextPageToken: next}
	for _, p := range ps {
		resp.Persons = append(resp.Persons, PersonProto(p))
	}
	return resp, nil
}

// generatedPasswordAlphabet avoids characters people confuse when reading
// a password aloud or off a slip of paper (0/O, 1/l/I).
const generatedPasswordAlphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// GeneratePassword returns a random 16-character password (about 93 bits).
func GeneratePassword() string {
	b := make([]byte, 16)
	out := make([]byte, 16)
	for i := 0; i < len(out); {
		if _, err := rand.Read(b); err != nil {
			panic(err) // crypto/rand does not fail on supported platforms
		}
		for _, x := range b {
			if i < len(out) && int(x) < 256-256%len(generatedPasswordAlphabet) {
				out[i] = generatedPasswordAlphabet[int(x)%len(generatedPasswordAlphabet)]
				i++
			}
		}
	}
	return string(out)
}

// CreateAccount gives a visible person of the caller's county a login.
func (s *Service) CreateAccount(ctx context.Context, req *ecogridv1.CreateAccountRequest) (*ecogridv1.CreateAccountResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	id, err := NormaliseID("account id", req.GetAccountId())
	if err != nil {
		return nil, err
	}
	user, err := accounts.NormaliseUsername(req.GetUsername())
	if err != nil {
		return nil, err
	}
	pw, generated := req.GetPassword(), ""
	if pw == "" {
		pw = GeneratePassword()
		generated = pw
	} else if err := password.CheckPolicy(pw); err != nil {
		return nil, structerr.NewInvalidArgument("%s", err.Error())
	}
	p, err := VisiblePerson(ctx, s.db, c, req.GetPersonId())
	if err != nil {
		return nil, err
	}
	g, err := countyGrant(c, p.CountyCode, "person")
	if err != nil {
		return nil, err
	}
	if err := checkOutranks(ctx, s.db, g, p.ID); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(pw)
	if err != nil {
		return nil, err
	}
	a, created, err := s.store.CreateAccount(ctx, ActorFor(c, g), p, accounts.Account{ID: id, PersonID: p.ID, Username: user, PasswordHash: hash})
	if err != nil {
		return nil, err
	}
	if !created {
		generated = "" // a replay must not hand out a password that was never stored
	}
	return &ecogridv1.CreateAccountResponse{AccountId: a.ID, Username: a.Username, GeneratedPassword: generated, Created: created}, nil
}

// countyAccount resolves the account named username, its person, and the
// caller's grant over the person's county as the actor of an account
// action of the county office (unlock, password reset).
func (s *Service) countyAccount(ctx context.Context, username string) (scope.Caller, accounts.Account, Person, Actor, error) {
	c, err := caller(ctx)
	if err != nil {
		return c, accounts.Account{}, Person{}, Actor{}, err
	}
	user, err := accounts.NormaliseUsername(username)
	if err != nil {
		return c, accounts.Account{}, Person{}, Actor{}, err
	}
	a, err := accounts.ByUsername(ctx, s.db, user)
	if err != nil {
		return c, a, Person{}, Actor{}, err
	}
	p, err := GetPerson(ctx, s.db, a.PersonID)
	if err != nil {
		return c, a, p, Actor{}, err
	}
	g, err := countyGrant(c, p.CountyCode, "account")
	if err != nil {
		return c, a, p, Actor{}, err
	}
	if err := checkOutranks(ctx, s.db, g, p.ID); err != nil {
		return c, a, p, Actor{}, err
	}
	return c, a, p, ActorFor(c, g), nil
}

// UnlockAccount lifts a lockout of an account of the caller's county.
func (s *Service) UnlockAccount(ctx context.Context, req *ecogridv1.UnlockAccountRequest) (*ecogridv1.UnlockAccountResponse, error) {
	c, a, p, actor, err := s.countyAccount(ctx, req.GetUsername())
	if err != nil {
		return nil, err
	}
	was, err := s.store.UnlockAccount(ctx, actor, p, a)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "account unlocked", "account_id", a.ID, "by_person_id", c.PersonID, "was_locked", was)
	return &ecogridv1.UnlockAccountResponse{WasLocked: was}, nil
}

// assignerGrant decides whether the caller may place role at code: NotFound
// when the node is outside every grant, PermissionDenied when it is inside
// but the caller's role may not assign that role.
func assignerGrant(c scope.Caller, role scope.Role, code, what string) (scope.Grant, error) {
	if g, ok := AssignerGrant(c, role, code); ok {
		return g, nil
	}
	if !c.Covers(code, scope.RoleTownshipSupervisor, scope.RoleCountyOfficer) {
		return scope.Grant{}, structerr.NewNotFound("%s not found", what)
	}
	return scope.Grant{}, structerr.NewPermissionDenied("your role may not assign a %s", role)
}

func (s *Service) newAssignment(ctx context.Context, c scope.Caller, id, personID, nodeID string, role ecogridv1.Role, tasks []string, rules []grid.Task, from *timestamppb.Timestamp) (NewAssignment, scope.Grant, error) {
	r, ok := roleFromProto(role)
	if !ok {
		return NewAssignment{}, scope.Grant{}, structerr.NewInvalidArgument("role is required")
	}
	aid, err := NormaliseID("assignment id", id)
	if err != nil {
		return NewAssignment{}, scope.Grant{}, err
	}
	node, err := resolveNode(ctx, s.grid, nodeID)
	if err != nil {
		return NewAssignment{}, scope.Grant{}, err
	}
	g, err := assignerGrant(c, r, node.Code, "grid node "+nodeID)
	if err != nil {
		return NewAssignment{}, scope.Grant{}, err
	}
	n := NewAssignment{ID: aid, PersonID: personID, NodeID: node.ID, NodeCode: node.Code, Role: r, Tasks: tasks, TaskRules: rules}
	if from != nil {
		if err := from.CheckValid(); err != nil {
			return NewAssignment{}, scope.Grant{}, structerr.NewInvalidArgument("valid_from is not a valid time")
		}
		n.ValidFrom = from.AsTime()
	}
	return n, g, nil
}

// personInCounty returns the person when the caller may place them: a
// visible person, or any person of the node's county (a new hire has no
// assignment yet, so a township supervisor could not otherwise see them).
func (s *Service) personInCounty(ctx context.Context, c scope.Caller, personID, county string) (Person, error) {
	id, err := NormaliseID("person id", personID)
	if err != nil {
		return Person{}, err
	}
	p, err := GetPerson(ctx, s.db, id)
	if err != nil {
		return Person{}, err
	}
	if p.CountyCode == county {
		return p, nil
	}
	return VisiblePerson(ctx, s.db, c, id)
}

// StartAssignment places a person at a node.
func (s *Service) StartAssignment(ctx context.Context, req *ecogridv1.StartAssignmentRequest) (*ecogridv1.StartAssignmentResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	n, g, err := s.newAssignment(ctx, c, req.GetAssignmentId(), req.GetPersonId(), req.GetNodeId(), req.GetRole(), req.GetTasks(), grid.TasksFromProto(req.GetTaskRules()), req.GetValidFrom())
	if err != nil {
		return nil, err
	}
	p, err := s.personInCounty(ctx, c, req.GetPersonId(), countyOf(n.NodeCode))
	if err != nil {
		return nil, err
	}
	n.PersonID = p.ID
	if err := checkOutranks(ctx, s.db, g, p.ID); err != nil {
		return nil, err
	}
	a, created, err := s.store.StartAssignment(ctx, ActorFor(c, g), n)
	if err != nil {
		return nil, err
	}
	return &ecogridv1.StartAssignmentResponse{Assignment: AssignmentProto(a), Created: created}, nil
}

// existingAssignment loads an assignment the caller may end.
func existingAssignment(ctx context.Context, s *Service, c scope.Caller, id string) (Assignment, scope.Grant, error) {
	aid, err := NormaliseID("assignment id", id)
	if err != nil {
		return Assignment{}, scope.Grant{}, err
	}
	a, err := GetAssignment(ctx, s.db, aid)
	if err != nil {
		return Assignment{}, scope.Grant{}, err
	}
	g, err := assignerGrant(c, a.Role, a.NodeCode, "assignment")
	if err != nil {
		return a, g, err
	}
	if err := checkOutranks(ctx, s.db, g, a.PersonID); err != nil {
		return a, g, err
	}
	return a, g, nil // the last-administrator rule is checked inside the store's transaction
}

// EndAssignment ends an assignment now.
func (s *Service) EndAssignment(ctx context.Context, req *ecogridv1.EndAssignmentRequest) (*ecogridv1.EndAssignmentResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	a, g, err := existingAssignment(ctx, s, c, req.GetAssignmentId())
	if err != nil {
		return nil, err
	}
	res, err := s.store.EndAssignment(ctx, ActorFor(c, g), a.ID, req.GetReason(), req.GetSuccessorPersonId())
	if err != nil {
		return nil, err
	}
	return &ecogridv1.EndAssignmentResponse{Assignment: AssignmentProto(res.Assignment), LastAssignment: res.LastOne,
		Handover: handoverProto(res.Handover), SuccessorPersonId: res.SuccessorID}, nil
}

// TransferAssignment ends an assignment and starts its successor.
func (s *Service) TransferAssignment(ctx context.Context, req *ecogridv1.TransferAssignmentRequest) (*ecogridv1.TransferAssignmentResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	old, g, err := existingAssignment(ctx, s, c, req.GetAssignmentId())
	if err != nil {
		return nil, err
	}
	role := req.GetRole()
	if role == ecogridv1.Role_ROLE_UNSPECIFIED {
		role = RoleProto(old.Role)
	}
	// A transfer that names no tasks keeps the post's tasks: the new cell
	// has the same patrol quota unless the supervisor says otherwise.
	tasks, rules := req.GetTasks(), grid.TasksFromProto(req.GetTaskRules())
	if len(tasks) == 0 && len(rules) == 0 {
		tasks, rules = old.Tasks, old.TaskRules
	}
	n, _, err := s.newAssignment(ctx, c, req.GetNewAssignmentId(), old.PersonID, req.GetNodeId(), role, tasks, rules, nil)
	if err != nil {
		return nil, err
	}
	res, err := s.store.Transfer(ctx, ActorFor(c, g), old.ID, n, req.GetReason(), req.GetSuccessorPersonId())
	if err != nil {
		return nil, err
	}
	return &ecogridv1.TransferAssignmentResponse{Ended: AssignmentProto(res.Ended), Started: AssignmentProto(res.Started),
		Handover: handoverProto(res.Handover), SuccessorPersonId: res.SuccessorID}, nil
}

func handoverProto(hs []HandoverCase) []*ecogridv1.HandoverCase {
	out := make([]*ecogridv1.HandoverCase, 0, len(hs))
	for _, h := range hs {
		out = append(out, &ecogridv1.HandoverCase{CaseId: h.CaseID, NodeCode: h.NodeCode, Status: h.Status, Title: h.Title})
	}
	return out
}

// ListAssignmentHistory returns a visible person's whole history.
func (s *Service) ListAssignmentHistory(ctx context.Context, req *ecogridv1.ListAssignmentHistoryRequest) (*ecogridv1.ListAssignmentHistoryResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	p, err := VisiblePerson(ctx, s.db, c, req.GetPersonId())
	if err != nil {
		return nil, err
	}
	hist, err := History(ctx, s.db, p.ID)
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListAssignmentHistoryResponse{}
	for _, a := range hist {
		resp.Assignments = append(resp.Assignments, AssignmentProto(a))
	}
	return resp, nil
}

// ListResponsible answers who was responsible for a node in the caller's scope.
func (s *Service) ListResponsible(ctx context.Context, req *ecogridv1.ListResponsibleRequest) (*ecogridv1.ListResponsibleResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	code := req.GetNodeCode()
	if err := CheckNodeCode(code); err != nil {
		return nil, err
	}
	if !c.Covers(code) {
		return nil, structerr.NewNotFound("grid node %s not found", code)
	}
	at := time.Now()
	if req.GetAt() != nil {
		if err := req.GetAt().CheckValid(); err != nil {
			return nil, structerr.NewInvalidArgument("at is not a valid time")
		}
		at = req.GetAt().AsTime()
	}
	rs, err := ResponsibleAt(ctx, s.db, code, at)
	if err != nil {
		return nil, err
	}
	resp := &ecogridv1.ListResponsibleResponse{}
	for _, r := range rs {
		resp.Responsible = append(resp.Responsible, &ecogridv1.ResponsiblePerson{PersonId: r.PersonID, Name: r.Name, Role: RoleProto(scope.Role(r.Role)), NodeCode: r.NodeCode})
	}
	return resp, nil
}

var roleToProto = map[scope.Role]ecogridv1.Role{
	scope.RoleInspector:          ecogridv1.Role_ROLE_INSPECTOR,
	scope.RoleGridChief:          ecogridv1.Role_ROLE_GRID_CHIEF,
	scope.RoleTownshipSupervisor: ecogridv1.Role_ROLE_TOWNSHIP_SUPERVISOR,
	scope.RoleCountyOfficer:      ecogridv1.Role_ROLE_COUNTY_OFFICER,
	scope.RoleAdmin:              ecogridv1.Role_ROLE_ADMIN,
}

// RoleProto converts a role to its protobuf enum.
func RoleProto(r scope.Role) ecogridv1.Role { return roleToProto[r] }

func roleFromProto(r ecogridv1.Role) (scope.Role, bool) {
	for k, v := range roleToProto {
		if v == r {
			return k, true
		}
	}
	return "", false
}

// PersonProto converts a person to protobuf.
func PersonProto(p Person) *ecogridv1.Person {
	return &ecogridv1.Person{Id: p.ID, CountyCode: p.CountyCode, Name: p.Name, Phone: p.Phone, EmployeeCode: p.EmployeeCode, CreateTime: timestamppb.New(p.CreatedAt)}
}

// AssignmentProto converts an assignment to protobuf.
func AssignmentProto(a Assignment) *ecogridv1.Assignment {
	out := &ecogridv1.Assignment{
		Id: a.ID, PersonId: a.PersonID, NodeId: a.NodeID, NodeCode: a.NodeCode, Role: RoleProto(a.Role), Tasks: a.Tasks, TaskRules: grid.TasksProto(a.TaskRules),
		ValidFrom: timestamppb.New(a.ValidFrom), CreatedBy: a.CreatedBy, EndedBy: a.EndedBy, EndReason: a.EndReason,
	}
	if a.ValidTo != nil {
		out.ValidTo = timestamppb.New(*a.ValidTo)
	}
	return out
}

// UpdatePerson changes the details of a person of the caller's county.
func (s *Service) UpdatePerson(ctx context.Context, req *ecogridv1.UpdatePersonRequest) (*ecogridv1.UpdatePersonResponse, error) {
	c, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	p, err := VisiblePerson(ctx, s.db, c, req.GetPersonId())
	if err != nil {
		return nil, err
	}
	g, err := countyGrant(c, p.CountyCode, "person")
	if err != nil {
		return nil, err
	}
	if err := checkOutranks(ctx, s.db, g, p.ID); err != nil {
		return nil, err
	}
	updated, err := s.store.UpdatePerson(ctx, ActorFor(c, g), p.ID, PersonChanges{Name: req.Name, Phone: req.Phone, EmployeeCode: req.EmployeeCode})
	if err != nil {
		return nil, err
	}
	return &ecogridv1.UpdatePersonResponse{Person: PersonProto(updated)}, nil
}

// ResetPassword sets a generated password on an account of the caller's
// county and logs all its devices out.
func (s *Service) ResetPassword(ctx context.Context, req *ecogridv1.ResetPasswordRequest) (*ecogridv1.ResetPasswordResponse, error) {
	c, a, p, actor, err := s.countyAccount(ctx, req.GetUsername())
	if err != nil {
		return nil, err
	}
	pw := GeneratePassword()
	hash, err := s.hasher.Hash(pw)
	if err != nil {
		return nil, err
	}
	if err := s.store.ResetPassword(ctx, actor, p, a, hash); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "password reset", "account_id", a.ID, "by_person_id", c.PersonID)
	return &ecogridv1.ResetPasswordResponse{GeneratedPassword: pw}, nil
}
