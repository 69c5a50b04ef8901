package fieldsim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"sync"

	"github.com/google/uuid"

	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/coord"
)

var usernamePrefix = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,19}$`)

// idSpace seeds the deterministic ids of the simulated people, so that a
// re-run against the same database reuses them instead of adding 500 more.
var idSpace = uuid.MustParse("6f1d0b8e-6a43-4c55-9a0e-2f7c1e5e0a11")

func (s *Sim) stableID(kind string, n int) string {
	return uuid.NewSHA1(idSpace, fmt.Appendf(nil, "%s/%s/%s/%d", s.cfg.Name, s.county, kind, n)).String()
}

// simPassword derives a simulated account's password from the
// administrator's, so re-runs can log the same accounts in without
// keeping a password file, and nobody else can.
func (s *Sim) simPassword(username string) string {
	h := sha256.Sum256([]byte("ecogrid-fieldsim\x00" + s.cfg.AdminPassword + "\x00" + username))
	return "Fs-" + hex.EncodeToString(h[:12])
}

type township struct {
	id, code   string
	villages   []*village
	inspectors []*inspector
	sup        *supervisor
}

type village struct {
	id, code string
	town     *township
	area     *area
}

// setup logs the administrator in, reads the county's grid and makes
// sure every simulated inspector and supervisor exists with an account
// and an open assignment. Every create carries a deterministic id, so a
// second run only reads.
func (s *Sim) setup(ctx context.Context) error {
	s.admin = &session{username: s.cfg.AdminUser, password: s.cfg.AdminPassword}
	if err := s.login(ctx, s.admin); err != nil {
		return fmt.Errorf("administrator login: %w", err)
	}
	var who *ecogridv1.WhoAmIResponse
	if err := s.do(ctx, s.admin, "AuthService/WhoAmI", func(ctx context.Context) (err error) {
		who, err = s.auth.WhoAmI(ctx, &ecogridv1.WhoAmIRequest{})
		return err
	}); err != nil {
		return err
	}
	s.county = s.cfg.County
	if s.county == "" {
		for _, g := range who.GetGrants() {
			if (g.GetRole() == ecogridv1.Role_ROLE_ADMIN || g.GetRole() == ecogridv1.Role_ROLE_COUNTY_OFFICER) && len(g.GetNodeCode()) >= 6 {
				s.county = g.GetNodeCode()[:6]
				break
			}
		}
	}
	if s.county == "" {
		return fmt.Errorf("%s holds no administrator or county officer grant; give -county", s.cfg.AdminUser)
	}
	if err := s.readGrid(ctx); err != nil {
		return err
	}
	return s.ensurePeople(ctx)
}

func (s *Sim) readGrid(ctx context.Context) error {
	var root *ecogridv1.GetNodeResponse
	if err := s.do(ctx, s.admin, "GridService/GetNode", func(ctx context.Context) (err error) {
		root, err = s.grid.GetNode(ctx, &ecogridv1.GetNodeRequest{Code: s.county})
		return err
	}); err != nil {
		return fmt.Errorf("county %s: %w", s.county, err)
	}
	towns := map[string]*township{}
	var villages []*village
	token := ""
	for {
		var page *ecogridv1.ListSubtreeResponse
		if err := s.do(ctx, s.admin, "GridService/ListSubtree", func(ctx context.Context) (err error) {
			page, err = s.grid.ListSubtree(ctx, &ecogridv1.ListSubtreeRequest{
				NodeId: root.GetNode().GetId(), MaxLevel: ecogridv1.GridLevel_GRID_LEVEL_VILLAGE, IncludeGeometry: true,
				Page: &ecogridv1.PageRequest{PageSize: 500, PageToken: token},
			})
			return err
		}); err != nil {
			return fmt.Errorf("reading the grid of %s: %w", s.county, err)
		}
		for _, n := range page.GetNodes() {
			switch n.GetLevel() {
			case ecogridv1.GridLevel_GRID_LEVEL_TOWNSHIP:
				towns[n.GetCode()] = &township{id: n.GetId(), code: n.GetCode()}
			case ecogridv1.GridLevel_GRID_LEVEL_VILLAGE:
				a, err := parseArea(n.GetGeometryGeojson())
				if err != nil {
					return fmt.Errorf("village %s: %w", n.GetCode(), err)
				}
				villages = append(villages, &village{id: n.GetId(), code: n.GetCode(), area: a})
			}
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	for _, v := range villages {
		if t := towns[v.code[:9]]; t != nil {
			v.town = t
			t.villages = append(t.villages, v)
		}
	}
	for _, t := range towns {
		if len(t.villages) > 0 {
			s.townships = append(s.townships, t)
		}
	}
	if len(s.townships) == 0 {
		return fmt.Errorf("county %s has no township with villages: load a grid first (gridctl dev loads the demo county)", s.county)
	}
	sort.Slice(s.townships, func(i, j int) bool { return s.townships[i].code < s.townships[j].code })
	return nil
}

// person is one simulated person to create.
type person struct {
	kind     string // "inspector" or "supervisor"
	n        int
	name     string
	nodeID   string
	role     ecogridv1.Role
	tasks    []string
	sess     *session
	personID string
}

func (s *Sim) ensurePeople(ctx context.Context) error {
	var all []*village
	for _, t := range s.townships {
		all = append(all, t.villages...)
	}
	var people []*person
	for i := range s.cfg.Inspectors {
		v := all[i%len(all)]
		p := &person{kind: "inspector", n: i + 1, name: fmt.Sprintf("巡查员%04d", i+1), nodeID: v.id,
			role: ecogridv1.Role_ROLE_INSPECTOR, tasks: []string{"patrol", "report"}}
		p.sess = &session{username: fmt.Sprintf("%s-%s-i%04d", s.cfg.Name, s.county, i+1)}
		p.sess.password = s.simPassword(p.sess.username)
		p.personID = s.stableID("inspector", i+1)
		people = append(people, p)
		r := rand.New(rand.NewPCG(s.cfg.Seed^s.nonce, uint64(i+1)))
		in := &inspector{sim: s, n: i + 1, sess: p.sess, village: v, rng: r, system: coord.WGS84}
		// A third of phones report GCJ-02 (Amap, Tencent maps), a tenth BD-09 (Baidu).
		switch x := r.Float64(); {
		case x < 0.33:
			in.system = coord.GCJ02
		case x < 0.43:
			in.system = coord.BD09
		}
		s.inspectors = append(s.inspectors, in)
		v.town.inspectors = append(v.town.inspectors, in)
	}
	for i, t := range s.townships {
		p := &person{kind: "supervisor", n: i + 1, name: fmt.Sprintf("乡镇督导%02d", i+1), nodeID: t.id,
			role: ecogridv1.Role_ROLE_TOWNSHIP_SUPERVISOR, tasks: []string{"case dispatch"}}
		p.sess = &session{username: fmt.Sprintf("%s-%s-s%03d", s.cfg.Name, s.county, i+1)}
		p.sess.password = s.simPassword(p.sess.username)
		p.personID = s.stableID("supervisor", i+1)
		people = append(people, p)
		sup := &supervisor{sim: s, sess: p.sess, town: t, rng: rand.New(rand.NewPCG(s.cfg.Seed^s.nonce, uint64(1_000_000+i)))}
		t.sup = sup
		s.supervisors = append(s.supervisors, sup)
	}
	// Creating an account hashes its password on the server: a few at a time.
	return parallel(ctx, people, 8, func(ctx context.Context, p *person) error { return s.ensurePerson(ctx, p) })
}

// employeeCode is unique in the county per -name. The default name keeps
// the code it has always had, so databases holding its people reuse them.
func (s *Sim) employeeCode(p *person) string {
	code := fmt.Sprintf("SIM-%s-%04d", p.kind[:1], p.n)
	if s.cfg.Name != DefaultConfig().Name {
		code += "-" + p.personID[:8]
	}
	return code
}

func (s *Sim) ensurePerson(ctx context.Context, p *person) error {
	if err := s.do(ctx, s.admin, "PeopleService/CreatePerson", func(ctx context.Context) error {
		_, err := s.people.CreatePerson(ctx, &ecogridv1.CreatePersonRequest{
			PersonId: p.personID, CountyCode: s.county, Name: p.name, EmployeeCode: s.employeeCode(p),
		})
		return err
	}); err != nil {
		return fmt.Errorf("%s %d: %w", p.kind, p.n, err)
	}
	if err := s.do(ctx, s.admin, "PeopleService/CreateAccount", func(ctx context.Context) error {
		_, err := s.people.CreateAccount(ctx, &ecogridv1.CreateAccountRequest{
			AccountId: s.stableID(p.kind+"-account", p.n), PersonId: p.personID, Username: p.sess.username, Password: p.sess.password,
		})
		return err
	}); err != nil {
		return fmt.Errorf("account %s: %w", p.sess.username, err)
	}
	if err := s.do(ctx, s.admin, "PeopleService/StartAssignment", func(ctx context.Context) error {
		_, err := s.people.StartAssignment(ctx, &ecogridv1.StartAssignmentRequest{
			AssignmentId: s.stableID(p.kind+"-assignment", p.n), PersonId: p.personID, NodeId: p.nodeID, Role: p.role, Tasks: p.tasks,
		})
		return err
	}); err != nil {
		return fmt.Errorf("assignment of %s: %w", p.sess.username, err)
	}
	p.sess.personID = p.personID
	return nil
}

func (s *Sim) loginAll(ctx context.Context) error {
	var all []*session
	for _, in := range s.inspectors {
		all = append(all, in.sess)
	}
	for _, sup := range s.supervisors {
		all = append(all, sup.sess)
	}
	return parallel(ctx, all, s.cfg.LoginConcurrency, func(ctx context.Context, sess *session) error {
		if err := s.login(ctx, sess); err != nil {
			return fmt.Errorf("login %s: %w", sess.username, err)
		}
		return nil
	})
}

// parallel runs f over items with at most n at once and returns the
// first errors (all of them, joined, at most 5).
func parallel[T any](ctx context.Context, items []T, n int, f func(context.Context, T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, n)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(ctx, it); err != nil {
				mu.Lock()
				if len(errs) < 5 {
					errs = append(errs, err)
				}
				mu.Unlock()
				cancel()
			}
		})
	}
	wg.Wait()
	if len(errs) == 0 && ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(errs...)
}
