package ledger

import (
	"encoding/hex"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// TestLeafHashKnownAnswer pins the record encoding (LeafData) and the RFC
// 6962 leaf hash. The expected hash was also computed independently from
// LeafData's documentation (a 15-line Python script: struct.pack of the
// length-prefixed fields, json.dumps(..., ensure_ascii=False,
// separators=(',', ':')) for the responsible people, sha256(b"\x00" + data)).
// If this test fails, every record ever written stops verifying: change
// the encoding only as a new version (leafDomain v2), never in place.
func TestLeafHashKnownAnswer(t *testing.T) {
	r := Record{CountyCode: "330106", Seq: 41, RecordedAt: time.Date(2026, 3, 1, 8, 30, 15, 123456000, time.UTC),
		ActorID: "6f1c1f0e-2b1a-4c5d-8e9f-0a1b2c3d4e5f", ActorRole: "township_supervisor", ActorNodeCode: "330106001",
		Action: "case.dispatched", SubjectType: "case", SubjectID: "c-2026-0001", NodeCode: "330106001002",
		Responsible: []Responsible{{PersonID: "0b9e4a44-7c1d-4f0e-9d2a-5e6f7a8b9c0d", Name: "王芳", Role: "grid_chief", NodeCode: "330106001"}},
		Payload:     []byte(`{"deadline":"2026-03-04","handler_id":"0b9e4a44-7c1d-4f0e-9d2a-5e6f7a8b9c0d"}`)}
	r.PrevHash[0], r.PrevHash[31] = 0xab, 0xcd
	const want = "d796fcaed02d7882a02422d9494078171262eb307a24a800398de1a95a6a5249"
	h := r.ComputeLeafHash()
	if got := hex.EncodeToString(h[:]); got != want {
		t.Fatalf("leaf hash %s, want %s: the record encoding changed", got, want)
	}
	if h != tlog.RecordHash(r.LeafData(nil)) {
		t.Fatal("ComputeLeafHash differs from tlog.RecordHash")
	}
	a, b := tlog.RecordHash([]byte("a")), tlog.RecordHash([]byte("b"))
	if nodeHash(a, b) != tlog.NodeHash(a, b) {
		t.Fatal("nodeHash differs from tlog.NodeHash")
	}
}
