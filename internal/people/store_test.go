package people_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/ledger"
	"ecogrid/internal/people"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

func TestAssignmentLifecycle(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	g := peopletest.InsertGrid(t, pool)
	var handedOver []people.Handover
	st := people.NewStore(pool, dutyHandoverFunc(func(_ context.Context, _ pgx.Tx, h people.Handover) ([]people.HandoverCase, error) {
		handedOver = append(handedOver, h)
		return []people.HandoverCase{{CaseID: "case-1", NodeCode: h.NodeCode, Status: "dispatched"}}, nil
	}))
	officer := peopletest.AddMember(t, pool, g[peopletest.CountyA], scope.RoleCountyOfficer, "县网格办 王", "")
	actor := people.ActorFor(officer.Caller(), officer.Caller().Grants[0])

	p, created, err := st.CreatePerson(ctx, actor, people.Person{ID: uuid.NewString(), CountyCode: peopletest.CountyA, Name: "李网格", Phone: "13800000000", EmployeeCode: "E-17"})
	if err != nil || !created {
		t.Fatalf("CreatePerson = %v, %v", created, err)
	}
	// Replay is idempotent; a different person under the same id is refused.
	if again, created, err := st.CreatePerson(ctx, actor, p); err != nil || created || again.ID != p.ID {
		t.Fatalf("replayed CreatePerson = %+v, %v, %v; want the stored person, created=false", again, created, err)
	}
	other := p
	other.Name = "someone else"
	if _, _, err := st.CreatePerson(ctx, actor, other); structerr.Code(err) != codes.AlreadyExists {
		t.Fatalf("CreatePerson with a taken id = %v; want AlreadyExists", err)
	}
	dup := people.Person{ID: uuid.NewString(), CountyCode: peopletest.CountyA, Name: "another", EmployeeCode: "E-17"}
	if _, _, err := st.CreatePerson(ctx, actor, dup); structerr.Code(err) != codes.AlreadyExists {
		t.Fatalf("CreatePerson with a taken employee code = %v; want AlreadyExists", err)
	}

	start := people.NewAssignment{ID: uuid.NewString(), PersonID: p.ID, NodeID: g[peopletest.VillageA1a].ID, NodeCode: peopletest.VillageA1a,
		Role: scope.RoleInspector, Tasks: []string{"patrol twice a week", "river bank"}}
	a1, created, err := st.StartAssignment(ctx, actor, start)
	if err != nil || !created || a1.ValidTo != nil || a1.CountyCode != peopletest.CountyA {
		t.Fatalf("StartAssignment = %+v, %v, %v", a1, created, err)
	}
	if again, created, err := st.StartAssignment(ctx, actor, start); err != nil || created || again.ID != a1.ID {
		t.Fatalf("replayed StartAssignment = %v, %v; want stored, created=false", created, err)
	}
	dupOpen := start
	dupOpen.ID = uuid.NewString()
	if _, _, err := st.StartAssignment(ctx, actor, dupOpen); structerr.Code(err) != codes.AlreadyExists {
		t.Fatalf("second open assignment for the same person, node and role = %v; want AlreadyExists", err)
	}
	backdated := start
	backdated.ID, backdated.ValidFrom = uuid.NewString(), time.Now().Add(-48*time.Hour)
	if _, _, err := st.StartAssignment(ctx, actor, backdated); structerr.Code(err) != codes.InvalidArgument {
		t.Fatalf("assignment backdated two days = %v; want InvalidArgument", err)
	}
	grants, err := people.ActiveGrants(ctx, pool, p.ID, time.Now())
	if err != nil || len(grants) != 1 || grants[0].NodeCode != peopletest.VillageA1a || grants[0].Role != scope.RoleInspector {
		t.Fatalf("ActiveGrants = %+v, %v", grants, err)
	}

	chief := peopletest.AddMember(t, pool, g[peopletest.VillageA1a], scope.RoleGridChief, "村网格长 赵", "")
	sup := peopletest.AddMember(t, pool, g[peopletest.TownshipA1], scope.RoleTownshipSupervisor, "镇督导 孙", "")
	neighbour := peopletest.AddMember(t, pool, g[peopletest.VillageA1b], scope.RoleInspector, "邻村网格员", "")
	beforeTransfer := time.Now()
	time.Sleep(10 * time.Millisecond)

	// Transfer to the neighbouring village: one ends, one starts, same person.
	next := people.NewAssignment{ID: uuid.NewString(), NodeID: g[peopletest.VillageA1b].ID, NodeCode: peopletest.VillageA1b, Role: scope.RoleInspector}
	tr, err := st.Transfer(ctx, actor, a1.ID, next, "rotation", "")
	if err != nil {
		t.Fatalf("Transfer: %v", err)
	}
	// Unnamed, the successor is the township's supervisor.
	if len(tr.Handover) != 1 || tr.SuccessorID != sup.Person.ID || len(handedOver) != 1 ||
		handedOver[0].FromPersonID != p.ID || handedOver[0].ToPersonID != sup.Person.ID || handedOver[0].NodeCode != peopletest.VillageA1a {
		t.Fatalf("Transfer handover = %+v to %s (hook saw %+v); want one case to the supervisor", tr.Handover, tr.SuccessorID, handedOver)
	}
	if tr.Ended.ValidTo == nil || tr.Started.PersonID != p.ID || tr.Started.NodeCode != peopletest.VillageA1b || tr.Ended.EndReason != "rotation" {
		t.Fatalf("Transfer = %+v", tr)
	}
	if again, err := st.Transfer(ctx, actor, a1.ID, next, "rotation", ""); err != nil || again.Started.ID != tr.Started.ID {
		t.Fatalf("replayed Transfer = %+v, %v; want the same pair", again, err)
	}

	// Who was responsible for village A1a before the transfer, and now.
	then, err := people.ResponsibleAt(ctx, pool, peopletest.VillageA1a, beforeTransfer)
	if err != nil {
		t.Fatal(err)
	}
	want := []ledger.Responsible{
		{PersonID: chief.Person.ID, Name: "村网格长 赵", Role: "grid_chief", NodeCode: peopletest.VillageA1a},
		{PersonID: p.ID, Name: "李网格", Role: "inspector", NodeCode: peopletest.VillageA1a},
		{PersonID: sup.Person.ID, Name: "镇督导 孙", Role: "township_supervisor", NodeCode: peopletest.TownshipA1},
		{PersonID: officer.Person.ID, Name: "县网格办 王", Role: "county_officer", NodeCode: peopletest.CountyA},
	}
	if !slices.Equal(then, want) {
		t.Fatalf("ResponsibleAt(A1a, before transfer) =\n%+v\nwant\n%+v", then, want)
	}
	now, err := people.ResponsibleAt(ctx, pool, peopletest.VillageA1a, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(now, func(r ledger.Responsible) bool { return r.PersonID == p.ID }) || len(now) != 3 {
		t.Fatalf("ResponsibleAt(A1a, now) = %+v; the transferred inspector must be gone", now)
	}

	// Ending the last assignment hands over to the named successor.
	res, err := st.EndAssignment(ctx, actor, tr.Started.ID, "retired", neighbour.Person.ID)
	if err != nil || !res.LastOne || len(res.Handover) != 1 || res.SuccessorID != neighbour.Person.ID ||
		len(handedOver) != 2 || handedOver[1].ToPersonID != neighbour.Person.ID {
		t.Fatalf("EndAssignment = %+v, %v (lister saw %v); want last=true with the handover list", res, err, handedOver)
	}
	if grants, _ := people.ActiveGrants(ctx, pool, p.ID, time.Now()); len(grants) != 0 {
		t.Fatalf("grants after the end = %+v; want none", grants)
	}
	hist, err := people.History(ctx, pool, p.ID)
	if err != nil || len(hist) != 2 || hist[0].ID != a1.ID || hist[1].ID != tr.Started.ID || hist[1].ValidTo == nil {
		t.Fatalf("History = %+v, %v", hist, err)
	}

	// Every change has its ledger record, in one chain, by the actor.
	rows, err := pool.Query(ctx, `SELECT action, actor_role, coalesce(actor_id::text, '') FROM ledger.records
		WHERE subject_id = ANY($1) ORDER BY seq`, []string{p.ID, a1.ID, tr.Started.ID})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for rows.Next() {
		var action, role, actorID string
		if err := rows.Scan(&action, &role, &actorID); err != nil {
			t.Fatal(err)
		}
		if role != "county_officer" || actorID != officer.Person.ID {
			t.Errorf("record %s by %s/%s; want the county officer", action, role, actorID)
		}
		actions = append(actions, action)
	}
	wantActions := []string{"person.created", "assignment.started", "assignment.transferred", "assignment.started", "assignment.handover", "assignment.ended", "assignment.handover"}
	if !slices.Equal(actions, wantActions) {
		t.Fatalf("ledger actions = %v; want %v", actions, wantActions)
	}
	var people_ int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM ledger.record_people WHERE person_id = $1 AND NOT as_actor`, p.ID).Scan(&people_); err != nil || people_ != 6 {
		t.Fatalf("ledger records naming the person = %d, %v; want 6 (their three assignment acts, the end and two handovers)", people_, err)
	}
}

func TestAssignmentsAreKeptForLife(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	g := peopletest.InsertGrid(t, pool)
	m := peopletest.AddMember(t, pool, g[peopletest.VillageA1a], scope.RoleInspector, "网格员", "")
	for _, q := range []string{
		`DELETE FROM people.assignments WHERE id = $1`,
		`UPDATE people.assignments SET node_code = '130123101202' WHERE id = $1`,
		`UPDATE people.assignments SET valid_from = valid_from - interval '1 day' WHERE id = $1`,
		`DELETE FROM people.persons WHERE id = (SELECT person_id FROM people.assignments WHERE id = $1)`,
	} {
		if _, err := pool.Exec(ctx, q, m.Assignment.ID); structerr.Code(err) != codes.FailedPrecondition {
			t.Errorf("%s = %v; want refused by the database", q, err)
		}
	}
	if _, err := pool.Exec(ctx, `UPDATE people.assignments SET valid_to = now() WHERE id = $1`, m.Assignment.ID); err != nil {
		t.Fatalf("ending by UPDATE valid_to: %v", err)
	}
	if _, err := pool.Exec(ctx, `UPDATE people.assignments SET valid_to = now() + interval '1 day' WHERE id = $1`, m.Assignment.ID); structerr.Code(err) != codes.FailedPrecondition {
		t.Fatalf("re-ending an ended assignment = %v; want refused", err)
	}
}

func TestChangeAndRecordCommitTogether(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	g := peopletest.InsertGrid(t, pool)
	st := people.NewStore(pool, nil)
	m := peopletest.AddMember(t, pool, g[peopletest.VillageA1a], scope.RoleInspector, "网格员", "")
	// An actor id that is not a UUID makes the ledger refuse the record:
	// the assignment must not start either.
	bad := people.Actor{PersonID: "not-a-uuid", Role: "county_officer"}
	id := uuid.NewString()
	_, _, err := st.StartAssignment(ctx, bad, people.NewAssignment{ID: id, PersonID: m.Person.ID, NodeID: g[peopletest.VillageA1b].ID, NodeCode: peopletest.VillageA1b, Role: scope.RoleInspector})
	if err == nil {
		t.Fatal("StartAssignment with an unrecordable actor succeeded")
	}
	if _, err := people.GetAssignment(ctx, pool, id); !errors.Is(err, people.ErrAssignmentNotFound) {
		t.Fatalf("assignment after a failed record: %v; want it rolled back", err)
	}
}

func TestAssignerGrant(t *testing.T) {
	c := func(role scope.Role, code string) scope.Caller {
		return scope.Caller{Grants: []scope.Grant{{Role: role, NodeCode: code}}}
	}
	for _, tc := range []struct {
		caller scope.Caller
		role   scope.Role
		code   string
		ok     bool
	}{
		{c(scope.RoleTownshipSupervisor, peopletest.TownshipA1), scope.RoleInspector, peopletest.VillageA1a, true},
		{c(scope.RoleTownshipSupervisor, peopletest.TownshipA1), scope.RoleGridChief, peopletest.TownshipA1, true},
		{c(scope.RoleTownshipSupervisor, peopletest.TownshipA1), scope.RoleInspector, peopletest.VillageA2a, false},
		{c(scope.RoleTownshipSupervisor, peopletest.TownshipA1), scope.RoleTownshipSupervisor, peopletest.TownshipA1, false},
		{c(scope.RoleCountyOfficer, peopletest.CountyA), scope.RoleTownshipSupervisor, peopletest.TownshipA2, true},
		{c(scope.RoleCountyOfficer, peopletest.CountyA), scope.RoleAdmin, peopletest.CountyA, false},
		{c(scope.RoleCountyOfficer, peopletest.CountyA), scope.RoleInspector, peopletest.VillageB1a, false},
		{c(scope.RoleInspector, peopletest.VillageA1a), scope.RoleInspector, peopletest.VillageA1a, false},
		{c(scope.RoleGridChief, peopletest.VillageA1a), scope.RoleInspector, peopletest.VillageA1a, false},
		{c(scope.RoleAdmin, peopletest.CountyA), scope.RoleCountyOfficer, peopletest.CountyB, true},
	} {
		if _, ok := people.AssignerGrant(tc.caller, tc.role, tc.code); ok != tc.ok {
			t.Errorf("%s at %s assigning %s at %s: ok=%v, want %v", tc.caller.Grants[0].Role, tc.caller.Grants[0].NodeCode, tc.role, tc.code, ok, tc.ok)
		}
	}
}

func TestListPersonsPages(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	g := peopletest.InsertGrid(t, pool)
	sup := peopletest.AddMember(t, pool, g[peopletest.TownshipA1], scope.RoleTownshipSupervisor, "督导", "")
	var want []string
	for _, name := range []string{"甲", "乙", "丙", "丁", "戊"} {
		m := peopletest.AddMember(t, pool, g[peopletest.VillageA1b], scope.RoleInspector, "网格员"+name, "")
		want = append(want, m.Person.ID)
	}
	_ = peopletest.AddMember(t, pool, g[peopletest.VillageA2a], scope.RoleInspector, "网格员 outside", "")
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		ps, next, err := people.ListPersons(ctx, pool, sup.Caller(), people.PersonFilter{NodeCode: peopletest.VillageA1b, PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) > 2 || pages > 5 {
			t.Fatalf("page %d has %d persons", pages, len(ps))
		}
		for _, p := range ps {
			got = append(got, p.ID)
		}
		if next == "" {
			break
		}
		token = next
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("paged ListPersons = %v; want %v", got, want)
	}
	if ps, _, err := people.ListPersons(ctx, pool, sup.Caller(), people.PersonFilter{NameContains: "outside"}); err != nil || len(ps) != 0 {
		t.Fatalf("name search outside the township = %d persons, %v; want none", len(ps), err)
	}
	if _, _, err := people.ListPersons(ctx, pool, sup.Caller(), people.PersonFilter{PageToken: "garbage!"}); structerr.Code(err) != codes.InvalidArgument {
		t.Fatalf("bad page token = %v; want InvalidArgument", err)
	}
}

func TestInspectorsUnder(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	g := peopletest.InsertGrid(t, pool)
	a := peopletest.AddMember(t, pool, g[peopletest.VillageA1a], scope.RoleInspector, "a", "")
	b := peopletest.AddMember(t, pool, g[peopletest.VillageA1b], scope.RoleInspector, "b", "")
	_ = peopletest.AddMember(t, pool, g[peopletest.VillageA2a], scope.RoleInspector, "other township", "")
	_ = peopletest.AddMember(t, pool, g[peopletest.VillageA1a], scope.RoleGridChief, "chief", "")
	ended := peopletest.AddMember(t, pool, g[peopletest.VillageA1b], scope.RoleInspector, "gone", "")
	before := time.Now()
	if _, err := people.NewStore(pool, nil).EndAssignment(ctx, people.SystemActor, ended.Assignment.ID, "left", ""); err != nil {
		t.Fatal(err)
	}
	got, err := people.InspectorsUnder(ctx, pool, peopletest.TownshipA1, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range got {
		ids = append(ids, x.PersonID)
	}
	if !slices.Equal(ids, []string{a.Person.ID, b.Person.ID}) {
		t.Fatalf("InspectorsUnder(A1, now) = %v; want [a b]", ids)
	}
	got, err = people.InspectorsUnder(ctx, pool, peopletest.TownshipA1, before)
	if err != nil || len(got) != 3 {
		t.Fatalf("InspectorsUnder(A1, before the end) = %d, %v; want 3 (the ended one included)", len(got), err)
	}
}

func TestUpdatePerson(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	g := peopletest.InsertGrid(t, pool)
	st := people.NewStore(pool, nil)
	m := peopletest.AddMember(t, pool, g[peopletest.VillageA1a], scope.RoleInspector, "旧名", "")
	other := peopletest.AddMember(t, pool, g[peopletest.VillageA1b], scope.RoleInspector, "other", "")
	code := "E-1"
	if _, err := st.UpdatePerson(ctx, people.SystemActor, other.Person.ID, people.PersonChanges{EmployeeCode: &code}); err != nil {
		t.Fatal(err)
	}
	name, phone := "新名", "13912345678"
	p, err := st.UpdatePerson(ctx, people.SystemActor, m.Person.ID, people.PersonChanges{Name: &name, Phone: &phone})
	if err != nil || p.Name != name || p.Phone != phone || p.ID != m.Person.ID {
		t.Fatalf("UpdatePerson = %+v, %v", p, err)
	}
	if _, err := st.UpdatePerson(ctx, people.SystemActor, m.Person.ID, people.PersonChanges{EmployeeCode: &code}); structerr.Code(err) != codes.AlreadyExists {
		t.Fatalf("taking another person's employee code = %v; want AlreadyExists", err)
	}
	empty := " "
	if _, err := st.UpdatePerson(ctx, people.SystemActor, m.Person.ID, people.PersonChanges{Name: &empty}); structerr.Code(err) != codes.InvalidArgument {
		t.Fatalf("blank name = %v; want InvalidArgument", err)
	}
	var payload string
	if err := pool.QueryRow(ctx, `SELECT convert_from(payload, 'UTF8') FROM ledger.records WHERE action = 'person.updated' AND subject_id = $1`,
		m.Person.ID).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(payload, phone) || !strings.Contains(payload, "新名") || !strings.Contains(payload, "phone_changed") {
		t.Fatalf("ledger payload %s: want the new name and that the phone changed, never the number", payload)
	}
}

// dutyHandoverFunc is a DutyHandover for tests of people alone, which have
// no cases; the real one (cases.Tracker) is exercised in handover_test.go.
type dutyHandoverFunc func(ctx context.Context, tx pgx.Tx, h people.Handover) ([]people.HandoverCase, error)

func (f dutyHandoverFunc) HandOver(ctx context.Context, tx pgx.Tx, h people.Handover) ([]people.HandoverCase, error) {
	return f(ctx, tx, h)
}
