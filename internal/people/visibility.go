package people

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/pagetoken"
	"ecogrid/internal/scope"
)

// managerRoles see the persons assigned inside their subtree; an inspector
// sees only themselves.
var managerRoles = []scope.Role{scope.RoleGridChief, scope.RoleTownshipSupervisor, scope.RoleCountyOfficer}

// visibility is the SQL form of "which persons may this caller see".
type visibility struct {
	self     string
	all      bool
	roots    []string // persons with an open assignment under one of these
	counties []string // persons whose home county is one of these (county officers)
}

func visibilityOf(c scope.Caller) visibility {
	v := visibility{self: c.PersonID, roots: []string{}, counties: []string{}}
	for _, g := range c.Grants {
		switch {
		case g.Role == scope.RoleAdmin:
			v.all = true
		case g.Role == scope.RoleCountyOfficer:
			v.counties = append(v.counties, countyOf(g.NodeCode))
			v.roots = append(v.roots, g.NodeCode)
		case g.Role == scope.RoleGridChief || g.Role == scope.RoleTownshipSupervisor:
			v.roots = append(v.roots, g.NodeCode)
		}
	}
	return v
}

// visiblePredicate uses $1 self, $2 all, $3 roots, $4 counties on alias p.
const visiblePredicate = `(p.id::text = $1 OR $2
	OR p.county_code = ANY($4)
	OR EXISTS (SELECT 1 FROM people.assignments a, unnest($3::text[]) r
		WHERE a.person_id = p.id AND (a.valid_to IS NULL OR a.valid_to > now()) AND starts_with(a.node_code, r)))`

// VisiblePerson returns the person with id when the caller may see them:
// themselves; a person with an open assignment inside a subtree the caller
// manages (grid chief, township supervisor, county officer); a person whose
// home county the caller's county office manages; anyone for an
// administrator. Otherwise ErrPersonNotFound, as for an unknown id.
func VisiblePerson(ctx context.Context, q database.Querier, c scope.Caller, id string) (Person, error) {
	if _, err := NormaliseID("person id", id); err != nil {
		return Person{}, err
	}
	v := visibilityOf(c)
	p, err := scanPerson(q.QueryRow(ctx, `SELECT `+prefixed("p.", personColumns)+` FROM people.persons p
		WHERE `+visiblePredicate+` AND p.id = $5`, v.self, v.all, v.roots, v.counties, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Person{}, ErrPersonNotFound
	}
	return p, err
}

func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// PersonFilter narrows ListPersons.
type PersonFilter struct {
	NodeCode     string // only persons with an open assignment in this subtree
	NameContains string
	PageSize     int
	PageToken    string
}

// ListPersons lists the persons the caller may see, by name, one page at a
// time (keyset on name and id, so pages stay stable under inserts).
func ListPersons(ctx context.Context, q database.Querier, c scope.Caller, f PersonFilter) ([]Person, string, error) {
	if f.NodeCode != "" {
		if err := CheckNodeCode(f.NodeCode); err != nil {
			return nil, "", err
		}
	}
	if err := checkText("name filter", f.NameContains, maxNameLen, false); err != nil {
		return nil, "", err
	}
	size := f.PageSize
	if size <= 0 {
		size = 50
	}
	size = min(size, 500)
	afterName, afterID := "", ""
	if f.PageToken != "" {
		parts, err := pagetoken.Decode(f.PageToken, 2)
		if err != nil {
			return nil, "", err
		}
		if _, err := NormaliseID("page token", parts[1]); err != nil {
			return nil, "", pagetoken.ErrBad
		}
		afterName, afterID = parts[0], parts[1]
	}
	v := visibilityOf(c)
	rows, err := q.Query(ctx, `SELECT `+prefixed("p.", personColumns)+` FROM people.persons p
		WHERE `+visiblePredicate+`
		  AND ($5 = '' OR EXISTS (SELECT 1 FROM people.assignments a
				WHERE a.person_id = p.id AND (a.valid_to IS NULL OR a.valid_to > now()) AND starts_with(a.node_code, $5)))
		  AND ($6 = '' OR strpos(p.name, $6) > 0)
		  AND ($7 = '' OR (p.name, p.id::text) > ($7, $8))
		ORDER BY p.name, p.id::text
		LIMIT $9`, v.self, v.all, v.roots, v.counties, f.NodeCode, f.NameContains, afterName, afterID, size+1)
	if err != nil {
		return nil, "", err
	}
	ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Person, error) { return scanPerson(r) })
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ps) > size {
		ps = ps[:size]
		last := ps[len(ps)-1]
		next = pagetoken.Encode(last.Name, last.ID)
	}
	return ps, next, nil
}
