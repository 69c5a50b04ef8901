// Package departments owns the departments of the eco-cloud (生态云): the
// county's departments and township stations as organisations with their
// own effective-dated staff, the grid area each covers, the category
// taxonomy in the domain's terms (Chinese names first), and the county's
// routing rules from a category to a lead department and cooperating ones.
//
// It owns schema departments. Persons are people's (checked through
// people's Go API); the case steps a department takes are the cases
// context's, which calls Reach and Route here inside its own transaction.
package departments

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/database"
	"ecogrid/internal/people"
	"ecogrid/internal/structerr"
)

// Department is a county department (生态环境, 水利, 林业, 自然资源, 住建,
// 农业农村, 城管 …) or a township station of one.
type Department struct {
	ID         string
	CountyCode string
	// TownshipCode is set for a township station; "" for a county department.
	TownshipCode string
	// Code is the county-unique short name used in routing rules ("water_resources").
	Code   string
	NameZh string
	NameEn string
}

// Membership is a person's place in a department for a period; never
// deleted, only ended, so "who in 水利局 had this case on that day" always
// has an answer.
type Membership struct {
	ID           string
	DepartmentID string
	PersonID     string
	// Role is "head" or "staff".
	Role      string
	ValidFrom time.Time
	ValidTo   *time.Time
}

// Category is one entry of the taxonomy; CountyCode "" is a national default.
type Category struct {
	CountyCode string
	Code       string
	NameZh     string
	NameEn     string
}

// Route is where a county sends a case of a category: the lead department,
// the cooperating ones, and the lead's deadline rule.
type Route struct {
	CountyCode string
	Category   string
	// ZoneKind narrows the rule to cases in a protected zone of that kind
	// ("" is any); the hook for the zones layer.
	ZoneKind         string
	LeadDepartmentID string
	Cooperating      []string
	// DeadlineDays for the lead department's rectification; 0 is the same day.
	DeadlineDays int
}

var codePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{1,39}$`)

func checkCode(what, code string) error {
	if !codePattern.MatchString(code) {
		return structerr.NewInvalidArgument("%s %.40q must be 2 to 40 lower-case letters, digits or _, starting with a letter", what, code)
	}
	return nil
}

func checkName(what, v string, required bool) error {
	if required && strings.TrimSpace(v) == "" {
		return structerr.NewInvalidArgument("a %s is required", what)
	}
	if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		return structerr.NewInvalidArgument("the %s is not valid UTF-8 text", what)
	}
	if n := utf8.RuneCountInString(v); n > 100 {
		return structerr.NewInvalidArgument("the %s has %d characters, at most 100 are allowed", what, n)
	}
	return nil
}

func checkID(what, id string) (string, error) {
	u, err := uuid.Parse(strings.TrimSpace(id))
	if err != nil {
		return "", structerr.NewInvalidArgument("%s %.40q is not a uuid", what, id)
	}
	return u.String(), nil
}

func isUnique(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505"
}

// Create adds a department; creating the same id again with the same
// content is an idempotent replay.
func Create(ctx context.Context, q database.Querier, d Department) (Department, error) {
	var err error
	if d.ID, err = checkID("department id", d.ID); err != nil {
		return d, err
	}
	if err := people.CheckCountyCode(d.CountyCode); err != nil {
		return d, err
	}
	if d.TownshipCode != "" && (!strings.HasPrefix(d.TownshipCode, d.CountyCode) || people.CheckNodeCode(d.TownshipCode) != nil || len(d.TownshipCode) < 9) {
		return d, structerr.NewInvalidArgument("township %.20q is not a township of county %s", d.TownshipCode, d.CountyCode)
	}
	if err := checkCode("department code", d.Code); err != nil {
		return d, err
	}
	if err := checkName("Chinese name", d.NameZh, true); err != nil {
		return d, err
	}
	if err := checkName("English name", d.NameEn, false); err != nil {
		return d, err
	}
	tag, err := q.Exec(ctx, `INSERT INTO departments.departments (id, county_code, township_code, code, name_zh, name_en)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`, d.ID, d.CountyCode, d.TownshipCode, d.Code, d.NameZh, d.NameEn)
	if isUnique(err) {
		return d, structerr.NewAlreadyExists("county %s already has a department %s", d.CountyCode, d.Code)
	}
	if err != nil {
		return d, err
	}
	if tag.RowsAffected() == 0 {
		prev, err := Get(ctx, q, d.ID)
		if err != nil {
			return d, err
		}
		if prev != d {
			return d, structerr.NewAlreadyExists("department id %s is already used for %s", d.ID, prev.Code)
		}
	}
	return d, nil
}

// Get reads a department; NotFound when there is none.
func Get(ctx context.Context, q database.Querier, id string) (Department, error) {
	var d Department
	if _, err := uuid.Parse(id); err != nil {
		return d, structerr.NewNotFound("department %.40s not found", id)
	}
	err := q.QueryRow(ctx, `SELECT id::text, county_code, township_code, code, name_zh, name_en
		FROM departments.departments WHERE id = $1`, id).Scan(&d.ID, &d.CountyCode, &d.TownshipCode, &d.Code, &d.NameZh, &d.NameEn)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, structerr.NewNotFound("department %s not found", id)
	}
	return d, err
}

// ByCode reads the department of a county by its code.
func ByCode(ctx context.Context, q database.Querier, county, code string) (Department, error) {
	var d Department
	err := q.QueryRow(ctx, `SELECT id::text, county_code, township_code, code, name_zh, name_en
		FROM departments.departments WHERE county_code = $1 AND code = $2`, county, code).Scan(&d.ID, &d.CountyCode, &d.TownshipCode, &d.Code, &d.NameZh, &d.NameEn)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, structerr.NewNotFound("county %s has no department %.40q", county, code)
	}
	return d, err
}

// Cover adds a grid subtree (a node code of the department's county) to the
// area the department covers, from 'from'. Covering it again is a no-op.
func Cover(ctx context.Context, q database.Querier, departmentID, nodeCode string, from time.Time) error {
	d, err := Get(ctx, q, departmentID)
	if err != nil {
		return err
	}
	if err := people.CheckNodeCode(nodeCode); err != nil {
		return err
	}
	if !strings.HasPrefix(nodeCode, d.CountyCode) {
		return structerr.NewInvalidArgument("node %s is outside the department's county %s", nodeCode, d.CountyCode)
	}
	if d.TownshipCode != "" && !strings.HasPrefix(nodeCode, d.TownshipCode) {
		return structerr.NewInvalidArgument("a township station covers only its township %s, not %s", d.TownshipCode, nodeCode)
	}
	_, err = q.Exec(ctx, `INSERT INTO departments.coverage (department_id, node_code, valid_from) VALUES ($1, $2, $3)
		ON CONFLICT (department_id, node_code) WHERE valid_to IS NULL DO NOTHING`, d.ID, nodeCode, from)
	return err
}

// Uncover ends the department's cover of a grid subtree at 'at'; its
// cases there leave its staff's reach from then on.
func Uncover(ctx context.Context, q database.Querier, departmentID, nodeCode string, at time.Time) error {
	tag, err := q.Exec(ctx, `UPDATE departments.coverage SET valid_to = $3
		WHERE department_id = $1 AND node_code = $2 AND valid_to IS NULL AND valid_from <= $3`, departmentID, nodeCode, at)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return structerr.NewFailedPrecondition("the department does not cover %s now", nodeCode)
	}
	return nil
}

// Covers returns the covered node that holds nodeCode at 'at' ("" when the
// department does not cover it).
func Covers(ctx context.Context, q database.Querier, departmentID, nodeCode string, at time.Time) (string, error) {
	var root string
	err := q.QueryRow(ctx, `SELECT node_code FROM departments.coverage
		WHERE department_id = $1 AND node_code = ANY($2) AND valid_from <= $3 AND (valid_to IS NULL OR valid_to > $3)
		ORDER BY length(node_code) DESC LIMIT 1`, departmentID, people.AncestorCodes(nodeCode), at).Scan(&root)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return root, err
}

// AddMember puts a person (of the department's county, per people) on the
// department's staff from m.ValidFrom. The same id again is a replay.
func AddMember(ctx context.Context, q database.Querier, m Membership) (Membership, error) {
	var err error
	if m.ID, err = checkID("membership id", m.ID); err != nil {
		return m, err
	}
	if m.PersonID, err = checkID("person id", m.PersonID); err != nil {
		return m, err
	}
	if m.Role != "head" && m.Role != "staff" {
		return m, structerr.NewInvalidArgument("a department role is head or staff, not %.20q", m.Role)
	}
	d, err := Get(ctx, q, m.DepartmentID)
	if err != nil {
		return m, err
	}
	p, err := people.GetPerson(ctx, q, m.PersonID)
	if err != nil {
		return m, err
	}
	if p.CountyCode != d.CountyCode {
		return m, structerr.NewFailedPrecondition("person %s belongs to county %s, the department to %s", m.PersonID, p.CountyCode, d.CountyCode)
	}
	if m.ValidFrom.IsZero() {
		m.ValidFrom = time.Now()
	}
	_, err = q.Exec(ctx, `INSERT INTO departments.memberships (id, department_id, person_id, role, valid_from)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`, m.ID, d.ID, m.PersonID, m.Role, m.ValidFrom)
	if isUnique(err) {
		return m, structerr.NewAlreadyExists("person %s is already on the staff of %s", m.PersonID, d.NameZh)
	}
	return m, err
}

// EndMember ends a membership at 'at' with a reason; the row stays.
func EndMember(ctx context.Context, q database.Querier, membershipID string, at time.Time, reason string) error {
	tag, err := q.Exec(ctx, `UPDATE departments.memberships SET valid_to = $2, end_reason = $3
		WHERE id = $1 AND valid_to IS NULL AND valid_from <= $2`, membershipID, at, reason)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return structerr.NewFailedPrecondition("membership %s is not open", membershipID)
	}
	return nil
}

// MembershipAt is the person's membership of the department at 'at'.
func MembershipAt(ctx context.Context, q database.Querier, departmentID, personID string, at time.Time) (Membership, bool, error) {
	var m Membership
	err := q.QueryRow(ctx, `SELECT id::text, department_id::text, person_id::text, role, valid_from, valid_to
		FROM departments.memberships
		WHERE department_id = $1 AND person_id = $2 AND valid_from <= $3 AND (valid_to IS NULL OR valid_to > $3)
		ORDER BY valid_from DESC LIMIT 1`, departmentID, personID, at).Scan(&m.ID, &m.DepartmentID, &m.PersonID, &m.Role, &m.ValidFrom, &m.ValidTo)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, false, nil
	}
	return m, err == nil, err
}

// Staff is a department member acting on a case: who, in which department,
// in which role, under which covered node.
type Staff struct {
	Department Department
	PersonID   string
	Role       string
	// NodeCode is the covered grid node that holds the case.
	NodeCode string
}

// Reach checks that personID may act for the department on something at
// nodeCode now: a member of the department at 'at' whose department covers
// the node. Anything else is NotFound, as for any object outside a
// person's scope (DESIGN.md, Access).
func Reach(ctx context.Context, q database.Querier, departmentID, personID, nodeCode string, at time.Time) (Staff, error) {
	notFound := structerr.NewNotFound("case at %s not found", nodeCode)
	if personID == "" {
		return Staff{}, notFound
	}
	d, err := Get(ctx, q, departmentID)
	if structerr.Code(err) == codes.NotFound {
		return Staff{}, notFound
	}
	if err != nil {
		return Staff{}, err
	}
	m, ok, err := MembershipAt(ctx, q, d.ID, personID, at)
	if err != nil {
		return Staff{}, err
	}
	if !ok {
		return Staff{}, notFound
	}
	root, err := Covers(ctx, q, d.ID, nodeCode, at)
	if err != nil {
		return Staff{}, err
	}
	if root == "" {
		return Staff{}, notFound
	}
	return Staff{Department: d, PersonID: personID, Role: m.Role, NodeCode: root}, nil
}

// AddCategory adds a county's own category to the taxonomy (or renames it).
func AddCategory(ctx context.Context, q database.Querier, c Category) error {
	if err := people.CheckCountyCode(c.CountyCode); err != nil {
		return err
	}
	if err := checkCode("category code", c.Code); err != nil {
		return err
	}
	if err := checkName("Chinese name", c.NameZh, true); err != nil {
		return err
	}
	if err := checkName("English name", c.NameEn, false); err != nil {
		return err
	}
	_, err := q.Exec(ctx, `INSERT INTO departments.categories (county_code, code, name_zh, name_en) VALUES ($1, $2, $3, $4)
		ON CONFLICT (county_code, code) DO UPDATE SET name_zh = excluded.name_zh, name_en = excluded.name_en`,
		c.CountyCode, c.Code, c.NameZh, c.NameEn)
	return err
}

// Categories is the taxonomy of a county: the national defaults and the
// county's own, a county's entry replacing a default of the same code.
func Categories(ctx context.Context, q database.Querier, county string) ([]Category, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT ON (code) county_code, code, name_zh, name_en FROM departments.categories
		WHERE county_code IN ('', $1) ORDER BY code, county_code DESC`, county)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Category, error) {
		var c Category
		return c, r.Scan(&c.CountyCode, &c.Code, &c.NameZh, &c.NameEn)
	})
}

// SetRoute writes a county's routing rule for a category (and zone kind).
// Every department named must be the county's, the lead not among the
// cooperating, and the category in the county's taxonomy.
func SetRoute(ctx context.Context, q database.Querier, r Route) error {
	if err := people.CheckCountyCode(r.CountyCode); err != nil {
		return err
	}
	cats, err := Categories(ctx, q, r.CountyCode)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(cats, func(c Category) bool { return c.Code == r.Category }) {
		return structerr.NewInvalidArgument("category %.40q is not in the taxonomy of county %s; add it first", r.Category, r.CountyCode)
	}
	if r.ZoneKind != "" {
		if err := checkCode("zone kind", r.ZoneKind); err != nil {
			return err
		}
	}
	if r.DeadlineDays < 0 || r.DeadlineDays > 60 {
		return structerr.NewInvalidArgument("a department's deadline is 0 to 60 days, not %d", r.DeadlineDays)
	}
	ids := append([]string{r.LeadDepartmentID}, r.Cooperating...)
	for i, id := range ids {
		d, err := Get(ctx, q, id)
		if err != nil {
			return err
		}
		if d.CountyCode != r.CountyCode {
			return structerr.NewInvalidArgument("department %s is not a department of county %s", d.Code, r.CountyCode)
		}
		if i > 0 && slices.Contains(ids[:i], d.ID) {
			return structerr.NewInvalidArgument("department %s is named twice in the rule", d.Code)
		}
		ids[i] = d.ID
	}
	_, err = q.Exec(ctx, `INSERT INTO departments.routes (county_code, category, zone_kind, lead_department_id, cooperating, deadline_days)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (county_code, category, zone_kind) DO UPDATE SET lead_department_id = excluded.lead_department_id,
			cooperating = excluded.cooperating, deadline_days = excluded.deadline_days, updated_at = now()`,
		r.CountyCode, r.Category, r.ZoneKind, ids[0], ids[1:], r.DeadlineDays)
	return err
}

// RouteFor is the rule for a case of category in county, within a zone of
// kind zoneKind ("" when the case lies in none): the zone's own rule first,
// then the category's. ok is false when the county routes the category nowhere.
func RouteFor(ctx context.Context, q database.Querier, county, category, zoneKind string) (Route, bool, error) {
	r := Route{CountyCode: county, Category: category}
	err := q.QueryRow(ctx, `SELECT zone_kind, lead_department_id::text, cooperating::text[], deadline_days FROM departments.routes
		WHERE county_code = $1 AND category = $2 AND zone_kind IN ('', $3)
		ORDER BY zone_kind DESC LIMIT 1`, county, category, zoneKind).Scan(&r.ZoneKind, &r.LeadDepartmentID, &r.Cooperating, &r.DeadlineDays)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("route for %s in %s: %w", category, county, err)
	}
	return r, true, nil
}

// List is a county's departments and stations, by code.
func List(ctx context.Context, q database.Querier, county string) ([]Department, error) {
	rows, err := q.Query(ctx, `SELECT id::text, county_code, township_code, code, name_zh, name_en
		FROM departments.departments WHERE county_code = $1 ORDER BY code`, county)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Department, error) {
		var d Department
		return d, r.Scan(&d.ID, &d.CountyCode, &d.TownshipCode, &d.Code, &d.NameZh, &d.NameEn)
	})
}

// CoveredAt is the grid nodes a department covers at 'at', by code.
func CoveredAt(ctx context.Context, q database.Querier, departmentID string, at time.Time) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT node_code FROM departments.coverage
		WHERE department_id = $1 AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2) ORDER BY node_code`, departmentID, at)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// Member is a membership with its end reason, as ListMembers reads it.
type Member struct {
	Membership
	EndReason string
}

const memberColumns = `id::text, department_id::text, person_id::text, role, valid_from, valid_to, end_reason`

func scanMember(r pgx.CollectableRow) (Member, error) {
	var m Member
	return m, r.Scan(&m.ID, &m.DepartmentID, &m.PersonID, &m.Role, &m.ValidFrom, &m.ValidTo, &m.EndReason)
}

// ListMembers is a department's staff history, ended memberships
// included, oldest first.
func ListMembers(ctx context.Context, q database.Querier, departmentID string) ([]Member, error) {
	rows, err := q.Query(ctx, `SELECT `+memberColumns+` FROM departments.memberships
		WHERE department_id = $1 ORDER BY valid_from, id`, departmentID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanMember)
}

// GetMember reads one membership; NotFound when there is none.
func GetMember(ctx context.Context, q database.Querier, membershipID string) (Member, error) {
	if _, err := uuid.Parse(membershipID); err != nil {
		return Member{}, structerr.NewNotFound("membership %.40s not found", membershipID)
	}
	rows, err := q.Query(ctx, `SELECT `+memberColumns+` FROM departments.memberships WHERE id = $1`, membershipID)
	if err != nil {
		return Member{}, err
	}
	m, err := pgx.CollectExactlyOneRow(rows, scanMember)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, structerr.NewNotFound("membership %s not found", membershipID)
	}
	return m, err
}

// Routes is a county's routing rules, by category and zone kind.
func Routes(ctx context.Context, q database.Querier, county string) ([]Route, error) {
	rows, err := q.Query(ctx, `SELECT county_code, category, zone_kind, lead_department_id::text, cooperating::text[], deadline_days
		FROM departments.routes WHERE county_code = $1 ORDER BY category, zone_kind`, county)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Route, error) {
		var rt Route
		return rt, r.Scan(&rt.CountyCode, &rt.Category, &rt.ZoneKind, &rt.LeadDepartmentID, &rt.Cooperating, &rt.DeadlineDays)
	})
}
