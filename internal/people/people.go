// Package people owns persons, who keep one identity for life, and their
// assignments to grid nodes (定区域、定人员、定任务、定责任): person, node, role,
// tasks, valid_from, valid_to. Assignments are never deleted, only ended
// (a transfer ends one and starts another in one transaction), so "who was
// responsible for this cell on that day" always has an answer. Every
// assignment change commits together with its ledger record.
//
// Other contexts read it through ResponsibleAt (who is accountable for a
// place at a moment) and ActiveGrants (what a person may do now, used by the
// auth interceptor on every call). It also serves PeopleService.
//
// Layer: above grid (node lookups through grid.Store), ledger (every change
// is recorded) and the platform; beside accounts, whose Go API it calls to
// create logins, reset passwords and lift lockouts. It never imports auth:
// the caller's grants arrive as scope.Caller in the context.
package people

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"ecogrid/internal/grid"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
	"ecogrid/internal/textcheck"
)

// Person is someone who works in the grid system. The id never changes,
// through transfers, promotions and retirement.
type Person struct {
	ID           string
	CountyCode   string // home county: which county office manages the record
	Name         string
	Phone        string
	EmployeeCode string
	CreatedAt    time.Time
}

// Assignment is a role held by a person at a grid node for a period.
// ValidTo is nil while it is open.
type Assignment struct {
	ID         string
	PersonID   string
	CountyCode string
	NodeID     string // "" only for an administrator bootstrapped before the grid existed
	NodeCode   string
	Role       scope.Role
	Tasks      []string
	// TaskRules are the post's structured tasks (定任务): patrol quotas
	// and the like, which compliance reads before the node's.
	TaskRules []grid.Task
	ValidFrom time.Time
	ValidTo   *time.Time
	CreatedAt time.Time
	CreatedBy string
	EndedBy   string
	EndReason string
}

// ActiveAt reports whether the assignment is in force at t.
func (a Assignment) ActiveAt(t time.Time) bool {
	return !a.ValidFrom.After(t) && (a.ValidTo == nil || a.ValidTo.After(t))
}

// Node is the part of a grid node an assignment needs; people keeps the id
// and code on the assignment without a foreign key into the grid.
type Node struct {
	ID   string
	Code string
	Name string
}

// HandoverCase is an open case handed from a person leaving a post to their
// successor.
type HandoverCase struct {
	CaseID   string
	NodeCode string
	Status   string
	Title    string
}

// OpenCaseLister lists the open cases a person holds. Superseded by
// DutyHandover, which moves them in the transaction that ends the post;
// people no longer calls it. It stays only while cases.Tracker.HandoverLister
// still returns one, and goes with it.
type OpenCaseLister interface {
	OpenCasesHeldBy(ctx context.Context, personID string) ([]HandoverCase, error)
}

// OpenCaseListerFunc adapts a function to OpenCaseLister.
type OpenCaseListerFunc func(ctx context.Context, personID string) ([]HandoverCase, error)

// OpenCasesHeldBy calls f.
func (f OpenCaseListerFunc) OpenCasesHeldBy(ctx context.Context, personID string) ([]HandoverCase, error) {
	return f(ctx, personID)
}

// Limits on free text.
const (
	maxNameLen   = 100
	maxPhoneLen  = 32
	maxCodeLen   = 64
	maxTasks     = 32
	maxTaskLen   = 200
	maxReasonLen = 500
)

// CheckCountyCode reports whether code is a 6-digit county code.
func CheckCountyCode(code string) error {
	if len(code) != 6 || !isDigits(code) {
		return structerr.NewInvalidArgument("county code %.40q must be 6 digits", code)
	}
	return nil
}

// CheckNodeCode reports whether code is a grid code: 6 digits for a
// county, then 3 more per level.
func CheckNodeCode(code string) error {
	if len(code) < 6 || (len(code)-6)%3 != 0 || len(code) > 24 || !isDigits(code) {
		return structerr.NewInvalidArgument("grid code %.40q must be 6, 9, 12 or more digits (3 per level)", code)
	}
	return nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// AncestorCodes returns code and its ancestors' codes, deepest first
// (village, township, county).
func AncestorCodes(code string) []string {
	var out []string
	for n := len(code); n >= 6; n -= 3 {
		out = append(out, code[:n])
	}
	return out
}

// multiline are the fields where a newline is legitimate (long text); every
// other field is one line without control or direction characters.
var multiline = map[string]bool{"reason": true}

func checkText(field, v string, max int, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return structerr.NewInvalidArgument("%s is required", field)
	}
	check := textcheck.Line
	if multiline[field] {
		check = textcheck.Text
	}
	if err := check(field, v); err != nil {
		return err
	}
	if utf8.RuneCountInString(v) > max {
		return structerr.NewInvalidArgument("%s is longer than %d characters", field, max)
	}
	return nil
}

// Check validates a new person.
func (p Person) Check() error {
	if err := checkID("person id", p.ID); err != nil {
		return err
	}
	if err := CheckCountyCode(p.CountyCode); err != nil {
		return err
	}
	if err := checkText("name", p.Name, maxNameLen, true); err != nil {
		return err
	}
	if err := checkText("phone", p.Phone, maxPhoneLen, false); err != nil {
		return err
	}
	return checkText("employee code", p.EmployeeCode, maxCodeLen, false)
}

func checkTasks(tasks []string) error {
	if len(tasks) > maxTasks {
		return structerr.NewInvalidArgument("an assignment has at most %d tasks", maxTasks)
	}
	for _, t := range tasks {
		if err := checkText("task", t, maxTaskLen, true); err != nil {
			return err
		}
	}
	return nil
}

// assignable lists, for each role a caller holds, the roles they may assign
// and end inside their scope: the county office manages everyone below the
// administrator; a township supervisor places inspectors and grid chiefs in
// the township's villages (and moves them between villages); only an
// administrator appoints county officers and administrators: no grant
// reaches the grantor's own rank (see checkOutranks).
var assignable = map[scope.Role][]scope.Role{
	scope.RoleAdmin:              scope.AllRoles,
	scope.RoleCountyOfficer:      {scope.RoleInspector, scope.RoleGridChief, scope.RoleTownshipSupervisor},
	scope.RoleTownshipSupervisor: {scope.RoleInspector, scope.RoleGridChief},
}

// AssignerGrant returns the caller's grant under which they may assign (or
// end) role at the node with code, preferring the deepest. The boolean is
// false when no grant allows it; the caller then answers NotFound when the
// node is outside every grant's scope and PermissionDenied otherwise.
func AssignerGrant(c scope.Caller, role scope.Role, code string) (scope.Grant, bool) {
	var best scope.Grant
	found := false
	for _, g := range c.Grants {
		if !slices.Contains(assignable[g.Role], role) {
			continue
		}
		if g.Role != scope.RoleAdmin && !strings.HasPrefix(code, g.NodeCode) {
			continue
		}
		if !found || len(g.NodeCode) > len(best.NodeCode) {
			best, found = g, true
		}
	}
	return best, found
}

// checkRoleAtNode refuses roles at levels where they make no sense: a
// township supervisor sits at a township (or county) node, a county officer
// at a county node; inspectors and grid chiefs anywhere.
func checkRoleAtNode(role scope.Role, code string) error {
	switch role {
	case scope.RoleTownshipSupervisor:
		if len(code) > 9 {
			return structerr.NewInvalidArgument("a township supervisor is assigned to a township, not to node %s", code)
		}
	case scope.RoleCountyOfficer, scope.RoleAdmin:
		if len(code) != 6 {
			return structerr.NewInvalidArgument("a %s is assigned to a county node, not to node %s", role, code)
		}
	case scope.RoleInspector, scope.RoleGridChief:
	default:
		return structerr.NewInvalidArgument("unknown role %.40q", role)
	}
	return nil
}

func countyOf(code string) string {
	if len(code) < 6 {
		return code
	}
	return code[:6]
}

// sameTasks compares task lists as given.
func sameTasks(a, b []string) bool { return slices.Equal(a, b) }

// NormaliseID checks that id is a UUID and returns its canonical
// lower-case form.
func NormaliseID(field, id string) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil || len(id) != 36 {
		return "", structerr.NewInvalidArgument("%s %.40q is not a UUID", field, id)
	}
	return u.String(), nil
}

func checkID(field, id string) error {
	_, err := NormaliseID(field, id)
	return err
}

func errNodeNotFound(id string) error { return structerr.NewNotFound("grid node %s not found", id) }
