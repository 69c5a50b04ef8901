package cases

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/database"
	"ecogrid/internal/departments"
	"ecogrid/internal/field"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// DepartmentInput is what a person supplies with a department step.
type DepartmentInput struct {
	// DepartmentID is the department transferred to (empty: the county's
	// route for the case's category), the lead of joint handling (empty:
	// the department holding the case, else the route's lead), or the
	// department the acting person acts for (accept, refuse, complete, verify).
	DepartmentID string
	// Cooperating are the other departments of joint handling (empty: the route's).
	Cooperating []string
	// Tasks says what each department of joint handling does, by department id.
	Tasks map[string]string
	// Note is the reason (transfer, refusal) or the evidence text (joint task, verification).
	Note string
	// Photos are the SHA-256 of evidence photos of a joint task.
	Photos []string
}

// DepartmentTask is a department's part in a case: a transfer waiting for
// its answer (or answered), or a task of joint handling.
type DepartmentTask struct {
	ID           string
	CaseID       string
	DepartmentID string
	Kind         string // "transfer" or "joint"
	Lead         bool
	// State: pending, accepted or refused (transfer); open or done (joint).
	State        string
	Task         string
	Reason       string
	EvidenceNote string
	Evidence     []string
	OpenedBy     string
	DecidedBy    string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Task kinds and states, as schema cases stores them.
const (
	taskTransfer = "transfer"
	taskJoint    = "joint"
	taskPending  = "pending"
	taskAccepted = "accepted"
	taskRefused  = "refused"
	taskOpen     = "open"
	taskDone     = "done"
)

// MaxJointDepartments bounds one joint handling.
const MaxJointDepartments = 12

func loadTasks(ctx context.Context, q database.Querier, caseID string) ([]DepartmentTask, error) {
	rows, err := q.Query(ctx, `SELECT id::text, case_id::text, department_id::text, kind, lead, state, task, reason,
			evidence_note, evidence, opened_by, decided_by, created_at, updated_at
		FROM cases.department_tasks WHERE case_id = $1 ORDER BY created_at, id`, caseID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DepartmentTask, error) {
		var t DepartmentTask
		return t, r.Scan(&t.ID, &t.CaseID, &t.DepartmentID, &t.Kind, &t.Lead, &t.State, &t.Task, &t.Reason,
			&t.EvidenceNote, &t.Evidence, &t.OpenedBy, &t.DecidedBy, &t.CreatedAt, &t.UpdatedAt)
	})
}

func insertTask(ctx context.Context, tx pgx.Tx, t DepartmentTask) error {
	_, err := tx.Exec(ctx, `INSERT INTO cases.department_tasks (id, case_id, department_id, kind, lead, state, task,
			opened_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
		t.ID, t.CaseID, t.DepartmentID, t.Kind, t.Lead, t.State, t.Task, t.OpenedBy, t.CreatedAt)
	return err
}

func updateTask(ctx context.Context, tx pgx.Tx, t DepartmentTask) error {
	_, err := tx.Exec(ctx, `UPDATE cases.department_tasks SET state = $2, reason = $3, evidence_note = $4, evidence = $5,
			decided_by = $6, updated_at = $7 WHERE id = $1`,
		t.ID, t.State, t.Reason, t.EvidenceNote, nonNil(t.Evidence), t.DecidedBy, t.UpdatedAt)
	return err
}

// leadTask is the task of the department that leads the case now: the
// lead of joint handling, else the accepted or pending transfer.
func leadTask(tasks []DepartmentTask) (DepartmentTask, bool) {
	for i := len(tasks) - 1; i >= 0; i-- {
		t := tasks[i]
		if t.Kind == taskJoint && t.Lead {
			return t, true
		}
	}
	for i := len(tasks) - 1; i >= 0; i-- {
		t := tasks[i]
		if t.Kind == taskTransfer && (t.State == taskAccepted || t.State == taskPending) {
			return t, true
		}
	}
	return DepartmentTask{}, false
}

func findTask(tasks []DepartmentTask, dept, kind, state string) (int, bool) {
	i := slices.IndexFunc(tasks, func(t DepartmentTask) bool {
		return t.DepartmentID == dept && t.Kind == kind && (state == "" || t.State == state)
	})
	return i, i >= 0
}

func departmentDetails(d departments.Department) map[string]any {
	return map[string]any{"department_id": d.ID, "department_code": d.Code, "department_name": d.NameZh}
}

func checkDepartmentInput(in DepartmentInput) (DepartmentInput, error) {
	in.Note = strings.TrimSpace(in.Note)
	if err := checkInput(Input{Note: in.Note, Photos: in.Photos}); err != nil {
		return in, err
	}
	norm := func(id string) (string, error) {
		u, err := uuid.Parse(strings.TrimSpace(id))
		if err != nil {
			return "", structerr.NewInvalidArgument("department id %.40q is not a UUID", id)
		}
		return u.String(), nil
	}
	var err error
	if in.DepartmentID != "" {
		if in.DepartmentID, err = norm(in.DepartmentID); err != nil {
			return in, err
		}
	}
	if len(in.Cooperating) > MaxJointDepartments {
		return in, structerr.NewInvalidArgument("%d cooperating departments, at most %d", len(in.Cooperating), MaxJointDepartments)
	}
	for i, id := range in.Cooperating {
		if in.Cooperating[i], err = norm(id); err != nil {
			return in, err
		}
	}
	tasks := make(map[string]string, len(in.Tasks))
	for id, task := range in.Tasks {
		k, err := norm(id)
		if err != nil {
			return in, err
		}
		task = strings.TrimSpace(task)
		if !utf8.ValidString(task) || strings.ContainsRune(task, 0) || utf8.RuneCountInString(task) > 1000 {
			return in, structerr.NewInvalidArgument("the task of department %s must be valid text of at most 1000 characters", k)
		}
		tasks[k] = task
	}
	in.Tasks = tasks
	return in, nil
}

// deptStep is one department step being taken: the case, its tasks, who
// acts, and the timeline entries it produces.
type deptStep struct {
	c       *Case
	tasks   []DepartmentTask
	actor   Actor
	staff   departments.Staff // for a department's own step
	in      DepartmentInput
	rid     string
	now     time.Time
	from    State
	entries []*TimelineEntry
}

func (s *deptStep) entry(id, note string, details map[string]any) {
	s.entries = append(s.entries, &TimelineEntry{ID: id, CaseID: s.c.ID, From: s.from, Note: note, Details: details, At: s.now})
}

// DepartmentStep takes department step a on a case for caller, in one
// transaction with its timeline entries, ledger records (naming the
// department and the person) and CaseEvents. requestID is the client's
// id for the step; repeating it returns the case without acting twice.
// Department staff see only cases their department has a part in, within
// the area it covers: anything else is NotFound.
func (t *Tracker) DepartmentStep(ctx context.Context, caller scope.Caller, caseID, requestID string, a Action, in DepartmentInput) (*Case, error) {
	if _, err := uuid.Parse(caseID); err != nil {
		return nil, structerr.NewInvalidArgument("case id %.40q is not a UUID", caseID)
	}
	rid, err := uuid.Parse(requestID)
	if err != nil {
		return nil, structerr.NewInvalidArgument("request id %.40q is not a UUID: generate one per step on the device", requestID)
	}
	rule, ok := DepartmentRule(a)
	if !ok {
		return nil, structerr.NewInvalidArgument("unknown department step %.40q", a)
	}
	if in, err = checkDepartmentInput(in); err != nil {
		return nil, err
	}
	var out *Case
	err = database.InTx(ctx, t.pool, func(tx pgx.Tx) error {
		c, err := getCase(ctx, tx, caseID, true)
		if structerr.Code(err) == codes.NotFound {
			return structerr.NewNotFound("case %s not found", caseID)
		}
		if err != nil {
			return err
		}
		tasks, err := loadTasks(ctx, tx, c.ID)
		if err != nil {
			return err
		}
		now := t.now().UTC().Truncate(time.Microsecond)
		s := &deptStep{c: c, tasks: tasks, in: in, rid: rid.String(), now: now, from: c.State}
		if err := t.authorizeDepartmentStep(ctx, tx, caller, s, rule); err != nil {
			return err
		}
		prevCase, prevAction, replay, err := findTransition(ctx, tx, s.rid)
		if err != nil {
			return err
		}
		if replay {
			if prevCase != c.ID || prevAction != a {
				return structerr.NewAlreadyExists("request id %s was already used for another step", rid)
			}
			out = c
			return nil
		}
		if !slices.Contains(rule.From, c.State) {
			return structerr.NewFailedPrecondition("cannot %s while the case is %s; %s", rule.What, c.State, nextStepsText(c))
		}
		if err := t.checkDepartmentRole(caller, s, rule); err != nil {
			return err
		}
		if err := departmentEffects[a](ctx, tx, s); err != nil {
			return err
		}
		if rule.To != "" {
			c.State = rule.To
		}
		c.UpdatedAt = now
		if err := updateCase(ctx, tx, c); err != nil {
			return err
		}
		for _, e := range s.entries {
			e.Action, e.To = a, c.State
			if err := t.record(ctx, tx, c, e, s.actor, rule.Event); err != nil {
				return err
			}
		}
		out = c
		return nil
	})
	return out, err
}

// authorizeDepartmentStep decides whether the case exists for caller: a
// township step needs a grant covering the case; a department's step
// needs membership of a department that covers the case and has a part in
// it. Anything else is NotFound, before the state is even looked at.
func (t *Tracker) authorizeDepartmentStep(ctx context.Context, tx pgx.Tx, caller scope.Caller, s *deptStep, rule DepartmentTransition) error {
	if rule.By == byTownship {
		if !Visible(caller, s.c) {
			return structerr.NewNotFound("case %s not found", s.c.ID)
		}
		return nil
	}
	if s.in.DepartmentID == "" {
		return structerr.NewInvalidArgument("say which department you act for")
	}
	staff, err := departments.Reach(ctx, tx, s.in.DepartmentID, caller.PersonID, s.c.NodeCode, s.now)
	if err != nil {
		if structerr.Code(err) == codes.NotFound {
			return structerr.NewNotFound("case %s not found", s.c.ID)
		}
		return err
	}
	if !slices.ContainsFunc(s.tasks, func(tk DepartmentTask) bool { return tk.DepartmentID == staff.Department.ID }) {
		return structerr.NewNotFound("case %s not found", s.c.ID)
	}
	s.staff = staff
	s.actor = Actor{PersonID: caller.PersonID, Role: "department_" + staff.Role, NodeCode: staff.NodeCode}
	return nil
}

// checkDepartmentRole checks who may take the step among those who see the case.
func (t *Tracker) checkDepartmentRole(caller scope.Caller, s *deptStep, rule DepartmentTransition) error {
	dept := s.staff.Department.ID
	switch rule.By {
	case byTownship:
		g, ok := caller.GrantFor(s.c.NodeCode, rule.Roles...)
		if !ok {
			return structerr.NewPermissionDenied("only %s covering %s may %s", rolesText(rule.Roles), s.c.NodeCode, rule.What)
		}
		s.actor = Actor{PersonID: caller.PersonID, Role: string(g.Role), NodeCode: g.NodeCode}
	case byTransferDepartment:
		if _, ok := findTask(s.tasks, dept, taskTransfer, taskPending); !ok {
			return structerr.NewPermissionDenied("only the department the case was transferred to may %s", rule.What)
		}
	case byTaskDepartment:
		if _, ok := findTask(s.tasks, dept, taskJoint, taskOpen); !ok {
			return structerr.NewFailedPrecondition("%s has no open joint task on this case", s.staff.Department.NameZh)
		}
	case byLeadDepartment:
		if lt, ok := leadTask(s.tasks); !ok || lt.DepartmentID != dept {
			return structerr.NewPermissionDenied("only the lead department may %s", rule.What)
		}
	}
	return nil
}

var departmentEffects = map[Action]func(ctx context.Context, tx pgx.Tx, s *deptStep) error{
	ActionTransfer:         transfer,
	ActionAcceptTransfer:   acceptTransfer,
	ActionRefuseTransfer:   refuseTransfer,
	ActionOpenJoint:        openJoint,
	ActionCompleteJoint:    completeJoint,
	ActionDepartmentVerify: departmentVerify,
}

// departmentFor reads a department the township names for the case: it
// must be of the case's county and cover the case's grid node.
func departmentFor(ctx context.Context, tx pgx.Tx, c *Case, id string, at time.Time) (departments.Department, error) {
	d, err := departments.Get(ctx, tx, id)
	if err != nil {
		return d, err
	}
	if d.CountyCode != c.CountyCode {
		return d, structerr.NewNotFound("department %s not found", id)
	}
	root, err := departments.Covers(ctx, tx, d.ID, c.NodeCode, at)
	if err != nil {
		return d, err
	}
	if root == "" {
		return d, structerr.NewFailedPrecondition("%s does not cover %s, where the case is", d.NameZh, c.NodeCode)
	}
	return d, nil
}

func transfer(ctx context.Context, tx pgx.Tx, s *deptStep) error {
	id, routed := s.in.DepartmentID, false
	if id == "" {
		r, ok, err := departments.RouteFor(ctx, tx, s.c.CountyCode, s.c.Category, "")
		if err != nil {
			return err
		}
		if !ok {
			return structerr.NewFailedPrecondition("county %s routes %s cases to no department: name the department", s.c.CountyCode, s.c.Category)
		}
		id, routed = r.LeadDepartmentID, true
	}
	d, err := departmentFor(ctx, tx, s.c, id, s.now)
	if err != nil {
		return err
	}
	if _, ok := findTask(s.tasks, d.ID, taskTransfer, taskRefused); ok && s.in.Note == "" {
		return structerr.NewInvalidArgument("%s refused this case before: say why it is transferred there again", d.NameZh)
	}
	if err := insertTask(ctx, tx, DepartmentTask{ID: s.rid, CaseID: s.c.ID, DepartmentID: d.ID, Kind: taskTransfer, Lead: true,
		State: taskPending, OpenedBy: s.actor.PersonID, CreatedAt: s.now}); err != nil {
		return err
	}
	n := 1
	for _, t := range s.tasks {
		if t.Kind == taskTransfer {
			n++
		}
	}
	details := departmentDetails(d)
	details["routed"] = routed
	details["transfer_number"] = n
	s.c.SupervisorID = s.actor.PersonID
	s.entry(s.rid, s.in.Note, details)
	return nil
}

func (s *deptStep) staffDetails() map[string]any {
	d := departmentDetails(s.staff.Department)
	d["person_id"] = s.actor.PersonID
	return d
}

func acceptTransfer(ctx context.Context, tx pgx.Tx, s *deptStep) error {
	i, _ := findTask(s.tasks, s.staff.Department.ID, taskTransfer, taskPending)
	tk := s.tasks[i]
	tk.State, tk.DecidedBy, tk.UpdatedAt = taskAccepted, s.actor.PersonID, s.now
	if err := updateTask(ctx, tx, tk); err != nil {
		return err
	}
	// The department's deadline rule, where the county routes the category to it.
	rule, err := deadlineRule(ctx, tx, s.c.CountyCode, s.c.Severity)
	if err != nil {
		return err
	}
	if r, ok, err := departments.RouteFor(ctx, tx, s.c.CountyCode, s.c.Category, ""); err != nil {
		return err
	} else if ok && r.LeadDepartmentID == tk.DepartmentID {
		rule = DeadlineRule{Severity: s.c.Severity, RectifyDays: r.DeadlineDays, MaxDays: max(r.DeadlineDays, rule.MaxDays)}
	}
	dl := rule.Deadline(s.now)
	s.c.DispatchedAt, s.c.Deadline = &s.now, &dl
	details := s.staffDetails()
	details["deadline"] = dl
	s.entry(s.rid, s.in.Note, details)
	return nil
}

func refuseTransfer(ctx context.Context, tx pgx.Tx, s *deptStep) error {
	if s.in.Note == "" {
		return structerr.NewInvalidArgument("a reason for refusing the case is required")
	}
	i, _ := findTask(s.tasks, s.staff.Department.ID, taskTransfer, taskPending)
	tk := s.tasks[i]
	tk.State, tk.Reason, tk.DecidedBy, tk.UpdatedAt = taskRefused, s.in.Note, s.actor.PersonID, s.now
	if err := updateTask(ctx, tx, tk); err != nil {
		return err
	}
	details := s.staffDetails()
	details["next_step"] = string(ActionTransfer)
	s.entry(s.rid, s.in.Note, details)
	return nil
}

func openJoint(ctx context.Context, tx pgx.Tx, s *deptStep) error {
	if slices.ContainsFunc(s.tasks, func(t DepartmentTask) bool { return t.Kind == taskJoint && t.State == taskOpen }) {
		return structerr.NewFailedPrecondition("joint handling of this case is already open")
	}
	var holder string
	if lt, ok := leadTask(s.tasks); ok && s.c.State == StateDepartmentHandling {
		holder = lt.DepartmentID
	}
	lead, coop := s.in.DepartmentID, s.in.Cooperating
	if lead == "" || len(coop) == 0 {
		r, ok, err := departments.RouteFor(ctx, tx, s.c.CountyCode, s.c.Category, "")
		if err != nil {
			return err
		}
		if lead == "" {
			lead = holder
		}
		if ok && lead == "" {
			lead = r.LeadDepartmentID
		}
		if ok && len(coop) == 0 {
			coop = slices.DeleteFunc(slices.Clone(r.Cooperating), func(id string) bool { return id == lead })
		}
	}
	if lead == "" {
		return structerr.NewInvalidArgument("name the lead department of the joint handling")
	}
	if holder != "" && lead != holder {
		return structerr.NewInvalidArgument("the department handling the case leads its joint handling")
	}
	ids := append([]string{lead}, coop...)
	if len(ids) < 2 {
		return structerr.NewInvalidArgument("joint handling needs at least two departments")
	}
	for i, id := range ids {
		if slices.Contains(ids[:i], id) {
			return structerr.NewInvalidArgument("department %s is named twice", id)
		}
	}
	if s.c.Deadline == nil {
		rule, err := deadlineRule(ctx, tx, s.c.CountyCode, s.c.Severity)
		if err != nil {
			return err
		}
		dl := rule.Deadline(s.now)
		s.c.DispatchedAt, s.c.Deadline = &s.now, &dl
	}
	s.c.SupervisorID = s.actor.PersonID
	for i, id := range ids {
		d, err := departmentFor(ctx, tx, s.c, id, s.now)
		if err != nil {
			return err
		}
		task := s.in.Tasks[d.ID]
		if task == "" {
			task = "cooperate in the joint handling (配合联合执法)"
			if i == 0 {
				task = "lead the joint handling (牵头联合执法)"
			}
		}
		eid := s.rid
		if i > 0 {
			eid = uuid.NewSHA1(uuid.MustParse(s.rid), []byte("joint:"+d.ID)).String()
		}
		if err := insertTask(ctx, tx, DepartmentTask{ID: eid, CaseID: s.c.ID, DepartmentID: d.ID, Kind: taskJoint, Lead: i == 0,
			State: taskOpen, Task: task, OpenedBy: s.actor.PersonID, CreatedAt: s.now}); err != nil {
			return err
		}
		details := departmentDetails(d)
		details["lead"] = i == 0
		details["task"] = task
		details["joint_departments"] = len(ids)
		s.entry(eid, s.in.Note, details)
	}
	return nil
}

func completeJoint(ctx context.Context, tx pgx.Tx, s *deptStep) error {
	if s.in.Note == "" {
		return structerr.NewInvalidArgument("a description of what the department did is required")
	}
	if len(s.in.Photos) == 0 {
		return structerr.NewInvalidArgument("at least one photo of the department's evidence is required")
	}
	photos := normalizePhotos(s.in.Photos)
	if err := field.LinkEvidence(ctx, tx, field.Evidence{CaseID: s.c.ID, CountyCode: s.c.CountyCode, NodeCode: s.c.NodeCode,
		SubmittedBy: s.actor.PersonID, PhotoSHA256: photos}); err != nil {
		return err
	}
	i, _ := findTask(s.tasks, s.staff.Department.ID, taskJoint, taskOpen)
	tk := s.tasks[i]
	tk.State, tk.EvidenceNote, tk.Evidence, tk.DecidedBy, tk.UpdatedAt = taskDone, s.in.Note, photos, s.actor.PersonID, s.now
	if err := updateTask(ctx, tx, tk); err != nil {
		return err
	}
	details := s.staffDetails()
	details["task_id"] = tk.ID
	details["photos"] = photos
	s.entry(s.rid, s.in.Note, details)
	return nil
}

func departmentVerify(ctx context.Context, tx pgx.Tx, s *deptStep) error {
	if s.in.Note == "" {
		return structerr.NewInvalidArgument("a note on what was verified is required")
	}
	var waiting []string
	for _, t := range s.tasks {
		if t.Kind == taskJoint && t.State == taskOpen {
			d, err := departments.Get(ctx, tx, t.DepartmentID)
			if err != nil {
				return err
			}
			waiting = append(waiting, d.NameZh)
		}
	}
	if len(waiting) > 0 {
		return structerr.NewFailedPrecondition("joint tasks are still open for %s: the case closes when every joint task is done", strings.Join(waiting, ", "))
	}
	s.c.VerifiedBy, s.c.VerifiedAt, s.c.ClosedAt = s.actor.PersonID, &s.now, &s.now
	s.entry(s.rid, s.in.Note, s.staffDetails())
	return nil
}

// DepartmentCase is a case as a department's staff see it, with the
// department tasks of every department on it.
type DepartmentCase struct {
	Case  *Case
	Tasks []DepartmentTask
}

// DepartmentQueue lists the cases in which the department has a pending
// transfer, an accepted transfer or an open joint task, for a member of
// it, within the area it covers. Not a member: NotFound.
func (t *Tracker) DepartmentQueue(ctx context.Context, caller scope.Caller, departmentID string) ([]DepartmentCase, error) {
	now := t.now()
	if _, err := uuid.Parse(departmentID); err != nil {
		return nil, structerr.NewInvalidArgument("department id %.40q is not a UUID", departmentID)
	}
	if _, ok, err := departments.MembershipAt(ctx, t.pool, departmentID, caller.PersonID, now); err != nil || !ok {
		if err != nil {
			return nil, err
		}
		return nil, structerr.NewNotFound("department %s not found", departmentID)
	}
	rows, err := t.pool.Query(ctx, `SELECT DISTINCT t.case_id::text FROM cases.department_tasks t
		JOIN cases.cases c ON c.id = t.case_id
		WHERE t.department_id = $1 AND t.state IN ('pending', 'accepted', 'open') AND c.state NOT IN ('closed', 'rejected')`, departmentID)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	var out []DepartmentCase
	for _, id := range ids {
		dc, err := t.DepartmentCaseFor(ctx, caller, departmentID, id)
		if structerr.Code(err) == codes.NotFound {
			continue // outside the area the department covers now
		}
		if err != nil {
			return nil, err
		}
		out = append(out, dc)
	}
	return out, nil
}

// DepartmentCaseFor reads a case for a member of a department that has a
// part in it and covers it; anything else is NotFound.
func (t *Tracker) DepartmentCaseFor(ctx context.Context, caller scope.Caller, departmentID, caseID string) (DepartmentCase, error) {
	notFound := structerr.NewNotFound("case %s not found", caseID)
	if _, err := uuid.Parse(caseID); err != nil {
		return DepartmentCase{}, notFound
	}
	c, err := getCase(ctx, t.pool, caseID, false)
	if err != nil {
		return DepartmentCase{}, err
	}
	if _, err := departments.Reach(ctx, t.pool, departmentID, caller.PersonID, c.NodeCode, t.now()); err != nil {
		if structerr.Code(err) == codes.NotFound {
			return DepartmentCase{}, notFound
		}
		return DepartmentCase{}, err
	}
	tasks, err := loadTasks(ctx, t.pool, c.ID)
	if err != nil {
		return DepartmentCase{}, err
	}
	if !slices.ContainsFunc(tasks, func(tk DepartmentTask) bool { return tk.DepartmentID == departmentID }) {
		return DepartmentCase{}, notFound
	}
	return DepartmentCase{Case: c, Tasks: tasks}, nil
}
