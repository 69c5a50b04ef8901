package cases

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/departments"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// deptWorld is the county's departments for the case tests: 城管 covers
// both townships, 水利 and 生态环境 the county, 林业 only the other township.
type deptWorld struct {
	urban, water, eco, forest departments.Department
	// staff of each department (no grid grant at all).
	urbanStaff, waterStaff, ecoStaff, forestStaff scope.Caller
}

func newDeptWorld(t *testing.T, d *caseDB) deptWorld {
	t.Helper()
	ctx := context.Background()
	from := time.Now().Add(-24 * time.Hour)
	mk := func(code, zh string, covers ...string) departments.Department {
		dep, err := departments.Create(ctx, d.pool, departments.Department{ID: uuid.NewString(), CountyCode: testCounty, Code: code, NameZh: zh})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range covers {
			if err := departments.Cover(ctx, d.pool, dep.ID, n, from); err != nil {
				t.Fatal(err)
			}
		}
		return dep
	}
	staff := func(dep departments.Department, name string) scope.Caller {
		id := uuid.NewString()
		if _, err := d.pool.Exec(ctx, `INSERT INTO people.persons (id, county_code, name) VALUES ($1, $2, $3)`, id, testCounty, name); err != nil {
			t.Fatal(err)
		}
		if _, err := departments.AddMember(ctx, d.pool, departments.Membership{ID: uuid.NewString(), DepartmentID: dep.ID,
			PersonID: id, Role: "staff", ValidFrom: from}); err != nil {
			t.Fatal(err)
		}
		return scope.Caller{PersonID: id}
	}
	w := deptWorld{
		urban:  mk("urban_management", "城管局", testTownship, "130123102"),
		water:  mk("water_resources", "水利局", testCounty),
		eco:    mk("ecology_environment", "生态环境分局", testCounty),
		forest: mk("forestry", "林业局", "130123102"),
	}
	w.urbanStaff, w.waterStaff = staff(w.urban, "孙城"), staff(w.water, "周水")
	w.ecoStaff, w.forestStaff = staff(w.eco, "吴环"), staff(w.forest, "郑林")
	if err := departments.SetRoute(ctx, d.pool, departments.Route{CountyCode: testCounty, Category: "illegal_sand_mining",
		LeadDepartmentID: w.water.ID, Cooperating: []string{w.eco.ID, w.urban.ID}, DeadlineDays: 5}); err != nil {
		t.Fatal(err)
	}
	return w
}

func (d *caseDB) deptStep(caller scope.Caller, caseID string, a Action, in DepartmentInput) (*Case, error) {
	return d.tracker.DepartmentStep(context.Background(), caller, caseID, uuid.NewString(), a, in)
}

func (d *caseDB) mustDeptStep(caller scope.Caller, caseID string, a Action, in DepartmentInput, want State) *Case {
	d.t.Helper()
	c, err := d.deptStep(caller, caseID, a, in)
	if err != nil {
		d.t.Fatalf("%s: %v", a, err)
	}
	if c.State != want {
		d.t.Fatalf("after %s: %s, want %s", a, c.State, want)
	}
	return c
}

type ledgerRow struct {
	action, actor string
	payload       map[string]any
}

func (d *caseDB) ledgerOf(caseID string) []ledgerRow {
	d.t.Helper()
	rows, err := d.pool.Query(context.Background(), `SELECT action, coalesce(actor_id::text, ''), payload FROM ledger.records
		WHERE subject_type = 'case' AND subject_id = $1 ORDER BY seq`, caseID)
	if err != nil {
		d.t.Fatal(err)
	}
	defer rows.Close()
	var out []ledgerRow
	for rows.Next() {
		var r ledgerRow
		var p []byte
		if err := rows.Scan(&r.action, &r.actor, &p); err != nil {
			d.t.Fatal(err)
		}
		if err := json.Unmarshal(p, &r.payload); err != nil {
			d.t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func sandMining() string { return "illegal_sand_mining" }

// A case transferred twice (refused by 城管, routed to 水利 who accepts) and
// handled jointly by three departments; the timeline and ledger are checked
// step by step, each naming the department and the person.
func TestCaseTransferredTwiceAndHandledJointlyByThreeDepartments(t *testing.T) {
	d := newCaseDB(t)
	w := newDeptWorld(t, d)
	ctx := context.Background()
	ev := violation(testVillage)
	ev.Category = sandMining()
	id := d.open(ev)
	if _, err := d.tracker.Transition(ctx, supervisor, id, uuid.NewString(), ActionAccept, Input{}); err != nil {
		t.Fatal(err)
	}
	// Department staff see nothing before the case is theirs.
	if _, err := d.tracker.DepartmentCaseFor(ctx, w.urbanStaff, w.urban.ID, id); structerr.Code(err) != codes.NotFound {
		t.Fatalf("urban staff before any transfer: %v", err)
	}
	// Field staff may not transfer.
	if _, err := d.deptStep(inspector, id, ActionTransfer, DepartmentInput{DepartmentID: w.urban.ID}); structerr.Code(err) != codes.PermissionDenied {
		t.Fatalf("inspector transferring: %v", err)
	}
	// Another township's supervisor does not see the case.
	if _, err := d.deptStep(otherSupervisor, id, ActionTransfer, DepartmentInput{DepartmentID: w.urban.ID}); structerr.Code(err) != codes.NotFound {
		t.Fatalf("other township transferring: %v", err)
	}
	// 林业 does not cover the village.
	if _, err := d.deptStep(supervisor, id, ActionTransfer, DepartmentInput{DepartmentID: w.forest.ID}); structerr.Code(err) != codes.FailedPrecondition {
		t.Fatalf("transfer to a department not covering the case: %v", err)
	}

	// 1. Transfer to 城管, who refuses.
	d.mustDeptStep(supervisor, id, ActionTransfer, DepartmentInput{DepartmentID: w.urban.ID, Note: "河道旁倾倒"}, StateTransferred)
	if _, err := d.deptStep(w.waterStaff, id, ActionAcceptTransfer, DepartmentInput{DepartmentID: w.water.ID}); structerr.Code(err) != codes.NotFound {
		t.Fatalf("another department accepting: %v", err)
	}
	if _, err := d.deptStep(w.waterStaff, id, ActionAcceptTransfer, DepartmentInput{DepartmentID: w.urban.ID}); structerr.Code(err) != codes.NotFound {
		t.Fatalf("acting for a department one is not a member of: %v", err)
	}
	if _, err := d.deptStep(w.urbanStaff, id, ActionRefuseTransfer, DepartmentInput{DepartmentID: w.urban.ID}); structerr.Code(err) != codes.InvalidArgument {
		t.Fatalf("refusal without reason: %v", err)
	}
	d.mustDeptStep(w.urbanStaff, id, ActionRefuseTransfer, DepartmentInput{DepartmentID: w.urban.ID, Note: "采砂属水利局职责"}, StateAccepted)

	// 2. Transfer by the county's route: 水利 leads sand mining; it accepts with its 5-day deadline.
	d.mustDeptStep(supervisor, id, ActionTransfer, DepartmentInput{}, StateTransferred)
	before := time.Now()
	c := d.mustDeptStep(w.waterStaff, id, ActionAcceptTransfer, DepartmentInput{DepartmentID: w.water.ID}, StateDepartmentHandling)
	if c.Deadline == nil || c.Deadline.Before(before.Add(5*24*time.Hour-time.Minute)) || c.Deadline.After(time.Now().Add(5*24*time.Hour)) {
		t.Fatalf("deadline after acceptance: %v", c.Deadline)
	}
	// 城管 refused: its part is over, its staff can still read the case (it had a part), not act.
	if _, err := d.deptStep(w.urbanStaff, id, ActionAcceptTransfer, DepartmentInput{DepartmentID: w.urban.ID}); structerr.Code(err) != codes.FailedPrecondition {
		t.Fatalf("refused department accepting later: %v", err)
	}

	// 3. Joint handling with the route's cooperating departments: 生态环境 and 城管.
	if _, err := d.deptStep(w.waterStaff, id, ActionOpenJoint, DepartmentInput{DepartmentID: w.water.ID}); structerr.Code(err) != codes.NotFound {
		t.Fatalf("department staff opening joint handling: %v", err)
	}
	d.mustDeptStep(supervisor, id, ActionOpenJoint, DepartmentInput{Note: "联合执法", Tasks: map[string]string{w.eco.ID: "取样监测"}}, StateDepartmentHandling)
	if _, err := d.deptStep(w.waterStaff, id, ActionDepartmentVerify, DepartmentInput{DepartmentID: w.water.ID, Note: "核查"}); structerr.Code(err) != codes.FailedPrecondition ||
		!strings.Contains(err.Error(), "生态环境分局") {
		t.Fatalf("verifying with joint tasks open: %v", err)
	}
	if _, err := d.deptStep(w.ecoStaff, id, ActionDepartmentVerify, DepartmentInput{DepartmentID: w.eco.ID, Note: "核查"}); structerr.Code(err) != codes.PermissionDenied {
		t.Fatalf("a cooperating department verifying: %v", err)
	}
	for _, s := range []struct {
		who  scope.Caller
		dept departments.Department
		sum  string
	}{{w.ecoStaff, w.eco, strings.Repeat("e", 64)}, {w.urbanStaff, w.urban, strings.Repeat("c", 64)}, {w.waterStaff, w.water, strings.Repeat("a", 64)}} {
		uploadPhoto(t, d.pool, s.who.PersonID, s.sum)
		if _, err := d.deptStep(s.who, id, ActionCompleteJoint, DepartmentInput{DepartmentID: s.dept.ID, Note: "完成"}); structerr.Code(err) != codes.InvalidArgument {
			t.Fatalf("%s completing without evidence: %v", s.dept.Code, err)
		}
		d.mustDeptStep(s.who, id, ActionCompleteJoint, DepartmentInput{DepartmentID: s.dept.ID, Note: s.dept.NameZh + "已完成", Photos: []string{s.sum}}, StateDepartmentHandling)
	}
	// 林业 never had a part, and does not cover the village.
	if _, err := d.tracker.DepartmentCaseFor(ctx, w.forestStaff, w.forest.ID, id); structerr.Code(err) != codes.NotFound {
		t.Fatalf("forestry reading: %v", err)
	}
	c = d.mustDeptStep(w.waterStaff, id, ActionDepartmentVerify, DepartmentInput{DepartmentID: w.water.ID, Note: "现场核查，已恢复河道"}, StateClosed)
	if c.ClosedAt == nil || c.VerifiedBy != w.waterStaff.PersonID {
		t.Fatalf("closed case: %+v", c)
	}

	// The timeline, step by step.
	tl, err := timeline(ctx, d.pool, id)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		action Action
		from   State
		to     State
		actor  string
		dept   string
	}
	wants := []want{
		{ActionCreate, "", StateReported, "", ""},
		{ActionAccept, StateReported, StateAccepted, supervisorID, ""},
		{ActionTransfer, StateAccepted, StateTransferred, supervisorID, w.urban.ID},
		{ActionRefuseTransfer, StateTransferred, StateAccepted, w.urbanStaff.PersonID, w.urban.ID},
		{ActionTransfer, StateAccepted, StateTransferred, supervisorID, w.water.ID},
		{ActionAcceptTransfer, StateTransferred, StateDepartmentHandling, w.waterStaff.PersonID, w.water.ID},
		{ActionOpenJoint, StateDepartmentHandling, StateDepartmentHandling, supervisorID, w.water.ID},
		{ActionOpenJoint, StateDepartmentHandling, StateDepartmentHandling, supervisorID, w.eco.ID},
		{ActionOpenJoint, StateDepartmentHandling, StateDepartmentHandling, supervisorID, w.urban.ID},
		{ActionCompleteJoint, StateDepartmentHandling, StateDepartmentHandling, w.ecoStaff.PersonID, w.eco.ID},
		{ActionCompleteJoint, StateDepartmentHandling, StateDepartmentHandling, w.urbanStaff.PersonID, w.urban.ID},
		{ActionCompleteJoint, StateDepartmentHandling, StateDepartmentHandling, w.waterStaff.PersonID, w.water.ID},
		{ActionDepartmentVerify, StateDepartmentHandling, StateClosed, w.waterStaff.PersonID, w.water.ID},
	}
	if len(tl) != len(wants) {
		for _, e := range tl {
			t.Logf("%s %s→%s by %s %v", e.Action, e.From, e.To, e.ActorID, e.Details)
		}
		t.Fatalf("%d timeline entries, want %d", len(tl), len(wants))
	}
	led := d.ledgerOf(id)
	if len(led) != len(wants) {
		t.Fatalf("%d ledger records, want %d", len(led), len(wants))
	}
	events := map[Action]string{ActionCreate: "opened", ActionAccept: "accepted", ActionTransfer: "transferred",
		ActionRefuseTransfer: "transfer_refused", ActionAcceptTransfer: "transfer_accepted", ActionOpenJoint: "joint_task_opened",
		ActionCompleteJoint: "joint_task_completed", ActionDepartmentVerify: "department_verified"}
	for i, wt := range wants {
		e := tl[i]
		if e.Action != wt.action || e.From != wt.from || e.To != wt.to || e.ActorID != wt.actor {
			t.Errorf("step %d: %s %s→%s by %s, want %+v", i, e.Action, e.From, e.To, e.ActorID, wt)
		}
		if wt.dept != "" && e.Details["department_id"] != wt.dept {
			t.Errorf("step %d (%s): department %v, want %s", i, e.Action, e.Details["department_id"], wt.dept)
		}
		r := led[i]
		if r.action != "case."+events[wt.action] || r.actor != wt.actor {
			t.Errorf("ledger %d: %s by %s, want case.%s by %s", i, r.action, r.actor, events[wt.action], wt.actor)
		}
		det, _ := r.payload["details"].(map[string]any)
		if wt.dept != "" && (det["department_id"] != wt.dept || det["department_name"] == "") {
			t.Errorf("ledger %d (%s) does not name the department: %v", i, r.action, r.payload)
		}
	}
	if tl[3].Note != "采砂属水利局职责" || tl[4].Details["routed"] != true || tl[4].Details["transfer_number"] != float64(2) {
		t.Errorf("refusal %q, second transfer %v", tl[3].Note, tl[4].Details)
	}
	if tl[5].ActorRole != "department_staff" {
		t.Errorf("acceptance recorded under role %q", tl[5].ActorRole)
	}
	if n := d.count(`SELECT count(*) FROM cases.department_tasks WHERE case_id = $1 AND kind = 'joint' AND state = 'done'`, id); n != 3 {
		t.Errorf("%d joint tasks done, want 3", n)
	}
	if n := d.count(`SELECT count(*) FROM field.case_evidence WHERE case_id = $1`, id); n != 3 {
		t.Errorf("%d evidence photos linked, want 3", n)
	}
}

// Department staff act only on their department's cases within its area.
func TestDepartmentStaffOutsideAreaOrDepartmentGetNotFound(t *testing.T) {
	d := newCaseDB(t)
	w := newDeptWorld(t, d)
	ctx := context.Background()
	// A case in the other township, transferred to 城管 (which covers it today).
	other := violation("130123102201")
	other.Category = sandMining()
	id := d.open(other)
	officerHere := officer
	if _, err := d.tracker.Transition(ctx, officerHere, id, uuid.NewString(), ActionAccept, Input{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.deptStep(officerHere, id, ActionTransfer, DepartmentInput{DepartmentID: w.urban.ID}); err != nil {
		t.Fatal(err)
	}
	q, err := d.tracker.DepartmentQueue(ctx, w.urbanStaff, w.urban.ID)
	if err != nil || len(q) != 1 || q[0].Case.ID != id {
		t.Fatalf("urban queue: %+v %v", q, err)
	}
	// Not in the department: its queue and its cases do not exist for them.
	if _, err := d.tracker.DepartmentQueue(ctx, w.waterStaff, w.urban.ID); structerr.Code(err) != codes.NotFound {
		t.Errorf("water staff reading urban's queue: %v", err)
	}
	if q, err := d.tracker.DepartmentQueue(ctx, w.waterStaff, w.water.ID); err != nil || len(q) != 0 {
		t.Errorf("water's own queue: %+v %v", q, err)
	}
	if _, err := d.deptStep(w.forestStaff, id, ActionAcceptTransfer, DepartmentInput{DepartmentID: w.forest.ID}); structerr.Code(err) != codes.NotFound {
		t.Errorf("forestry (covers the township, no part in the case): %v", err)
	}
	// The department stops covering the township: the case leaves its staff's reach.
	if err := departments.Uncover(ctx, d.pool, w.urban.ID, "130123102", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.deptStep(w.urbanStaff, id, ActionAcceptTransfer, DepartmentInput{DepartmentID: w.urban.ID}); structerr.Code(err) != codes.NotFound {
		t.Errorf("urban staff outside their area accepting: %v", err)
	}
	if _, err := d.tracker.DepartmentCaseFor(ctx, w.urbanStaff, w.urban.ID, id); structerr.Code(err) != codes.NotFound {
		t.Errorf("urban staff outside their area reading: %v", err)
	}
	if q, err := d.tracker.DepartmentQueue(ctx, w.urbanStaff, w.urban.ID); err != nil || len(q) != 0 {
		t.Errorf("urban queue after the area changed: %+v %v", q, err)
	}
	// A grid-only person is nobody in a department.
	if _, err := d.deptStep(inspector, id, ActionAcceptTransfer, DepartmentInput{DepartmentID: w.urban.ID}); structerr.Code(err) != codes.NotFound {
		t.Errorf("inspector acting for a department: %v", err)
	}
}

// Transfers follow the county's routing per category; a category routed
// nowhere needs the department named.
func TestTransferRoutesPerCategory(t *testing.T) {
	d := newCaseDB(t)
	w := newDeptWorld(t, d)
	ctx := context.Background()
	for _, r := range []departments.Route{
		{CountyCode: testCounty, Category: "illegal_dumping", LeadDepartmentID: w.urban.ID, DeadlineDays: 3},
		{CountyCode: testCounty, Category: "sewage_discharge", LeadDepartmentID: w.eco.ID, Cooperating: []string{w.water.ID}, DeadlineDays: 1},
	} {
		if err := departments.SetRoute(ctx, d.pool, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		category string
		lead     string
	}{{"illegal_dumping", w.urban.ID}, {"illegal_sand_mining", w.water.ID}, {"sewage_discharge", w.eco.ID}, {"open_burning", ""}} {
		ev := violation(testVillage)
		ev.Category = c.category
		id := d.open(ev)
		if _, err := d.tracker.Transition(ctx, supervisor, id, uuid.NewString(), ActionAccept, Input{}); err != nil {
			t.Fatal(err)
		}
		_, err := d.deptStep(supervisor, id, ActionTransfer, DepartmentInput{})
		if c.lead == "" {
			if structerr.Code(err) != codes.FailedPrecondition {
				t.Errorf("%s routed nowhere: %v", c.category, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.category, err)
		}
		tl, _ := timeline(ctx, d.pool, id)
		if got := tl[len(tl)-1].Details["department_id"]; got != c.lead {
			t.Errorf("%s routed to %v, want %s", c.category, got, c.lead)
		}
	}
}
