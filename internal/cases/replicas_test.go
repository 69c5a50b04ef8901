package cases

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// Two cased replicas sweep the same overdue cases at the same moment:
// each case is escalated once, with one timeline entry, one ledger
// record and one event, and the two sweeps' counts add up to the cases.
func TestTwoReplicasSweepingAtOnceEscalateEachCaseOnce(t *testing.T) {
	t.Parallel()
	d := newCaseDB(t)
	ctx := context.Background()
	const n = 12
	var ids []string
	for range n {
		id := d.open(violation(testVillage))
		for _, a := range []Action{ActionAccept, ActionDispatch} {
			if _, err := d.tracker.Transition(ctx, supervisor, id, uuid.NewString(), a, Input{HandlerID: handlerID}); err != nil {
				t.Fatal(err)
			}
		}
		ids = append(ids, id)
	}
	later := func() time.Time { return time.Now().Add(30 * 24 * time.Hour) }
	replicas := []*Tracker{NewTracker(d.pool, nil), NewTracker(d.pool, nil)}
	var wg sync.WaitGroup
	counts := make([]int, len(replicas))
	for i, tr := range replicas {
		tr.now = later
		wg.Go(func() {
			var err error
			if counts[i], err = tr.EscalateOverdue(ctx); err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if counts[0]+counts[1] != n {
		t.Errorf("the sweeps escalated %d + %d cases, want %d in all", counts[0], counts[1], n)
	}
	for _, id := range ids {
		if got := d.count(`SELECT count(*) FROM cases.transitions WHERE case_id = $1 AND action = 'escalate'`, id); got != 1 {
			t.Errorf("case %s: %d escalations in the timeline", id, got)
		}
		if got := d.count(`SELECT count(*) FROM ledger.records WHERE action = 'case.escalated' AND subject_id = $1`, id); got != 1 {
			t.Errorf("case %s: %d escalation ledger records", id, got)
		}
	}
	if got := d.count(`SELECT count(*) FROM outbox.events WHERE subject LIKE '%.escalated'`); got != n {
		t.Errorf("%d escalated case events in the outbox, want %d", got, n)
	}
}
