package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"ecogrid/internal/audit"
	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/ledger"
	"ecogrid/internal/people"
	"ecogrid/internal/people/peopletest"
	"ecogrid/internal/scope"
)

// TestAuditVerifyReport makes a tenure audit report through the people API
// and the audit, writes it to a file, and verifies it offline with only
// the public key; the same file with one count changed fails.
func TestAuditVerifyReport(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	skey, pub, err := ledger.NewKeyPair("county-130123")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ledger.LoadKeys(ledger.KeyConfig{PrivateKey: skey})
	if err != nil {
		t.Fatal(err)
	}
	l := ledger.New(pool, keys, ledger.Config{WitnessDir: t.TempDir()}, nil)
	grid := peopletest.InsertGrid(t, pool)
	officer := peopletest.AddMember(t, pool, grid[peopletest.CountyA], scope.RoleCountyOfficer, "赵主任", "")
	m := peopletest.AddMember(t, pool, grid[peopletest.VillageA1a], scope.RoleInspector, "张伟", "")
	// Three cases in his cell while he holds it, one closed late.
	resp := []ledger.Responsible{{PersonID: m.Person.ID, Name: "张伟", Role: "inspector", NodeCode: peopletest.VillageA1a}}
	for i := range 3 {
		id := uuid.NewString()
		deadline := time.Now().Add(time.Duration(2-i) * time.Hour).UTC().Format(time.RFC3339)
		for _, s := range []string{"created", "accepted", "closed"} {
			if err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
				_, err := ledger.Append(ctx, tx, ledger.Entry{CountyCode: peopletest.CountyA, ActorRole: "system", Action: "case." + s,
					SubjectType: "case", SubjectID: id, NodeCode: peopletest.VillageA1a, Responsible: resp,
					Payload: map[string]any{"state": s, "deadline": deadline}})
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	st := people.NewStore(pool, nil)
	tr, err := st.Transfer(ctx, people.SystemActor, m.Assignment.ID, people.NewAssignment{ID: uuid.NewString(),
		NodeID: grid[peopletest.VillageA1b].ID, NodeCode: peopletest.VillageA1b, Role: scope.RoleGridChief}, "提任网格长", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.EndAssignment(ctx, people.SystemActor, tr.Started.ID, "离职", ""); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.New(pool, l).TenureAudit(ctx, officer.Caller(), audit.Request{ReportID: uuid.NewString(), PersonID: m.Person.ID})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Facts.Summary.Posts != 2 || len(rep.Facts.Handovers) != 2 || rep.Facts.PersonName != "张伟" {
		t.Fatalf("report of real assignments: %+v", rep.Facts)
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file, pubFile := filepath.Join(dir, "report.json"), filepath.Join(dir, "ledger.pub")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pubFile, []byte(pub+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := auditVerifyReport([]string{file, "-pub", "@" + pubFile}, nil, &out); err != nil {
		t.Fatalf("verify-report: %v\n%s", err, out.String())
	}
	if !strings.HasPrefix(out.String(), "OK tenure audit of 张伟") || !strings.Contains(out.String(), "2 posts") {
		t.Fatalf("verify-report printed %q", out.String())
	}

	if rep.Facts.Summary.Cases != 3 || rep.Facts.Summary.ClosedLate != 1 {
		t.Fatalf("report of three cases, one closed late: %+v", rep.Facts.Summary)
	}

	// One changed count, one dropped case (its records dropped too and the
	// counts redone, as a careful forger would), a forged proof: each file
	// fails with only the public key.
	tamper := map[string]func(r *audit.Report){
		"one changed count": func(r *audit.Report) { r.Facts.Summary.ClosedLate = 0 },
		"one dropped case": func(r *audit.Report) {
			drop := r.Facts.Cases[0].CaseID
			r.Facts.Cases = r.Facts.Cases[1:]
			keep := r.Evidence[:0]
			var recs []ledger.Record
			for _, p := range r.Evidence {
				if p.Record.SubjectID != drop {
					keep = append(keep, p)
					if p.Record.Action != audit.ActionReportGenerated {
						recs = append(recs, p.Record)
					}
				}
			}
			r.Evidence = keep
			r.Facts = audit.Compute(r.Facts.Params, recs)
		},
		"a forged proof": func(r *audit.Report) {
			for i := range r.Evidence {
				if len(r.Evidence[i].Proof) > 0 {
					r.Evidence[i].Proof[0][0] ^= 1
					return
				}
			}
			t.Fatal("no proof with a hash to forge")
		},
	}
	for what, fn := range tamper {
		var r audit.Report
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatal(err)
		}
		fn(&r)
		bad, _ := json.Marshal(r)
		badFile := filepath.Join(dir, strings.ReplaceAll(what, " ", "-")+".json")
		if err := os.WriteFile(badFile, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		out.Reset()
		if err := auditVerifyReport([]string{badFile, "-pub", "@" + pubFile}, nil, &out); err == nil || !strings.HasPrefix(out.String(), "FAILED") {
			t.Errorf("a report with %s verified: %v %q", what, err, out.String())
		} else {
			t.Logf("%s: %s", what, strings.TrimSpace(out.String()))
		}
	}
	rep.Facts.Summary.Posts = 1
	bad, _ := json.Marshal(rep)
	out.Reset()
	if err := auditVerifyReport([]string{"-", "-pub", pub}, bytes.NewReader(bad), &out); err == nil || !strings.HasPrefix(out.String(), "FAILED") {
		t.Fatalf("a tampered report verified: %v %q", err, out.String())
	}
	if err := auditVerifyReport([]string{file}, nil, &out); err == nil {
		t.Fatal("verified without a public key")
	}
}
