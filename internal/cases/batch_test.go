package cases

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	eventsv1 "ecogrid/api/ecogrid/events/v1"
	"ecogrid/internal/ledger"
)

// One batch holding a forged violation, the same event twice, a report
// republished under another event id, an event handled before, a critical
// violation and plain ones: the forged and republished ones are left out
// as poison, the others are handled, and every report gets exactly one case with one opening entry,
// record and CaseEvent (two for the critical one, escalated at once).
func TestOpenBatchLeavesOutTheBadAndOpensEachCaseOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := context.Background()
	src := Source{Subject: "test", Kind: "jetstream"}

	before := violation(testVillage)
	s.file(before)
	if _, err := s.tracker.OpenFromViolation(ctx, before, src); err != nil {
		t.Fatal(err)
	}

	plain := []*eventsv1.ViolationReported{violation(testVillage), violation(testVillage), violation(testVillage)}
	for _, ev := range plain {
		s.file(ev)
	}
	critical := violation(testVillage)
	critical.Severity = "SEVERITY_CRITICAL"
	s.file(critical)
	forged := violation(testVillage) // never filed
	// The report of plain[1] republished under another event id: field
	// recorded no such event, so it is poison too.
	republished := proto.Clone(plain[1]).(*eventsv1.ViolationReported)
	republished.EventId = uuid.NewString()

	batch := []*eventsv1.ViolationReported{plain[0], forged, plain[1], plain[0], before, critical, republished, plain[2]}
	srcs := make([]Source, len(batch))
	for i := range srcs {
		srcs[i] = src
	}
	// All or nothing: the forged violation fails the lot.
	if _, err := s.tracker.OpenFromViolations(ctx, batch, srcs); err == nil {
		t.Fatal("OpenFromViolations accepted a batch with a forged violation")
	} else if pe := (*PoisonError)(nil); !errors.As(err, &pe) {
		t.Fatalf("OpenFromViolations: %v, want a PoisonError", err)
	}
	if n := s.count(`SELECT count(*) FROM cases.cases`); n != 1 {
		t.Fatalf("after the refused batch: %d cases, want 1", n)
	}

	out, poison, err := s.tracker.OpenBatch(ctx, batch, srcs)
	if err != nil {
		t.Fatal(err)
	}
	wantCreated := []bool{true, false, true, false, false, true, false, true}
	for i := range batch {
		if i == 1 || i == 6 {
			if pe := (*PoisonError)(nil); !errors.As(poison[i], &pe) {
				t.Errorf("violation %d (not recorded by field): poison %v, want a PoisonError", i, poison[i])
			}
			continue
		}
		if poison[i] != nil {
			t.Errorf("violation %d: poison %v", i, poison[i])
		}
		if out[i].Created != wantCreated[i] {
			t.Errorf("violation %d: created %v, want %v", i, out[i].Created, wantCreated[i])
		}
		want := uuid.NewSHA1(eventNamespace, []byte("case:"+batch[i].ReportId)).String()
		if out[i].CaseID != want {
			t.Errorf("violation %d: case %s, want %s", i, out[i].CaseID, want)
		}
	}
	// Handing the same batch again changes nothing.
	again, _, err := s.tracker.OpenBatch(ctx, batch, srcs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range again {
		if o.Created {
			t.Errorf("second run: violation %d created a case", i)
		}
	}

	reports := 5 // before, plain ×3, critical
	for _, c := range []struct {
		what string
		sql  string
		want int
	}{
		{"cases", `SELECT count(*) FROM cases.cases`, reports},
		{"inbox rows (every authentic event once)", `SELECT count(*) FROM cases.inbox`, reports},
		{"opening entries", `SELECT count(*) FROM cases.transitions WHERE action = 'create'`, reports},
		{"escalations", `SELECT count(*) FROM cases.transitions WHERE action = 'escalate'`, 1},
		{"case.opened records", `SELECT count(*) FROM ledger.records WHERE action = 'case.opened'`, reports},
		{"case.escalated records", `SELECT count(*) FROM ledger.records WHERE action = 'case.escalated'`, 1},
		{"opened CaseEvents", `SELECT count(*) FROM outbox.events WHERE event_type = 'CaseEvent' AND subject LIKE '%.opened'`, reports},
		{"escalated CaseEvents", `SELECT count(*) FROM outbox.events WHERE event_type = 'CaseEvent' AND subject LIKE '%.escalated'`, 1},
		{"the critical case's steps in order", `SELECT count(*) FROM cases.transitions o JOIN cases.transitions e
			ON e.case_id = o.case_id AND o.action = 'create' AND e.action = 'escalate' AND o.seq < e.seq`, 1},
		{"forged case", `SELECT count(*) FROM cases.cases WHERE report_id = '` + forged.ReportId + `'`, 0},
	} {
		if got := s.count(c.sql); got != c.want {
			t.Errorf("%s: %d, want %d", c.what, got, c.want)
		}
	}
	// The critical case's CaseEvents go out opened, then escalated.
	stepEvent := func(prefix string) string {
		step := uuid.NewSHA1(eventNamespace, []byte(prefix+critical.EventId)).String()
		return uuid.NewSHA1(eventNamespace, []byte("event:"+step)).String()
	}
	if n := s.count(`SELECT count(*) FROM outbox.events o, outbox.events e
		WHERE o.event_id = $1 AND e.event_id = $2 AND o.seq < e.seq`, stepEvent("open:"), stepEvent("critical:")); n != 1 {
		t.Error("the critical case's escalated event is not after its opened event")
	}
	// The chain verifies: order, hash links, tree hashes, person index.
	res, err := ledger.New(s.pool, nil, ledger.Config{}, nil).VerifyChain(ctx, testCounty, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.Records != int64(reports+1) {
		t.Errorf("chain: %d records, defect %+v; want %d records, no defect", res.Records, res.Defect, reports+1)
	}
}
