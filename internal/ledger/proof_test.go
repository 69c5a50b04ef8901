package ledger_test

import (
	"context"
	"encoding/json"
	"testing"

	"ecogrid/internal/ledger"
)

// TestRecordProofsVerifyOffline proves records against a signed checkpoint,
// round-trips the proofs through JSON (as a report carries them), and
// checks them with only the public key: the untouched proofs pass, and an
// edited record, a forged proof hash, a proof against the wrong size and a
// checkpoint signed by another key all fail.
func TestRecordProofsVerifyOffline(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.append(t, 37)
	f.checkpoint(t)
	f.append(t, 5) // not covered yet

	cp, err := f.ledger.LatestCheckpoint(ctx, county)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 37 {
		t.Fatalf("latest checkpoint size %d, want 37", cp.Size)
	}
	if _, err := f.ledger.ProveRecords(ctx, cp, []int64{3, 40}); err == nil {
		t.Fatal("proved a record appended after the checkpoint")
	}
	seqs := []int64{0, 1, 17, 36}
	proofs, err := f.ledger.ProveRecords(ctx, cp, seqs)
	if err != nil {
		t.Fatal(err)
	}
	if len(proofs) != len(seqs) {
		t.Fatalf("%d proofs, want %d", len(proofs), len(seqs))
	}
	data, err := json.Marshal(proofs)
	if err != nil {
		t.Fatal(err)
	}

	keys, err := ledger.ParsePublicKeys(f.pub)
	if err != nil {
		t.Fatal(err)
	}
	offline, err := ledger.OpenCheckpoint(cp.Note, keys)
	if err != nil {
		t.Fatal(err)
	}
	decode := func() []ledger.RecordProof {
		var ps []ledger.RecordProof
		if err := json.Unmarshal(data, &ps); err != nil {
			t.Fatal(err)
		}
		return ps
	}
	for i, p := range decode() {
		if p.Record.Seq != seqs[i] {
			t.Fatalf("proof %d is for seq %d, want %d", i, p.Record.Seq, seqs[i])
		}
		if err := ledger.VerifyRecordProof(p, offline); err != nil {
			t.Fatalf("untampered proof of %d: %v", p.Record.Seq, err)
		}
	}

	tampered := map[string]func(p *ledger.RecordProof){
		"edited action":  func(p *ledger.RecordProof) { p.Record.Action = "case.closed" },
		"edited payload": func(p *ledger.RecordProof) { p.Record.Payload = []byte(`{"n":1}`) },
		"re-hashed record": func(p *ledger.RecordProof) {
			p.Record.SubjectID = "other"
			p.Record.LeafHash = p.Record.ComputeLeafHash()
		},
		"forged proof hash":  func(p *ledger.RecordProof) { p.Proof[0][0] ^= 1 },
		"dropped proof hash": func(p *ledger.RecordProof) { p.Proof = p.Proof[1:] },
		"wrong seq":          func(p *ledger.RecordProof) { p.Record.Seq++ },
		"wrong size":         func(p *ledger.RecordProof) { p.Size = 36 },
	}
	for name, tamper := range tampered {
		p := decode()[2]
		tamper(&p)
		if err := ledger.VerifyRecordProof(p, offline); err == nil {
			t.Errorf("%s: tampered proof verified", name)
		}
	}

	// A checkpoint signed by another key does not open with ours.
	other, _ := testKeys(t)
	l2 := ledger.New(f.pool, other, ledger.Config{WitnessDir: t.TempDir()}, nil)
	if _, err := l2.LatestCheckpoint(ctx, county); err == nil {
		t.Error("a checkpoint signed by another key was accepted")
	}
}
