package audit_test

import (
	"bytes"
	"testing"

	"ecogrid/internal/audit"
	"ecogrid/internal/ledger"
)

// FuzzVerifyReport feeds arbitrary bytes to the offline verifier, which
// reads files from outside: it must never panic, and nothing verifies
// against a key that signed nothing.
func FuzzVerifyReport(f *testing.F) {
	_, pub, err := ledger.NewKeyPair("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	keys, err := ledger.ParsePublicKeys(pub)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"format":"ecogrid.audit.tenure.v1","report_id":"x","checkpoints":["ecogrid.ledger/130123\n5\nAAAA\n\n— fuzz AAAA\n"],` +
		`"evidence":[{"record":{"seq":0,"county_code":"130123","recorded_at":"2026-01-01T00:00:00.000000Z","payload":{},"prev_hash":"00","leaf_hash":"00"},"checkpoint_size":5,"proof":["AA=="]}],` +
		`"generation":{"county":"130123","seq":0},"facts":{"summary":{}}}`))
	f.Add([]byte(`{"format":"ecogrid.audit.tenure.v1","evidence":[{"record":{},"proof":[]}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := audit.VerifyReport(bytes.NewReader(data), keys); err == nil {
			t.Fatalf("a report verified against a key that signed nothing: %q", data)
		}
	})
}
