package cases

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"

	"ecogrid/internal/database"
	"ecogrid/internal/people"
	"ecogrid/internal/scope"
)

const (
	successorID  = "0b6f6a64-53f2-4a70-9f0e-1f2b1c0000b1"
	newHandlerID = "0b6f6a64-53f2-4a70-9f0e-1f2b1c0000b2"
)

// A supervisor holding open cases is transferred: in the transaction that
// ends the post, their cases move to the named successor with a step and
// a ledger record each, and the successor acts on them at once. Then the
// handler leaves too, and afterwards no open case is left with a handler
// who holds no assignment reaching it.
func TestHandoverMovesOpenCasesToTheSuccessor(t *testing.T) {
	t.Parallel()
	d := newCaseDB(t)
	ctx := context.Background()
	addPerson(t, d.pool, supervisorID, "Chen Jie", scope.RoleTownshipSupervisor, testTownship)
	addPerson(t, d.pool, successorID, "Sun Li", scope.RoleTownshipSupervisor, testTownship)
	var held []string
	for i := range 3 {
		id := d.open(violation(testVillage))
		mustStep(t, d, supervisor, id, ActionAccept, Input{})
		if i > 0 {
			mustStep(t, d, supervisor, id, ActionDispatch, Input{HandlerID: handlerID})
		}
		held = append(held, id)
	}
	untouched := d.open(violation(testVillage)) // reported, nobody holds it yet

	handover := func(from, to, node string) []people.HandoverCase {
		t.Helper()
		var out []people.HandoverCase
		err := database.InTx(ctx, d.pool, func(tx pgx.Tx) error {
			var err error
			out, err = d.tracker.HandOver(ctx, tx, people.Handover{CountyCode: testCounty, NodeCode: node,
				FromPersonID: from, ToPersonID: to, Actor: people.Actor{PersonID: officerID, Role: "county_officer", NodeCode: testCounty},
				Reason: "transferred to the county office", At: time.Now()})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	moved := handover(supervisorID, successorID, testTownship)
	var got []string
	for _, h := range moved {
		got = append(got, h.CaseID)
	}
	slices.Sort(got)
	want := slices.Clone(held)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("handed over %v, want %v", got, want)
	}
	if n := d.count(`SELECT count(*) FROM cases.cases WHERE supervisor_id = $1 AND state NOT IN ('closed', 'rejected')`, supervisorID); n != 0 {
		t.Fatalf("%d open cases still with the leaving supervisor", n)
	}
	if n := d.count(`SELECT count(*) FROM cases.transitions WHERE action = 'reassign' AND actor_id = $1`, officerID); n != 3 {
		t.Fatalf("%d handover steps, want 3", n)
	}
	if n := d.count(`SELECT count(*) FROM ledger.records WHERE action = 'case.reassigned' AND actor_id = $1
		AND convert_from(payload, 'UTF8')::jsonb->'details'->>'to_person_id' = $2`, officerID, successorID); n != 3 {
		t.Fatalf("%d handover ledger records, want 3", n)
	}
	if n := d.count(`SELECT count(*) FROM cases.cases WHERE id = $1 AND supervisor_id = ''`, untouched); n != 1 {
		t.Fatal("a case the leaving supervisor did not hold was touched")
	}
	// Handing over again (a retried transaction) moves nothing twice.
	if again := handover(supervisorID, successorID, testTownship); len(again) != 0 {
		t.Fatalf("second handover moved %d cases", len(again))
	}
	// The successor acts on the cases they received.
	successor := scope.Caller{PersonID: successorID, Grants: []scope.Grant{{Role: scope.RoleTownshipSupervisor, NodeCode: testTownship}}}
	mustStep(t, d, successor, held[0], ActionDispatch, Input{HandlerID: handlerID})

	// The handler leaves their village for another; their successor there
	// takes the dispatched cases, and may start work on them.
	addPerson(t, d.pool, newHandlerID, "Zhou Min", scope.RoleInspector, testVillage)
	if _, err := d.pool.Exec(ctx, `UPDATE people.assignments SET valid_to = now() WHERE person_id = $1`, handlerID); err != nil {
		t.Fatal(err)
	}
	if moved := handover(handlerID, newHandlerID, testVillage); len(moved) != 3 {
		t.Fatalf("handler handover moved %d cases, want 3", len(moved))
	}
	newHandler := scope.Caller{PersonID: newHandlerID, Grants: []scope.Grant{{Role: scope.RoleInspector, NodeCode: testVillage}}}
	mustStep(t, d, newHandler, held[1], ActionStartWork, Input{})
	// By query: every open case with a handler has one whose assignment
	// is active and reaches the case's node.
	if n := d.count(`SELECT count(*) FROM cases.cases c
		WHERE c.state NOT IN ('closed', 'rejected') AND c.handler_id <> ''
		  AND NOT EXISTS (SELECT 1 FROM people.assignments a WHERE a.person_id::text = c.handler_id
			AND a.valid_from <= now() AND (a.valid_to IS NULL OR a.valid_to > now())
			AND c.node_code LIKE a.node_code || '%')`); n != 0 {
		t.Fatalf("%d open cases with a handler who holds no assignment reaching them", n)
	}
	// A successor who cannot reach the cases is refused, and nothing moves.
	err := database.InTx(ctx, d.pool, func(tx pgx.Tx) error {
		_, err := d.tracker.HandOver(ctx, tx, people.Handover{CountyCode: testCounty, NodeCode: testVillage,
			FromPersonID: newHandlerID, ToPersonID: uuid.NewString(), At: time.Now()})
		return err
	})
	if code(err) != codes.FailedPrecondition {
		t.Fatalf("handover to someone with no assignment: %v", err)
	}
}

func mustStep(t *testing.T, d *caseDB, who scope.Caller, id string, a Action, in Input) {
	t.Helper()
	if _, err := d.tracker.Transition(context.Background(), who, id, uuid.NewString(), a, in); err != nil {
		t.Fatalf("%s on %s: %v", a, id, err)
	}
}
