package people_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	ecogridv1 "ecogrid/api/ecogrid/v1"
	"ecogrid/internal/cases"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/grid"
	"ecogrid/internal/people"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
	"ecogrid/internal/structerr"
)

// openCase files a violation in village as field would (its report, which
// cased checks the event against) and opens its case.
func openCase(t *testing.T, pool database.Querier, tracker *cases.Tracker, village, reporterID string) string {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	ev := &eventsv1.ViolationReported{
		EventId: uuid.NewString(), ReportId: uuid.NewString(), CountyCode: village[:6], TownshipCode: village[:9], VillageCode: village,
		ReporterId: reporterID, Category: "solid_waste", Severity: "SEVERITY_NORMAL", Description: "construction waste dumped by the river",
		Latitude: 38.0455, Longitude: 114.5153, ObservedAt: timestamppb.New(now.Add(-time.Minute)), ReceivedAt: timestamppb.New(now),
	}
	if _, err := pool.Exec(ctx, `INSERT INTO field.reports (id, request_hash, reporter_id, county_code, township_code, village_code,
			cell_code, category, severity, description, observed_at, received_at, position, orig_lat, orig_lon, orig_system,
			photo_sha256, violation, outside_area, event_id)
		VALUES ($1, '\x00', $2, $3, $4, $5, $5, $6, 2, $7, $8, $9, ST_SetSRID(ST_MakePoint($10, $11), 4326), $11, $10, 1, '{}', true, false, $12)`,
		ev.ReportId, ev.ReporterId, ev.CountyCode, ev.TownshipCode, ev.VillageCode, ev.Category, ev.Description,
		ev.ObservedAt.AsTime(), ev.ReceivedAt.AsTime(), ev.Longitude, ev.Latitude, ev.EventId); err != nil {
		t.Fatal(err)
	}
	out, err := tracker.OpenFromViolation(ctx, ev, cases.Source{Subject: "test", Kind: "jetstream"})
	if err != nil || !out.Created {
		t.Fatalf("opening case: %+v %v", out, err)
	}
	return out.CaseID
}

func step(t *testing.T, tracker *cases.Tracker, who scope.Caller, id string, a cases.Action, in cases.Input) {
	t.Helper()
	if _, err := tracker.Transition(context.Background(), who, id, uuid.NewString(), a, in); err != nil {
		t.Fatalf("%s on %s: %v", a, id, err)
	}
}

// A township supervisor holding open cases is transferred to the other
// township through TransferAssignment: in the same transaction the cases go
// to the named successor, the response lists them, a handover record is in
// the ledger, and the successor acts on them at once. Then the handler is
// moved to the next village, their dispatched cases go to the inspector who
// takes the village, and no open case is left with a handler who holds no
// assignment reaching it. Before issue 13 the transfer moved nothing: the
// cases stayed with people who no longer held the post.
func TestTransferAssignmentHandsOpenCasesToTheSuccessor(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	g := peopletest.InsertGrid(t, pool)
	tracker := cases.NewTracker(pool, nil)
	svc := people.NewService(pool, grid.NewStore(pool, grid.Config{}), tracker, peopletest.Hasher, nil)

	officer := peopletest.AddMember(t, pool, g[peopletest.CountyA], scope.RoleCountyOfficer, "县网格办 王", "")
	sup := peopletest.AddMember(t, pool, g[peopletest.TownshipA1], scope.RoleTownshipSupervisor, "镇督导 孙", "")
	next := peopletest.AddMember(t, pool, g[peopletest.TownshipA1], scope.RoleTownshipSupervisor, "镇督导 陈", "")
	handler := peopletest.AddMember(t, pool, g[peopletest.VillageA1a], scope.RoleInspector, "网格员 李", "")
	newHandler := peopletest.AddMember(t, pool, g[peopletest.VillageA1a], scope.RoleInspector, "网格员 周", "")

	var held []string
	for i := range 3 {
		id := openCase(t, pool, tracker, peopletest.VillageA1a, handler.Person.ID)
		step(t, tracker, sup.Caller(), id, cases.ActionAccept, cases.Input{})
		if i > 0 {
			step(t, tracker, sup.Caller(), id, cases.ActionDispatch, cases.Input{HandlerID: handler.Person.ID})
		}
		held = append(held, id)
	}
	asOfficer := scope.NewContext(ctx, officer.Caller())
	resp, err := svc.TransferAssignment(asOfficer, &ecogridv1.TransferAssignmentRequest{
		AssignmentId: sup.Assignment.ID, NewAssignmentId: uuid.NewString(), NodeId: g[peopletest.TownshipA2].ID,
		Reason: "rotated to the other township", SuccessorPersonId: next.Person.ID,
	})
	if err != nil {
		t.Fatalf("TransferAssignment: %v", err)
	}
	var got []string
	for _, h := range resp.GetHandover() {
		got = append(got, h.GetCaseId())
	}
	slices.Sort(got)
	want := slices.Clone(held)
	slices.Sort(want)
	if !slices.Equal(got, want) || resp.GetSuccessorPersonId() != next.Person.ID {
		t.Fatalf("handed over %v to %s, want %v to %s", got, resp.GetSuccessorPersonId(), want, next.Person.ID)
	}
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(`SELECT count(*) FROM ledger.records WHERE action = 'assignment.handover' AND subject_id = $1`, sup.Assignment.ID); n != 1 {
		t.Fatalf("%d handover records for the transferred assignment, want 1", n)
	}
	// The successor acts on the case nobody handled yet.
	step(t, tracker, next.Caller(), held[0], cases.ActionDispatch, cases.Input{HandlerID: handler.Person.ID})

	// The handler moves to the neighbouring village; the village's new
	// inspector takes the dispatched cases and starts work on one.
	hresp, err := svc.TransferAssignment(asOfficer, &ecogridv1.TransferAssignmentRequest{
		AssignmentId: handler.Assignment.ID, NewAssignmentId: uuid.NewString(), NodeId: g[peopletest.VillageA1b].ID,
		Reason: "moved to the next village", SuccessorPersonId: newHandler.Person.ID,
	})
	if err != nil || len(hresp.GetHandover()) != 3 {
		t.Fatalf("handler TransferAssignment = %d cases, %v; want 3", len(hresp.GetHandover()), err)
	}
	step(t, tracker, newHandler.Caller(), held[1], cases.ActionStartWork, cases.Input{})
	if n := count(`SELECT count(*) FROM cases.cases c
		WHERE c.state NOT IN ('closed', 'rejected') AND c.handler_id <> ''
		  AND NOT EXISTS (SELECT 1 FROM people.assignments a WHERE a.person_id::text = c.handler_id
			AND a.valid_from <= now() AND (a.valid_to IS NULL OR a.valid_to > now())
			AND c.node_code LIKE a.node_code || '%')`); n != 0 {
		t.Fatalf("%d open cases with a handler who holds no assignment reaching them", n)
	}
	if n := count(`SELECT count(*) FROM cases.cases WHERE state NOT IN ('closed', 'rejected')
		AND (supervisor_id = $1 OR handler_id = $2)`, sup.Person.ID, handler.Person.ID); n != 0 {
		t.Fatalf("%d open cases still with the people who left", n)
	}

	// A successor who holds no post over the node is refused, and the
	// assignment stays open.
	stranger := peopletest.AddMember(t, pool, g[peopletest.VillageA2a], scope.RoleInspector, "外村网格员", "")
	_, err = svc.EndAssignment(asOfficer, &ecogridv1.EndAssignmentRequest{AssignmentId: newHandler.Assignment.ID, SuccessorPersonId: stranger.Person.ID})
	if structerr.Code(err) != codes.FailedPrecondition {
		t.Fatalf("EndAssignment to a successor elsewhere = %v; want FailedPrecondition", err)
	}
	if a, err := people.GetAssignment(ctx, pool, newHandler.Assignment.ID); err != nil || a.ValidTo != nil {
		t.Fatalf("assignment after the refused end = %+v, %v; want still open", a, err)
	}
}

// Two administrators ending each other's assignments at the same moment:
// exactly one end may succeed, or the system would be left with none. The
// check used to run before the transaction, so both passed.
func TestLastAdministratorCannotBeEndedConcurrently(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	g := peopletest.InsertGrid(t, pool)
	st := people.NewStore(pool, nil)
	for round := range 5 {
		a := peopletest.AddMember(t, pool, g[peopletest.CountyA], scope.RoleAdmin, "admin a", "")
		b := peopletest.AddMember(t, pool, g[peopletest.CountyA], scope.RoleAdmin, "admin b", "")
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, m := range []peopletest.Member{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = st.EndAssignment(ctx, people.SystemActor, m.Assignment.ID, "left", "")
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case structerr.Code(err) != codes.FailedPrecondition:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of two concurrent ends of the last two administrators succeeded; want exactly 1", round, ok)
		}
		// Leave no administrator from this round, so the next starts with two.
		if _, err := pool.Exec(ctx, `UPDATE people.assignments SET valid_to = now() WHERE role = 'admin' AND valid_to IS NULL`); err != nil {
			t.Fatal(err)
		}
	}
}
