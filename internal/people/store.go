package people

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/grid"
	"ecogrid/internal/ledger"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// Actor is who makes a change, as the ledger records it: the person, the
// role and the grid node they acted from at that moment.
type Actor struct {
	PersonID string // "" for the system itself (bootstrap)
	Role     string
	NodeCode string
}

// SystemActor is the operator's command line acting directly on the database.
var SystemActor = Actor{Role: ledger.SystemActor}

// ActorFor returns the actor for a caller acting under grant g.
func ActorFor(c scope.Caller, g scope.Grant) Actor {
	return Actor{PersonID: c.PersonID, Role: string(g.Role), NodeCode: g.NodeCode}
}

// Store reads and changes persons and assignments.
type Store struct {
	db       database.TxBeginner
	q        database.Querier
	handover DutyHandover
}

// Pool is what the store needs of a pgx pool.
type Pool interface {
	database.TxBeginner
	database.Querier
}

// NewStore returns a store on pool. handover moves a leaving person's open
// cases to their successor when an assignment ends or is transferred; it is
// nil only where no case can exist (the operator's command line, tests of
// people alone), and nothing is then handed over.
func NewStore(pool Pool, handover DutyHandover) *Store {
	return &Store{db: pool, q: pool, handover: handover}
}

// recordedChange runs change and appends the ledger entries it returns, in
// one transaction: no assignment change without its accountability record,
// no record without its change. Every change of persons and assignments
// goes through here. Entries are appended in county order so that two
// transactions touching the same two counties cannot deadlock.
func (s *Store) recordedChange(ctx context.Context, actor Actor, change func(tx pgx.Tx) ([]ledger.Entry, error)) error {
	return database.InTx(ctx, s.db, func(tx pgx.Tx) error {
		entries, err := change(tx)
		if err != nil {
			return err
		}
		slices.SortStableFunc(entries, func(a, b ledger.Entry) int { return cmpString(a.CountyCode, b.CountyCode) })
		for _, e := range entries {
			e.ActorID, e.ActorRole, e.ActorNodeCode = actor.PersonID, actor.Role, actor.NodeCode
			if _, err := ledger.Append(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

const personColumns = `id, county_code, name, phone, employee_code, created_at`

func scanPerson(row pgx.Row) (Person, error) {
	var p Person
	err := row.Scan(&p.ID, &p.CountyCode, &p.Name, &p.Phone, &p.EmployeeCode, &p.CreatedAt)
	return p, err
}

// ErrPersonNotFound is returned for an unknown person (or one outside scope).
var ErrPersonNotFound = structerr.NewNotFound("person not found")

// ErrAssignmentNotFound is returned for an unknown assignment (or one outside scope).
var ErrAssignmentNotFound = structerr.NewNotFound("assignment not found")

// GetPerson returns the person with id.
func GetPerson(ctx context.Context, q database.Querier, id string) (Person, error) {
	p, err := scanPerson(q.QueryRow(ctx, `SELECT `+personColumns+` FROM people.persons WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Person{}, ErrPersonNotFound
	}
	return p, err
}

// Names returns the names of the persons with the given ids (UUIDs), by
// id; unknown and malformed ids are absent. One query for a page of a
// list that shows who did what (patrol tracks on the map).
func Names(ctx context.Context, q database.Querier, ids []string) (map[string]string, error) {
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if _, err := uuid.Parse(id); err == nil {
			valid = append(valid, id)
		}
	}
	out := make(map[string]string, len(valid))
	if len(valid) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT id::text, name FROM people.persons WHERE id = ANY($1::uuid[])`, valid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, err
		}
		out[id] = name
	}
	return out, rows.Err()
}

// CreatePerson stores p under its client-generated id and records it. A
// repeated identical create returns the stored person (created=false); the
// id taken by a different person, or the employee code taken in the county,
// is AlreadyExists.
func (s *Store) CreatePerson(ctx context.Context, actor Actor, p Person) (Person, bool, error) {
	if err := p.Check(); err != nil {
		return Person{}, false, err
	}
	var out Person
	created := false
	var by any
	if actor.PersonID != "" {
		by = actor.PersonID
	}
	err := s.recordedChange(ctx, actor, func(tx pgx.Tx) ([]ledger.Entry, error) {
		stored, err := scanPerson(tx.QueryRow(ctx, `INSERT INTO people.persons (id, county_code, name, phone, employee_code, created_by)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING `+personColumns,
			p.ID, p.CountyCode, p.Name, p.Phone, p.EmployeeCode, by))
		if errors.Is(err, pgx.ErrNoRows) {
			stored, err = GetPerson(ctx, tx, p.ID)
			if err != nil {
				return nil, err
			}
			if stored.CountyCode != p.CountyCode || stored.Name != p.Name || stored.Phone != p.Phone || stored.EmployeeCode != p.EmployeeCode {
				return nil, structerr.NewAlreadyExists("person id %s is already used by another person", p.ID)
			}
			out = stored
			return nil, nil
		}
		if structerr.IsUniqueViolation(err, "persons_employee_code") {
			return nil, structerr.NewAlreadyExists("employee code %.40q is already used in county %s", p.EmployeeCode, p.CountyCode)
		}
		if err != nil {
			return nil, fmt.Errorf("creating person: %w", err)
		}
		out, created = stored, true
		return []ledger.Entry{{
			CountyCode: p.CountyCode, Action: "person.created", SubjectType: "person", SubjectID: p.ID, NodeCode: p.CountyCode,
			Payload: map[string]any{"name": p.Name, "county_code": p.CountyCode, "employee_code": p.EmployeeCode},
		}}, nil
	})
	return out, created, err
}

const assignmentColumns = `id, person_id, county_code, coalesce(node_id::text, ''), node_code, role, tasks, task_rules,
	valid_from, valid_to, created_at, coalesce(created_by::text, ''), coalesce(ended_by::text, ''), end_reason`

func scanAssignment(row pgx.Row) (Assignment, error) {
	var a Assignment
	var role string
	err := row.Scan(&a.ID, &a.PersonID, &a.CountyCode, &a.NodeID, &a.NodeCode, &role, &a.Tasks, &a.TaskRules,
		&a.ValidFrom, &a.ValidTo, &a.CreatedAt, &a.CreatedBy, &a.EndedBy, &a.EndReason)
	a.Role = scope.Role(role)
	if a.Tasks == nil {
		a.Tasks = []string{}
	}
	if a.TaskRules == nil {
		a.TaskRules = []grid.Task{}
	}
	return a, err
}

func collectAssignments(rows pgx.Rows, err error) ([]Assignment, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Assignment, error) { return scanAssignment(r) })
}

// GetAssignment returns the assignment with id.
func GetAssignment(ctx context.Context, q database.Querier, id string) (Assignment, error) {
	a, err := scanAssignment(q.QueryRow(ctx, `SELECT `+assignmentColumns+` FROM people.assignments WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Assignment{}, ErrAssignmentNotFound
	}
	return a, err
}

// History returns every assignment the person has held or holds, oldest
// first: their whole career in the grid.
func History(ctx context.Context, q database.Querier, personID string) ([]Assignment, error) {
	return collectAssignments(q.Query(ctx, `SELECT `+assignmentColumns+` FROM people.assignments
		WHERE person_id = $1 ORDER BY valid_from, created_at, id`, personID))
}

// NewAssignment is a request to start an assignment; NodeID and NodeCode
// come from the grid.
type NewAssignment struct {
	ID        string
	PersonID  string
	NodeID    string
	NodeCode  string
	Role      scope.Role
	Tasks     []string
	TaskRules []grid.Task
	ValidFrom time.Time // zero: now
}

// Check validates the request.
func (n NewAssignment) Check() error {
	if err := checkID("assignment id", n.ID); err != nil {
		return err
	}
	if err := checkID("person id", n.PersonID); err != nil {
		return err
	}
	if n.NodeID == "" && n.Role != scope.RoleAdmin {
		return structerr.NewInvalidArgument("grid node id is required")
	}
	if n.NodeID != "" {
		if err := checkID("grid node id", n.NodeID); err != nil {
			return err
		}
	}
	if err := CheckNodeCode(n.NodeCode); err != nil {
		return err
	}
	if !n.Role.Valid() {
		return structerr.NewInvalidArgument("role %.40q is not one of inspector, grid_chief, township_supervisor, county_officer, admin", n.Role)
	}
	if err := checkRoleAtNode(n.Role, n.NodeCode); err != nil {
		return err
	}
	if err := checkTasks(n.Tasks); err != nil {
		return err
	}
	return checkTaskRules(n.TaskRules)
}

// checkTaskRules refuses structured tasks grid would refuse on a node.
func checkTaskRules(ts []grid.Task) error {
	if len(ts) > maxTasks {
		return structerr.NewInvalidArgument("an assignment has at most %d tasks", maxTasks)
	}
	for i, t := range ts {
		if err := t.Check(); err != nil {
			return structerr.NewInvalidArgument("task %d: %v", i+1, err)
		}
	}
	return nil
}

// maxBackdate is how far before now an assignment may start: enough for a
// clock difference or a form filled in yesterday, never enough to rewrite
// who was responsible last month.
const maxBackdate = 24 * time.Hour

func (s *Store) insertAssignment(ctx context.Context, tx pgx.Tx, actor Actor, n NewAssignment, now time.Time) (Assignment, bool, *ledger.Entry, error) {
	if n.ValidFrom.IsZero() {
		n.ValidFrom = now
	}
	if n.ValidFrom.Before(now.Add(-maxBackdate)) {
		return Assignment{}, false, nil, structerr.NewInvalidArgument("an assignment cannot start more than %s in the past", maxBackdate)
	}
	person, err := GetPerson(ctx, tx, n.PersonID)
	if err != nil {
		return Assignment{}, false, nil, err
	}
	if n.Tasks == nil {
		n.Tasks = []string{}
	}
	if n.TaskRules == nil {
		n.TaskRules = []grid.Task{}
	}
	var nodeID, by any
	if n.NodeID != "" {
		nodeID = n.NodeID
	}
	if actor.PersonID != "" {
		by = actor.PersonID
	}
	a, err := scanAssignment(tx.QueryRow(ctx, `INSERT INTO people.assignments
		(id, person_id, county_code, node_id, node_code, role, tasks, task_rules, valid_from, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING RETURNING `+assignmentColumns,
		n.ID, n.PersonID, countyOf(n.NodeCode), nodeID, n.NodeCode, string(n.Role), n.Tasks, n.TaskRules, n.ValidFrom, by))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		stored, err := GetAssignment(ctx, tx, n.ID)
		if err != nil {
			return Assignment{}, false, nil, err
		}
		if stored.PersonID != n.PersonID || stored.NodeCode != n.NodeCode || stored.Role != n.Role || !sameTasks(stored.Tasks, n.Tasks) || !slices.Equal(stored.TaskRules, n.TaskRules) {
			return Assignment{}, false, nil, structerr.NewAlreadyExists("assignment id %s is already used by another assignment", n.ID)
		}
		return stored, false, nil, nil
	case structerr.IsUniqueViolation(err, "assignments_open"):
		return Assignment{}, false, nil, structerr.NewAlreadyExists("%s already holds an open %s assignment at node %s", person.Name, n.Role, n.NodeCode)
	case err != nil:
		return Assignment{}, false, nil, fmt.Errorf("starting assignment: %w", err)
	}
	e := &ledger.Entry{
		CountyCode: a.CountyCode, Action: "assignment.started", SubjectType: "assignment", SubjectID: a.ID, NodeCode: a.NodeCode,
		Responsible: []ledger.Responsible{{PersonID: person.ID, Name: person.Name, Role: string(a.Role), NodeCode: a.NodeCode}},
		Payload: map[string]any{
			"person_id": person.ID, "person_name": person.Name, "role": string(a.Role), "node_id": a.NodeID,
			"node_code": a.NodeCode, "tasks": a.Tasks, "task_rules": a.TaskRules, "valid_from": a.ValidFrom.UTC().Format(time.RFC3339Nano),
		},
	}
	return a, true, e, nil
}

// StartAssignment starts n and records it. Repeating the same request
// returns the stored assignment (created=false).
func (s *Store) StartAssignment(ctx context.Context, actor Actor, n NewAssignment) (Assignment, bool, error) {
	if err := n.Check(); err != nil {
		return Assignment{}, false, err
	}
	var out Assignment
	var created bool
	err := s.recordedChange(ctx, actor, func(tx pgx.Tx) ([]ledger.Entry, error) {
		now, err := dbNow(ctx, tx)
		if err != nil {
			return nil, err
		}
		a, c, e, err := s.insertAssignment(ctx, tx, actor, n, now)
		if err != nil {
			return nil, err
		}
		out, created = a, c
		if e == nil {
			return nil, nil
		}
		return []ledger.Entry{*e}, nil
	})
	return out, created, err
}

func dbNow(ctx context.Context, tx pgx.Tx) (time.Time, error) {
	var now time.Time
	err := tx.QueryRow(ctx, `SELECT now()`).Scan(&now)
	return now, err
}

// endLocked ends the open assignment a (locked FOR UPDATE by the caller).
func endLocked(ctx context.Context, tx pgx.Tx, actor Actor, a Assignment, reason, action string, now time.Time) (Assignment, ledger.Entry, error) {
	var by any
	if actor.PersonID != "" {
		by = actor.PersonID
	}
	to := now
	if a.ValidFrom.After(now) {
		to = a.ValidFrom // a scheduled assignment cancelled before it began
	}
	ended, err := scanAssignment(tx.QueryRow(ctx, `UPDATE people.assignments
		SET valid_to = $2, ended_at = now(), ended_by = $3, end_reason = $4
		WHERE id = $1 AND valid_to IS NULL RETURNING `+assignmentColumns, a.ID, to, by, reason))
	if err != nil {
		return Assignment{}, ledger.Entry{}, fmt.Errorf("ending assignment: %w", err)
	}
	person, err := GetPerson(ctx, tx, a.PersonID)
	if err != nil {
		return Assignment{}, ledger.Entry{}, err
	}
	e := ledger.Entry{
		CountyCode: ended.CountyCode, Action: action, SubjectType: "assignment", SubjectID: ended.ID, NodeCode: ended.NodeCode,
		Responsible: []ledger.Responsible{{PersonID: person.ID, Name: person.Name, Role: string(ended.Role), NodeCode: ended.NodeCode}},
		Payload: map[string]any{
			"person_id": person.ID, "person_name": person.Name, "role": string(ended.Role), "node_code": ended.NodeCode,
			"valid_from": ended.ValidFrom.UTC().Format(time.RFC3339Nano), "valid_to": ended.ValidTo.UTC().Format(time.RFC3339Nano),
			"reason": reason,
		},
	}
	return ended, e, nil
}

func lockAssignment(ctx context.Context, tx pgx.Tx, id string) (Assignment, error) {
	a, err := scanAssignment(tx.QueryRow(ctx, `SELECT `+assignmentColumns+` FROM people.assignments WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Assignment{}, ErrAssignmentNotFound
	}
	return a, err
}

// EndResult is an ended assignment, the open cases handed to the successor
// in the same transaction, and whether the person now holds no assignment.
type EndResult struct {
	Assignment  Assignment
	Handover    []HandoverCase
	SuccessorID string // who received the handover; "" when nothing moved
	LastOne     bool
}

// EndAssignment ends the assignment now and records it; the open cases the
// person holds under its node go to successorID (or, when "", to the
// nearest supervisor over the node, else to the actor) in the same
// transaction. Ending an already ended assignment returns it unchanged (a
// retried request).
func (s *Store) EndAssignment(ctx context.Context, actor Actor, id, reason, successorID string) (EndResult, error) {
	if err := checkText("reason", reason, maxReasonLen, false); err != nil {
		return EndResult{}, err
	}
	var res EndResult
	err := s.recordedChange(ctx, actor, func(tx pgx.Tx) ([]ledger.Entry, error) {
		a, err := lockAssignment(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		var entries []ledger.Entry
		if a.ValidTo == nil {
			if err := checkNotLastAdminTx(ctx, tx, a); err != nil {
				return nil, err
			}
			now, err := dbNow(ctx, tx)
			if err != nil {
				return nil, err
			}
			ended, e, err := endLocked(ctx, tx, actor, a, reason, "assignment.ended", now)
			if err != nil {
				return nil, err
			}
			a, entries = ended, []ledger.Entry{e}
			moved, to, he, err := s.handOver(ctx, tx, actor, ended, successorID, reason, now)
			if err != nil {
				return nil, err
			}
			res.Handover, res.SuccessorID = moved, to
			if he != nil {
				entries = append(entries, *he)
			}
		}
		res.Assignment = a
		err = tx.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM people.assignments
			WHERE person_id = $1 AND (valid_to IS NULL OR valid_to > now()))`, a.PersonID).Scan(&res.LastOne)
		return entries, err
	})
	return res, err
}

// TransferResult is the ended assignment, the one that replaces it, and the
// open cases handed to the successor at the old node.
type TransferResult struct {
	Ended       Assignment
	Started     Assignment
	Handover    []HandoverCase
	SuccessorID string
}

// Transfer ends assignment fromID and starts next for the same person in
// one transaction (a move to another cell, or a promotion), recording both
// and handing the open cases held under the old node to successorID (see
// EndAssignment). Repeating a completed transfer returns the same pair.
func (s *Store) Transfer(ctx context.Context, actor Actor, fromID string, next NewAssignment, reason, successorID string) (TransferResult, error) {
	if err := checkText("reason", reason, maxReasonLen, false); err != nil {
		return TransferResult{}, err
	}
	var res TransferResult
	err := s.recordedChange(ctx, actor, func(tx pgx.Tx) ([]ledger.Entry, error) {
		old, err := lockAssignment(ctx, tx, fromID)
		if err != nil {
			return nil, err
		}
		next.PersonID = old.PersonID
		if err := next.Check(); err != nil {
			return nil, err
		}
		if old.ValidTo != nil {
			stored, err := GetAssignment(ctx, tx, next.ID)
			if err == nil && stored.PersonID == old.PersonID && stored.NodeCode == next.NodeCode && stored.Role == next.Role {
				res = TransferResult{Ended: old, Started: stored}
				return nil, nil
			}
			return nil, structerr.NewFailedPrecondition("assignment %s has already ended", fromID)
		}
		if next.Role != scope.RoleAdmin {
			if err := checkNotLastAdminTx(ctx, tx, old); err != nil {
				return nil, err
			}
		}
		now, err := dbNow(ctx, tx)
		if err != nil {
			return nil, err
		}
		ended, e1, err := endLocked(ctx, tx, actor, old, reason, "assignment.transferred", now)
		if err != nil {
			return nil, err
		}
		if next.ValidFrom.IsZero() {
			next.ValidFrom = now
		}
		// The new assignment goes in before the handover, so that a
		// successor's reach is judged on the posts as they are after it.
		started, created, e2, err := s.insertAssignment(ctx, tx, actor, next, now)
		if err != nil {
			return nil, err
		}
		if !created {
			return nil, structerr.NewAlreadyExists("assignment id %s is already used", next.ID)
		}
		e1.Payload.(map[string]any)["next_assignment_id"] = started.ID
		e2.Payload.(map[string]any)["previous_assignment_id"] = ended.ID
		entries := []ledger.Entry{e1, *e2}
		moved, to, he, err := s.handOver(ctx, tx, actor, ended, successorID, reason, now)
		if err != nil {
			return nil, err
		}
		if he != nil {
			entries = append(entries, *he)
		}
		res = TransferResult{Ended: ended, Started: started, Handover: moved, SuccessorID: to}
		return entries, nil
	})
	return res, err
}

// ResponsibleAt returns who was responsible for the node with code at time
// at, walking up the hierarchy: the node's own inspectors and chiefs (and
// anyone else assigned to it), then each ancestor's chief, supervisor and
// county officers. Deepest node first. It is what the ledger records with a
// violation or a case act, so accountability survives later transfers.
func ResponsibleAt(ctx context.Context, q database.Querier, nodeCode string, at time.Time) ([]ledger.Responsible, error) {
	if err := CheckNodeCode(nodeCode); err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `SELECT a.person_id, p.name, a.role, a.node_code
		FROM people.assignments a JOIN people.persons p ON p.id = a.person_id
		WHERE a.node_code = ANY($1) AND a.valid_from <= $3 AND (a.valid_to IS NULL OR a.valid_to > $3)
		  AND a.role <> 'admin'
		  AND (a.node_code = $2 OR a.role IN ('grid_chief', 'township_supervisor', 'county_officer'))
		ORDER BY length(a.node_code) DESC,
			array_position(ARRAY['grid_chief', 'inspector', 'township_supervisor', 'county_officer'], a.role),
			p.name, a.person_id`, AncestorCodes(nodeCode), nodeCode, at)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ledger.Responsible, error) {
		var x ledger.Responsible
		err := r.Scan(&x.PersonID, &x.Name, &x.Role, &x.NodeCode)
		return x, err
	})
}

// ActiveGrants returns the roles the person holds at time at: what the
// auth interceptor puts in scope.Caller on every call, so that ending an
// assignment takes effect on the next call.
func ActiveGrants(ctx context.Context, q database.Querier, personID string, at time.Time) ([]scope.Grant, error) {
	rows, err := q.Query(ctx, `SELECT role, coalesce(node_id::text, ''), node_code FROM people.assignments
		WHERE person_id = $1 AND valid_from <= $2 AND (valid_to IS NULL OR valid_to > $2)
		ORDER BY length(node_code), node_code, role`, personID, at)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (scope.Grant, error) {
		var g scope.Grant
		var role string
		err := r.Scan(&role, &g.NodeID, &g.NodeCode)
		g.Role = scope.Role(role)
		return g, err
	})
}

// NextGrantChange is the first time after at when a grant of the person
// starts or ends by the clock (a valid_from or valid_to still ahead), or
// the zero time when none is scheduled: until then ActiveGrants at any
// later time gives what it gives at at, unless the assignments change.
func NextGrantChange(ctx context.Context, q database.Querier, personID string, at time.Time) (time.Time, error) {
	var next *time.Time
	err := q.QueryRow(ctx, `SELECT min(t) FROM (
			SELECT valid_from AS t FROM people.assignments WHERE person_id = $1 AND valid_from > $2
			UNION ALL
			SELECT valid_to FROM people.assignments WHERE person_id = $1 AND valid_to > $2) x`, personID, at).Scan(&next)
	if err != nil || next == nil {
		return time.Time{}, err
	}
	return *next, nil
}

// PersonChanges are the fields UpdatePerson sets; nil leaves one as it is.
type PersonChanges struct {
	Name         *string
	Phone        *string
	EmployeeCode *string
}

// UpdatePerson changes a person's details and records which fields changed
// (the new name and employee code; a phone change is recorded without the
// number, which is personal data the ledger keeps for life).
func (s *Store) UpdatePerson(ctx context.Context, actor Actor, id string, ch PersonChanges) (Person, error) {
	var out Person
	err := s.recordedChange(ctx, actor, func(tx pgx.Tx) ([]ledger.Entry, error) {
		cur, err := scanPerson(tx.QueryRow(ctx, `SELECT `+personColumns+` FROM people.persons WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, ErrPersonNotFound
		}
		if err != nil {
			return nil, err
		}
		next := cur
		changed := map[string]any{}
		if ch.Name != nil && *ch.Name != cur.Name {
			next.Name, changed["name"] = *ch.Name, *ch.Name
		}
		if ch.Phone != nil && *ch.Phone != cur.Phone {
			next.Phone, changed["phone_changed"] = *ch.Phone, true
		}
		if ch.EmployeeCode != nil && *ch.EmployeeCode != cur.EmployeeCode {
			next.EmployeeCode, changed["employee_code"] = *ch.EmployeeCode, *ch.EmployeeCode
		}
		if err := next.Check(); err != nil {
			return nil, err
		}
		if len(changed) == 0 {
			out = cur
			return nil, nil
		}
		out, err = scanPerson(tx.QueryRow(ctx, `UPDATE people.persons SET name = $2, phone = $3, employee_code = $4, updated_at = now()
			WHERE id = $1 RETURNING `+personColumns, id, next.Name, next.Phone, next.EmployeeCode))
		if structerr.IsUniqueViolation(err, "persons_employee_code") {
			return nil, structerr.NewAlreadyExists("employee code %.40q is already used in county %s", next.EmployeeCode, next.CountyCode)
		}
		if err != nil {
			return nil, err
		}
		return []ledger.Entry{{
			CountyCode: cur.CountyCode, Action: "person.updated", SubjectType: "person", SubjectID: id, NodeCode: cur.CountyCode,
			Payload: changed,
		}}, nil
	})
	return out, err
}
