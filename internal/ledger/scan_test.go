package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/ledger"
)

// TestScanCountingReadsWhatItNeeds scans the same records in full and
// counting (PersonIDsOnly): the counting read has every field the full one
// has but the actor's role and node, the names, roles and nodes of the
// responsible, and the hashes.
func TestScanCountingReadsWhatItNeeds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	l := ledger.New(pool, nil, ledger.Config{}, nil)
	at := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	people := []ledger.Responsible{
		{PersonID: uuid.NewString(), Name: `王"五", 甲`, Role: "inspector", NodeCode: "330106001001"},
		{PersonID: uuid.NewString(), Name: "赵六]", Role: "grid_chief", NodeCode: "330106001"},
	}
	for i := range 9 {
		e := entry(i)
		e.At = at.Add(time.Duration(i) * time.Hour)
		e.Action = []string{"case.created", "violation.reported", "case.closed"}[i%3]
		e.Responsible = people[:i%3]
		if i%4 == 0 {
			e.ActorID = ""
		}
		appendOne(t, pool, e)
	}
	scan := func(q ledger.ScanQuery) []*ledger.Record {
		t.Helper()
		var out []*ledger.Record
		if err := l.Scan(ctx, q, func(r *ledger.Record) error { out = append(out, r); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	q := ledger.ScanQuery{NodePrefix: county, Actions: []string{"case.*", "violation.reported"}, From: at.Add(time.Hour), To: at.Add(8 * time.Hour),
		AlsoAfterSeq: -1, UpToSeq: -1}
	full := scan(q)
	q.PersonIDsOnly = true
	counting := scan(q)
	if len(full) != 7 || len(counting) != len(full) {
		t.Fatalf("%d records in full, %d counting; want 7", len(full), len(counting))
	}
	for i, f := range full {
		c := counting[i]
		if c.CountyCode != f.CountyCode || c.Seq != f.Seq || !c.RecordedAt.Equal(f.RecordedAt) || c.ActorID != f.ActorID ||
			c.Action != f.Action || c.SubjectType != f.SubjectType || c.SubjectID != f.SubjectID || c.NodeCode != f.NodeCode ||
			string(c.Payload) != string(f.Payload) || len(c.Responsible) != len(f.Responsible) {
			t.Fatalf("record %d: counting %+v, full %+v", f.Seq, c, f)
		}
		for k, p := range f.Responsible {
			if c.Responsible[k] != (ledger.Responsible{PersonID: p.PersonID}) {
				t.Errorf("record %d responsible %d: %+v, want the id of %+v", f.Seq, k, c.Responsible[k], p)
			}
		}
	}
}
