package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"ecogrid/internal/database"
	"ecogrid/internal/database/dbtest"
	"ecogrid/internal/ledger"
)

func TestAuditKeygenExportVerify(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "ledger.key")
	var out bytes.Buffer
	if err := auditKeygen([]string{"-name", "county-330106", "-o", keyFile}, &out); err != nil {
		t.Fatal(err)
	}
	pub := strings.TrimSpace(out.String())
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st, err)
	}
	if err := auditKeygen([]string{"-o", keyFile}, &out); err == nil {
		t.Fatal("keygen overwrote an existing key")
	}
	keys, err := ledger.LoadKeys(ledger.KeyConfig{PrivateKeyFile: keyFile})
	if err != nil || keys.PublicKey() != pub {
		t.Fatalf("loading the generated key: %v (public %q, printed %q)", err, keys.PublicKey(), pub)
	}

	pool := dbtest.NewPool(t)
	ctx := context.Background()
	for i := range 10 {
		err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := ledger.Append(ctx, tx, ledger.Entry{CountyCode: "330106", ActorID: uuid.NewString(), ActorRole: "inspector",
				Action: "report.filed", SubjectType: "report", SubjectID: uuid.NewString(), NodeCode: "330106001001", Payload: map[string]int{"i": i}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	l := ledger.New(pool, keys, ledger.Config{}, nil)
	if _, err := l.Checkpoint(ctx, "330106"); err != nil {
		t.Fatal(err)
	}
	export := filepath.Join(dir, "330106.jsonl")
	var buf bytes.Buffer
	if err := l.Export(ctx, "330106", &buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(export, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	out.Reset()
	if err := auditVerify([]string{export, "--pubkey", "@" + keyFile + ".pub"}, nil, &out); err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "OK: ledger of county 330106 verified: 10 records, 1 signed checkpoints") {
		t.Fatalf("verify output: %s", out.String())
	}
	// From standard input, key given as text.
	out.Reset()
	if err := auditVerify([]string{"-", "--pubkey", pub}, bytes.NewReader(buf.Bytes()), &out); err != nil {
		t.Fatalf("verify stdin: %v", err)
	}
	// An edited export.
	tampered := bytes.Replace(buf.Bytes(), []byte(`"i":4`), []byte(`"i":5`), 1)
	out.Reset()
	err = auditVerify([]string{"-", "--pubkey", pub}, bytes.NewReader(tampered), &out)
	if err == nil || !strings.Contains(out.String(), "TAMPERED: ledger of county 330106: first bad record 4") {
		t.Fatalf("tampered export: %v\n%s", err, out.String())
	}
	// Against the earlier export as baseline.
	out.Reset()
	if err := auditVerify([]string{"-", "--pubkey", pub, "--baseline", export}, bytes.NewReader(tampered), &out); err == nil ||
		!strings.Contains(out.String(), "first bad record 4") {
		t.Fatalf("tampered export against baseline: %v\n%s", err, out.String())
	}
	if err := auditVerify([]string{export}, nil, &out); err == nil {
		t.Fatal("verify without --pubkey")
	}

	// Three records after the checkpoint: chained, not signed. Offline
	// verify fails saying how many, unless the auditor accepts the tail.
	for i := range 3 {
		err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := ledger.Append(ctx, tx, ledger.Entry{CountyCode: "330106", ActorID: uuid.NewString(), ActorRole: "inspector",
				Action: "report.filed", SubjectType: "report", SubjectID: uuid.NewString(), NodeCode: "330106001001", Payload: map[string]int{"tail": i}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var tail bytes.Buffer
	if err := l.Export(ctx, "330106", &tail); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = auditVerify([]string{"-", "--pubkey", pub}, bytes.NewReader(tail.Bytes()), &out)
	if err == nil || !strings.Contains(err.Error(), "3 ledger records") ||
		!strings.Contains(out.String(), "UNCOVERED: 3 of 13 records of county 330106 are not covered") {
		t.Fatalf("export with an unsigned tail: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := auditVerify([]string{"-", "--pubkey", pub, "--allow-unsigned-tail"}, bytes.NewReader(tail.Bytes()), &out); err != nil ||
		!strings.Contains(out.String(), "records 10 to 12 are chained but not yet covered") {
		t.Fatalf("unsigned tail allowed: %v\n%s", err, out.String())
	}
}

// An export no signed checkpoint covers at all fails offline verify with
// the count of its records; -allow-unsigned-tail accepts it.
func TestAuditVerifyRefusesExportWithoutCheckpoint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "ledger.key")
	var out bytes.Buffer
	if err := auditKeygen([]string{"-o", keyFile}, &out); err != nil {
		t.Fatal(err)
	}
	pub := strings.TrimSpace(out.String())
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	for i := range 4 {
		err := database.InTx(ctx, pool, func(tx pgx.Tx) error {
			_, err := ledger.Append(ctx, tx, ledger.Entry{CountyCode: "330106", ActorID: uuid.NewString(), ActorRole: "inspector",
				Action: "report.filed", SubjectType: "report", SubjectID: uuid.NewString(), NodeCode: "330106001001", Payload: map[string]int{"i": i}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	keys, err := ledger.LoadKeys(ledger.KeyConfig{PrivateKeyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := ledger.New(pool, keys, ledger.Config{}, nil).Export(ctx, "330106", &buf); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = auditVerify([]string{"-", "--pubkey", pub}, bytes.NewReader(buf.Bytes()), &out)
	if err == nil || !strings.Contains(out.String(), "UNCOVERED: 4 of 4 records") {
		t.Fatalf("export without a checkpoint: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := auditVerify([]string{"-allow-unsigned-tail", "-", "--pubkey", pub}, bytes.NewReader(buf.Bytes()), &out); err != nil {
		t.Fatalf("export without a checkpoint, tail allowed: %v\n%s", err, out.String())
	}
}
