package cases

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

type caseDB struct {
	t       *testing.T
	pool    *pgxpool.Pool
	tracker *Tracker
	svc     *Service
}

func newCaseDB(t *testing.T) *caseDB {
	pool := dbtest.NewPool(t)
	tr := NewTracker(pool, nil)
	addPerson(t, pool, handlerID, "Zhao Lei", scope.RoleInspector, testVillage)
	return &caseDB{t: t, pool: pool, tracker: tr, svc: NewService(tr, nil)}
}

func (d *caseDB) open(ev *eventsv1.ViolationReported) string {
	d.t.Helper()
	if err := recordReport(context.Background(), d.pool, ev); err != nil {
		d.t.Fatal(err)
	}
	out, err := d.tracker.OpenFromViolation(context.Background(), ev, Source{Subject: "test", Kind: "jetstream"})
	if err != nil || !out.Created {
		d.t.Fatalf("opening case: %+v %v", out, err)
	}
	return out.CaseID
}

func (d *caseDB) count(sql string, args ...any) int {
	d.t.Helper()
	var n int
	if err := d.pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		d.t.Fatal(err)
	}
	return n
}

// handler is the inspector of the test village cases are dispatched to.
var handler = scope.Caller{PersonID: handlerID, Grants: []scope.Grant{{Role: scope.RoleInspector, NodeCode: testVillage}}}

// uploadPhoto stands in for field having received a photo from person.
func uploadPhoto(t testing.TB, pool *pgxpool.Pool, person, sum string) {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO field.photos (sha256, size, content_type, width, height, uploaded_by)
		VALUES ($1, 1000, 'image/jpeg', 640, 480, $2) ON CONFLICT DO NOTHING`, sum, person); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO field.uploads (id, uploader_id, sha256, size, content_type, committed_offset, completed_at)
		VALUES ($1, $2, $3, 1000, 'image/jpeg', 1000, now())`, uuid.New(), person, sum); err != nil {
		t.Fatal(err)
	}
}

func as(c scope.Caller) context.Context { return scope.NewContext(context.Background(), c) }

func code(err error) codes.Code { return status.Code(structerr.ToStatus(err)) }

func TestServiceWalksTheWholeWorkflow(t *testing.T) {
	t.Parallel()
	d := newCaseDB(t)
	id := d.open(violation(testVillage))
	photo := strings.Repeat("0f", 32)
	uploadPhoto(t, d.pool, handlerID, photo)
	req := func() string { return uuid.NewString() }

	acc, err := d.svc.AcceptCase(as(supervisor), &ecogridv1.AcceptCaseRequest{CaseId: id, RequestId: req()})
	if err != nil || acc.Case.State != ecogridv1.CaseState_CASE_STATE_ACCEPTED || acc.Case.SupervisorId != supervisorID {
		t.Fatalf("accept: %v %v", acc, err)
	}
	dispatchID := req()
	dis, err := d.svc.DispatchCase(as(supervisor), &ecogridv1.DispatchCaseRequest{CaseId: id, RequestId: dispatchID, HandlerId: handlerID})
	if err != nil || dis.Case.State != ecogridv1.CaseState_CASE_STATE_DISPATCHED || dis.Case.Deadline == nil {
		t.Fatalf("dispatch: %v %v", dis, err)
	}
	if got := dis.Case.Deadline.AsTime().Sub(dis.Case.DispatchedAt.AsTime()); got != 72*time.Hour {
		t.Fatalf("normal case deadline %v after dispatch, want 3 days", got)
	}
	// Replaying the dispatch returns the case without a second step.
	again, err := d.svc.DispatchCase(as(supervisor), &ecogridv1.DispatchCaseRequest{CaseId: id, RequestId: dispatchID, HandlerId: handlerID})
	if err != nil || again.Case.State != ecogridv1.CaseState_CASE_STATE_DISPATCHED {
		t.Fatalf("replayed dispatch: %v", err)
	}
	if _, err := d.svc.StartWork(as(inspector), &ecogridv1.StartWorkRequest{CaseId: id, RequestId: dispatchID}); code(err) != codes.AlreadyExists {
		t.Fatalf("request id reused for another step: %v", err)
	}
	steps := []func() error{
		func() error {
			_, err := d.svc.StartWork(as(handler), &ecogridv1.StartWorkRequest{CaseId: id, RequestId: req()})
			return err
		},
		func() error {
			_, err := d.svc.RequestExtension(as(handler), &ecogridv1.RequestExtensionRequest{CaseId: id, RequestId: req(), Days: 2, Reason: "waiting for the excavator"})
			return err
		},
		func() error {
			_, err := d.svc.ApproveExtension(as(supervisor), &ecogridv1.ApproveExtensionRequest{CaseId: id, RequestId: req()})
			return err
		},
		func() error {
			_, err := d.svc.SubmitRectification(as(handler), &ecogridv1.SubmitRectificationRequest{CaseId: id, RequestId: req(), Note: "waste removed", PhotoSha256: []string{photo}})
			return err
		},
		func() error {
			_, err := d.svc.VerifyRectification(as(supervisor), &ecogridv1.VerifyRectificationRequest{CaseId: id, RequestId: req()})
			return err
		},
		func() error {
			_, err := d.svc.CloseCase(as(supervisor), &ecogridv1.CloseCaseRequest{CaseId: id, RequestId: req()})
			return err
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	got, err := d.svc.GetCase(as(officer), &ecogridv1.GetCaseRequest{CaseId: id})
	if err != nil {
		t.Fatal(err)
	}
	c := got.Case
	if c.State != ecogridv1.CaseState_CASE_STATE_CLOSED || c.ExtensionDays != 2 || c.VerifiedBy != supervisorID ||
		len(c.RectificationPhotoSha256) != 1 || c.ClosedAt == nil || len(c.NextSteps) != 1 || c.NextSteps[0] != ecogridv1.CaseAction_CASE_ACTION_REOPEN {
		t.Fatalf("closed case %v", c)
	}
	tl, err := d.svc.GetCaseTimeline(as(supervisor), &ecogridv1.GetCaseTimelineRequest{CaseId: id})
	if err != nil {
		t.Fatal(err)
	}
	want := []ecogridv1.CaseAction{ecogridv1.CaseAction_CASE_ACTION_CREATE, ecogridv1.CaseAction_CASE_ACTION_ACCEPT,
		ecogridv1.CaseAction_CASE_ACTION_DISPATCH, ecogridv1.CaseAction_CASE_ACTION_START_WORK,
		ecogridv1.CaseAction_CASE_ACTION_REQUEST_EXTENSION, ecogridv1.CaseAction_CASE_ACTION_APPROVE_EXTENSION,
		ecogridv1.CaseAction_CASE_ACTION_SUBMIT_RECTIFICATION, ecogridv1.CaseAction_CASE_ACTION_VERIFY,
		ecogridv1.CaseAction_CASE_ACTION_CLOSE}
	if len(tl.Entries) != len(want) {
		t.Fatalf("timeline has %d entries, want %d", len(tl.Entries), len(want))
	}
	for i, e := range tl.Entries {
		if e.Action != want[i] {
			t.Fatalf("timeline entry %d is %v, want %v", i, e.Action, want[i])
		}
	}
	if e := tl.Entries[2]; e.ActorId != supervisorID || e.ActorRole != "township_supervisor" || e.ActorNodeCode != testTownship ||
		!strings.Contains(e.DetailsJson, handlerID) {
		t.Fatalf("dispatch entry %v", e)
	}
	// Every step has its ledger record and its CaseEvent, in the same transactions.
	if n := d.count(`SELECT count(*) FROM ledger.records WHERE subject_type = 'case' AND subject_id = $1`, id); n != len(want) {
		t.Fatalf("%d ledger records for %d steps", n, len(want))
	}
	if n := d.count(`SELECT count(*) FROM outbox.events WHERE event_type = 'CaseEvent'`); n != len(want) {
		t.Fatalf("%d case events for %d steps", n, len(want))
	}
	if n := d.count(`SELECT count(*) FROM ledger.records WHERE action = 'case.closed' AND actor_id = $1 AND actor_role = 'township_supervisor'
		AND responsible @> jsonb_build_array(jsonb_build_object('person_id', $2::text))`, supervisorID, handlerID); n != 1 {
		t.Fatalf("closing record with the actor and the people responsible for the cell now: %d", n)
	}
}

func TestServiceRefusalsChangeNothing(t *testing.T) {
	t.Parallel()
	d := newCaseDB(t)
	id := d.open(violation(testVillage))
	before := func() [3]int {
		return [3]int{d.count(`SELECT count(*) FROM ledger.records`), d.count(`SELECT count(*) FROM outbox.events`),
			d.count(`SELECT count(*) FROM cases.transitions`)}
	}
	b := before()
	cases := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"no caller", func() error {
			_, err := d.svc.AcceptCase(context.Background(), &ecogridv1.AcceptCaseRequest{CaseId: id, RequestId: uuid.NewString()})
			return err
		}, codes.Unauthenticated},
		{"other township", func() error {
			_, err := d.svc.AcceptCase(as(otherSupervisor), &ecogridv1.AcceptCaseRequest{CaseId: id, RequestId: uuid.NewString()})
			return err
		}, codes.NotFound},
		{"other township reads", func() error {
			_, err := d.svc.GetCase(as(otherSupervisor), &ecogridv1.GetCaseRequest{CaseId: id})
			return err
		}, codes.NotFound},
		{"inspector accepts", func() error {
			_, err := d.svc.AcceptCase(as(inspector), &ecogridv1.AcceptCaseRequest{CaseId: id, RequestId: uuid.NewString()})
			return err
		}, codes.PermissionDenied},
		{"close a reported case", func() error {
			_, err := d.svc.CloseCase(as(supervisor), &ecogridv1.CloseCaseRequest{CaseId: id, RequestId: uuid.NewString()})
			return err
		}, codes.FailedPrecondition},
		{"reject without reason", func() error {
			_, err := d.svc.RejectCase(as(supervisor), &ecogridv1.RejectCaseRequest{CaseId: id, RequestId: uuid.NewString()})
			return err
		}, codes.InvalidArgument},
		{"missing request id", func() error {
			_, err := d.svc.AcceptCase(as(supervisor), &ecogridv1.AcceptCaseRequest{CaseId: id})
			return err
		}, codes.InvalidArgument},
		{"unknown case", func() error {
			_, err := d.svc.AcceptCase(as(supervisor), &ecogridv1.AcceptCaseRequest{CaseId: uuid.NewString(), RequestId: uuid.NewString()})
			return err
		}, codes.NotFound},
		{"dispatch past severity deadline", func() error {
			if _, err := d.svc.AcceptCase(as(supervisor), &ecogridv1.AcceptCaseRequest{CaseId: id, RequestId: uuid.NewString()}); err != nil {
				return err
			}
			b = before()
			_, err := d.svc.DispatchCase(as(supervisor), &ecogridv1.DispatchCaseRequest{CaseId: id, RequestId: uuid.NewString(),
				HandlerId: handlerID, Deadline: timestamppb.New(time.Now().Add(20 * 24 * time.Hour))})
			return err
		}, codes.InvalidArgument},
	}
	for _, c := range cases {
		err := c.call()
		if code(err) != c.want {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		if after := before(); after != b {
			t.Errorf("%s: refused step wrote ledger/outbox/timeline rows: %v -> %v", c.name, b, after)
		}
	}
	_, err := d.svc.CloseCase(as(supervisor), &ecogridv1.CloseCaseRequest{CaseId: id, RequestId: uuid.NewString()})
	if msg := status.Convert(structerr.ToStatus(err)).Message(); !strings.Contains(msg, "allowed next steps: dispatch") {
		t.Errorf("illegal step message %q does not name the next steps", msg)
	}
}

func TestDispatchNeedsAHandlerWorkingInTheTownship(t *testing.T) {
	t.Parallel()
	d := newCaseDB(t)
	ctx := context.Background()
	id := d.open(violation(testVillage))
	if _, err := d.tracker.Transition(ctx, supervisor, id, uuid.NewString(), ActionAccept, Input{}); err != nil {
		t.Fatal(err)
	}
	stranger := uuid.NewString()
	elsewhere := uuid.NewString()
	addPerson(t, d.pool, elsewhere, "Sun Li", scope.RoleInspector, "130123102201")
	// An inspector of another village of the same township cannot reach
	// the case either (issue 13): their assignment does not cover its cell.
	neighbour := uuid.NewString()
	addPerson(t, d.pool, neighbour, "Ma Yun", scope.RoleInspector, "130123101202")
	for _, h := range []string{stranger, elsewhere, neighbour} {
		_, err := d.tracker.Transition(ctx, supervisor, id, uuid.NewString(), ActionDispatch, Input{HandlerID: h})
		if code(err) != codes.FailedPrecondition {
			t.Fatalf("dispatch to %s: %v", h, err)
		}
		if h == neighbour && !strings.Contains(err.Error(), "do not cover the case's grid node "+testVillage) {
			t.Fatalf("refusal does not say why: %v", err)
		}
	}
	if _, err := d.tracker.Transition(ctx, supervisor, id, uuid.NewString(), ActionDispatch, Input{HandlerID: "nobody"}); code(err) != codes.InvalidArgument {
		t.Fatalf("dispatch to a non-id: %v", err)
	}
	c, err := d.tracker.Transition(ctx, supervisor, id, uuid.NewString(), ActionDispatch, Input{HandlerID: handlerID})
	if err != nil || c.HandlerID != handlerID {
		t.Fatalf("dispatch to the village inspector: %v", err)
	}
	held, err := d.tracker.HandoverLister().OpenCasesHeldBy(ctx, handlerID)
	if err != nil || len(held) != 1 || held[0].CaseID != id || held[0].Status != "dispatched" || !strings.HasPrefix(held[0].Title, "solid waste: construction") {
		t.Fatalf("handover list %+v %v", held, err)
	}
}

func TestOverdueCasesAreEscalatedOnce(t *testing.T) {
	t.Parallel()
	d := newCaseDB(t)
	ctx := context.Background()
	id := d.open(violation(testVillage))
	onTime := d.open(violation(testVillage))
	for _, c := range []string{id, onTime} {
		if _, err := d.tracker.Transition(ctx, supervisor, c, uuid.NewString(), ActionAccept, Input{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.tracker.Transition(ctx, supervisor, id, uuid.NewString(), ActionDispatch, Input{HandlerID: handlerID}); err != nil {
		t.Fatal(err)
	}
	if n, err := d.tracker.EscalateOverdue(ctx); err != nil || n != 0 {
		t.Fatalf("escalated %d (%v) before any deadline", n, err)
	}
	d.tracker.now = func() time.Time { return time.Now().Add(4*24*time.Hour + time.Hour) }
	if n, err := d.tracker.EscalateOverdue(ctx); err != nil || n != 1 {
		t.Fatalf("escalated %d (%v), want 1", n, err)
	}
	if n, err := d.tracker.EscalateOverdue(ctx); err != nil || n != 0 {
		t.Fatalf("second sweep escalated %d (%v)", n, err)
	}
	c, err := d.tracker.Get(ctx, officer, id)
	if err != nil || c.EscalatedAt == nil || c.State != StateDispatched || !strings.Contains(c.EscalationReason, "overdue by 2 day") {
		t.Fatalf("case after sweep: %+v %v", c, err)
	}
	if n := d.count(`SELECT count(*) FROM ledger.records WHERE action = 'case.escalated' AND subject_id = $1 AND actor_role = 'system'`, id); n != 1 {
		t.Fatalf("%d escalation records", n)
	}
	list, _, err := d.tracker.List(ctx, supervisor, Filter{OverdueOnly: true})
	if err != nil || len(list) != 1 || list[0].ID != id {
		t.Fatalf("overdue list %v %v", list, err)
	}
	esc, err := d.svc.ListCases(as(officer), &ecogridv1.ListCasesRequest{EscalatedOnly: true})
	if err != nil || len(esc.Cases) != 1 || esc.Cases[0].Id != id || !esc.Cases[0].Escalated {
		t.Fatalf("county supervision list %v %v", esc, err)
	}
	// The county may not escalate it twice by hand either.
	if _, err := d.tracker.Transition(ctx, officer, id, uuid.NewString(), ActionEscalate, Input{}); code(err) != codes.FailedPrecondition {
		t.Fatalf("manual escalation of an escalated case: %v", err)
	}
}

func TestCriticalViolationIsEscalatedAtOnce(t *testing.T) {
	t.Parallel()
	d := newCaseDB(t)
	ev := violation(testVillage)
	ev.Severity = "SEVERITY_CRITICAL"
	id := d.open(ev)
	c, err := d.tracker.Get(context.Background(), officer, id)
	if err != nil || c.EscalatedAt == nil {
		t.Fatalf("critical case not under county supervision: %+v %v", c, err)
	}
	if n := d.count(`SELECT count(*) FROM ledger.records WHERE subject_id = $1`, id); n != 2 {
		t.Fatalf("%d ledger records, want opened + escalated", n)
	}
}

func TestListPagesFiltersAndHandover(t *testing.T) {
	t.Parallel()
	d := newCaseDB(t)
	ctx := context.Background()
	var ids []string
	for range 7 {
		ids = append(ids, d.open(violation(testVillage)))
	}
	other := d.open(violation("130123102201"))
	seen := map[string]bool{}
	token := ""
	pages := 0
	for {
		resp, err := d.svc.ListCases(as(supervisor), &ecogridv1.ListCasesRequest{Page: &ecogridv1.PageRequest{PageSize: 3, PageToken: token}})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, c := range resp.Cases {
			if seen[c.Id] {
				t.Fatalf("case %s on two pages", c.Id)
			}
			seen[c.Id] = true
		}
		if token = resp.NextPageToken; token == "" {
			break
		}
	}
	if len(seen) != 7 || pages != 3 || seen[other] {
		t.Fatalf("supervisor paged through %d cases in %d pages (other township's seen: %v)", len(seen), pages, seen[other])
	}
	all, _, err := d.tracker.List(ctx, officer, Filter{})
	if err != nil || len(all) != 8 {
		t.Fatalf("county officer sees %d (%v)", len(all), err)
	}
	byNode, _, _ := d.tracker.List(ctx, officer, Filter{NodeCode: "130123102"})
	if len(byNode) != 1 || byNode[0].ID != other {
		t.Fatalf("township filter: %d cases", len(byNode))
	}
	if _, err := d.tracker.Transition(ctx, supervisor, ids[0], uuid.NewString(), ActionAccept, Input{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.tracker.Transition(ctx, supervisor, ids[0], uuid.NewString(), ActionDispatch, Input{HandlerID: handlerID}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.tracker.Transition(ctx, supervisor, ids[1], uuid.NewString(), ActionReject, Input{Note: "duplicate of another report"}); err != nil {
		t.Fatal(err)
	}
	accepted, _, _ := d.tracker.List(ctx, supervisor, Filter{States: []State{StateDispatched, StateRejected}})
	if len(accepted) != 2 {
		t.Fatalf("state filter: %d", len(accepted))
	}
	resp, err := d.svc.ListHandoverCases(as(officer), &ecogridv1.ListHandoverCasesRequest{PersonId: supervisorID})
	if err != nil || len(resp.Cases) != 1 || resp.Cases[0].Id != ids[0] {
		t.Fatalf("supervisor's handover list: %v %v", resp, err)
	}
	held, err := d.tracker.OpenCasesHeldBy(ctx, handlerID)
	if err != nil || len(held) != 1 {
		t.Fatalf("handler's open cases: %d %v", len(held), err)
	}
	if resp, _ := d.svc.ListHandoverCases(as(otherSupervisor), &ecogridv1.ListHandoverCasesRequest{PersonId: supervisorID}); len(resp.Cases) != 0 {
		t.Fatal("handover list shows cases outside the caller's scope")
	}

	// The supervisor leaves; the successor takes the case over and gives it to another handler.
	successor := scope.Caller{PersonID: uuid.NewString(), Grants: []scope.Grant{{Role: scope.RoleTownshipSupervisor, NodeCode: testTownship}}}
	newHandler := uuid.NewString()
	addPerson(t, d.pool, newHandler, "Qian Yu", scope.RoleGridChief, testVillage)
	if _, err := d.svc.ReassignCase(as(successor), &ecogridv1.ReassignCaseRequest{CaseId: ids[0], RequestId: uuid.NewString(), HandlerId: newHandler}); code(err) != codes.InvalidArgument {
		t.Fatalf("reassign without a reason: %v", err)
	}
	r, err := d.svc.ReassignCase(as(successor), &ecogridv1.ReassignCaseRequest{CaseId: ids[0], RequestId: uuid.NewString(),
		Reason: "supervisor transferred", HandlerId: newHandler})
	if err != nil || r.Case.SupervisorId != successor.PersonID || r.Case.HandlerId != newHandler || r.Case.State != ecogridv1.CaseState_CASE_STATE_DISPATCHED {
		t.Fatalf("reassign: %v %v", r, err)
	}
	for _, p := range []string{supervisorID, handlerID} {
		if held, _ := d.tracker.OpenCasesHeldBy(ctx, p); len(held) != 0 {
			t.Fatalf("%s still holds %d cases after the handover", p, len(held))
		}
	}
}

func TestCountyDeadlineRules(t *testing.T) {
	t.Parallel()
	d := newCaseDB(t)
	ctx := context.Background()
	rule := &ecogridv1.DeadlineRule{Severity: ecogridv1.Severity_SEVERITY_NORMAL, RectifyDays: 5, MaxDays: 10}
	if _, err := d.svc.SetDeadlineRule(as(supervisor), &ecogridv1.SetDeadlineRuleRequest{CountyCode: testCounty, Rule: rule}); code(err) != codes.PermissionDenied {
		t.Fatalf("supervisor sets a rule: %v", err)
	}
	if _, err := d.svc.SetDeadlineRule(as(officer), &ecogridv1.SetDeadlineRuleRequest{CountyCode: "130124", Rule: rule}); code(err) != codes.NotFound {
		t.Fatalf("officer sets another county's rule: %v", err)
	}
	if _, err := d.svc.SetDeadlineRule(as(officer), &ecogridv1.SetDeadlineRuleRequest{CountyCode: testCounty, Rule: rule}); err != nil {
		t.Fatal(err)
	}
	rules, err := d.svc.ListDeadlineRules(as(inspector), &ecogridv1.ListDeadlineRulesRequest{CountyCode: testCounty})
	if err != nil || len(rules.Rules) != 4 || !rules.Rules[1].CountySpecific || rules.Rules[1].RectifyDays != 5 || rules.Rules[0].CountySpecific {
		t.Fatalf("rules %v %v", rules, err)
	}
	id := d.open(violation(testVillage))
	d.tracker.Transition(ctx, supervisor, id, uuid.NewString(), ActionAccept, Input{}) //nolint:errcheck
	c, err := d.tracker.Transition(ctx, supervisor, id, uuid.NewString(), ActionDispatch, Input{HandlerID: handlerID})
	if err != nil || c.Deadline.Sub(*c.DispatchedAt) != 5*24*time.Hour {
		t.Fatalf("dispatch under county rule: %v %v", c.Deadline, err)
	}
	// 5 + 6 > 10 days.
	if _, err := d.tracker.Transition(ctx, handler, id, uuid.NewString(), ActionRequestExtension, Input{Note: "x", ExtensionDays: 6}); code(err) != codes.FailedPrecondition {
		t.Fatalf("extension past the county limit: %v", err)
	}
}

// TestListCasesByHandlerCategoryAndTime: a supervisor lists one handler's
// cases, one category's, and the cases opened in a time range (issue 14:
// ListCases had only state, node, overdue and escalated filters).
func TestListCasesByHandlerCategoryAndTime(t *testing.T) {
	t.Parallel()
	d := newCaseDB(t)
	ctx := context.Background()
	water := violation(testVillage)
	water.Category = "water"
	waterID := d.open(water)
	before := time.Now()
	dispatched := d.open(violation(testVillage))
	d.open(violation(testVillage))
	for _, a := range []Action{ActionAccept, ActionDispatch} {
		if _, err := d.tracker.Transition(ctx, supervisor, dispatched, uuid.NewString(), a, Input{HandlerID: handlerID}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(req *ecogridv1.ListCasesRequest) []string {
		t.Helper()
		resp, err := d.svc.ListCases(as(supervisor), req)
		if err != nil {
			t.Fatalf("%v: %v", req, err)
		}
		var ids []string
		for _, c := range resp.GetCases() {
			ids = append(ids, c.GetId())
		}
		return ids
	}
	if got := list(&ecogridv1.ListCasesRequest{HandlerId: handlerID}); len(got) != 1 || got[0] != dispatched {
		t.Errorf("by handler: %v, want [%s]", got, dispatched)
	}
	if got := list(&ecogridv1.ListCasesRequest{Category: "water"}); len(got) != 1 || got[0] != waterID {
		t.Errorf("by category: %v, want [%s]", got, waterID)
	}
	if got := list(&ecogridv1.ListCasesRequest{CreatedTo: timestamppb.New(before)}); len(got) != 1 || got[0] != waterID {
		t.Errorf("opened before %v: %v, want [%s]", before, got, waterID)
	}
	if got := list(&ecogridv1.ListCasesRequest{CreatedFrom: timestamppb.New(before), Category: "solid_waste"}); len(got) != 2 {
		t.Errorf("opened since %v in solid_waste: %v, want 2", before, got)
	}
	if _, err := d.svc.ListCases(as(supervisor), &ecogridv1.ListCasesRequest{CreatedFrom: timestamppb.New(before), CreatedTo: timestamppb.New(before.Add(-time.Hour))}); code(err) != codes.InvalidArgument {
		t.Errorf("a range that ends before it starts: %v", err)
	}
}
