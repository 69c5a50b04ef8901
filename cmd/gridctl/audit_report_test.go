package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"ecogrid/internal/audit"
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
