// Package ledger owns the lifetime accountability record (生态环境损害责任终身追究):
// an append-only log per county of every responsibility-bearing act, kept in
// PostgreSQL, hashed so that any later change is detectable, and
// periodically checkpointed with an ed25519 signature so that anyone holding
// the public key can verify an export offline.
//
// Design, and why:
//
//   - One chain per county (the county code is the chain key and the shard
//     key). Append runs inside the caller's transaction, so an act and its
//     record commit or fail together, and takes a row lock on the county's
//     head row (ledger.chains) so there is one writer at a time per chain;
//     chains of different counties never wait for each other.
//
//   - Each record's leaf is hashed as in RFC 6962/9162: leaf hash =
//     SHA-256(0x00 || LeafData), interior node = SHA-256(0x01 || left || right)
//     (golang.org/x/mod/sumdb/tlog, the Go checksum database's implementation
//     of exactly these trees). The records form a Merkle tree whose stored
//     hashes are kept in ledger.tree_hashes, so a root, an inclusion proof and
//     a consistency proof each cost O(log n) reads. Signed checkpoints (tree
//     size + root) are what makes the ledger tamper-evident against someone
//     who can rewrite the database: the signing key is never in it.
//
//   - We keep both a Merkle tree and a hash chain: every leaf also commits to
//     the previous record's leaf hash (prev_hash). The tree gives short
//     proofs and cheap consistency between checkpoints; the chain pins every
//     record to its predecessor, so a deleted, inserted, swapped or edited
//     record is reported at its exact sequence number by a single forward
//     scan, instead of only "the root does not match".
//
//   - LeafData is a fixed, length-prefixed binary layout (see LeafData) that
//     any language can reproduce without a JSON canonicaliser; the payload
//     inside it is canonical JSON (sorted keys, compact, encoding/json
//     escaping), stored byte for byte, so verification hashes exactly the
//     stored bytes and never re-encodes anything.
//
//   - Protection in the database (triggers refusing UPDATE, DELETE and
//     TRUNCATE; the ecogrid_app role may only INSERT and SELECT) is a first
//     line only. Verification does not rely on it: VerifyChain and the
//     offline verifier recompute everything from the record contents and the
//     signed checkpoints.
package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"ecogrid/internal/structerr"
)

// Responsible is one person responsible for a place at the moment of an act
// (from the assignments: 网格长, inspectors of the cell). Recorded with
// violations and case acts so that accountability survives later transfers.
type Responsible struct {
	PersonID string `json:"person_id"`
	Name     string `json:"name"`
	Role     string `json:"role"`
	NodeCode string `json:"node_code"`
}

// Entry is what a bounded context asks the ledger to record about an act it
// is committing in the same transaction.
type Entry struct {
	CountyCode    string        // chain key (6-digit county code)
	ActorID       string        // person uuid; "" for the system itself
	ActorRole     string        // role held at that moment (scope.Role string) or "system"
	ActorNodeCode string        // grid node the actor acted from
	Action        string        // e.g. "assignment.started", "report.filed", "case.dispatched"
	SubjectType   string        // "report", "case", "assignment", "grid_node", "account", "person"
	SubjectID     string        //
	NodeCode      string        // grid node the act concerns (for history by place)
	Responsible   []Responsible // people responsible for the place at that moment (violations, case acts)
	Payload       any           // JSON-marshalable; encoded deterministically
	At            time.Time     // zero = now()
}

// Record is one stored ledger record: an Entry with its place in the chain
// and its hashes.
type Record struct {
	CountyCode    string
	Seq           int64 // 0-based index in the county's Merkle tree
	RecordedAt    time.Time
	ActorID       string
	ActorRole     string
	ActorNodeCode string
	Action        string
	SubjectType   string
	SubjectID     string
	NodeCode      string
	Responsible   []Responsible
	Payload       []byte    // canonical JSON, exactly the bytes hashed
	PrevHash      tlog.Hash // leaf hash of record Seq-1; zero for Seq 0
	LeafHash      tlog.Hash // RecordHash(LeafData())
}

// SystemActor is the ActorRole of acts done by the system itself (escalation
// of overdue cases, reconciliation), which have no person as actor.
const SystemActor = "system"

// Limits on what one record may hold; a ledger record describes one act.
const (
	maxFieldLen    = 512
	maxPayloadLen  = 256 << 10
	maxResponsible = 256
)

// leafDomain starts every LeafData, so a ledger leaf can never be mistaken
// for any other hashed structure (and the layout can evolve to v2).
const leafDomain = "ecogrid.ledger.record.v1\x00"

// LeafData is the byte string whose RFC 6962 leaf hash
// (SHA-256(0x00 || LeafData)) is the record's LeafHash:
//
//	"ecogrid.ledger.record.v1\x00"
//	str(county_code) u64(seq) i64(recorded_at, Unix microseconds, UTC)
//	str(actor_id) str(actor_role) str(actor_node_code) str(action)
//	str(subject_type) str(subject_id) str(node_code)
//	str(responsible as canonical JSON array) str(payload) prev_hash[32]
//
// where str(x) is a big-endian uint32 length followed by the bytes and u64/i64
// are big-endian. Every column a reader sees is covered. It is appended to
// buf, without allocating when buf has room.
func (r *Record) LeafData(buf []byte) []byte {
	buf = append(buf, leafDomain...)
	buf = appendStr(buf, r.CountyCode)
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.Seq))
	buf = binary.BigEndian.AppendUint64(buf, uint64(r.RecordedAt.UnixMicro()))
	buf = appendStr(buf, r.ActorID)
	buf = appendStr(buf, r.ActorRole)
	buf = appendStr(buf, r.ActorNodeCode)
	buf = appendStr(buf, r.Action)
	buf = appendStr(buf, r.SubjectType)
	buf = appendStr(buf, r.SubjectID)
	buf = appendStr(buf, r.NodeCode)
	at := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	buf = appendResponsibleJSON(buf, r.Responsible)
	binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4))
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(r.Payload)))
	buf = append(buf, r.Payload...)
	buf = append(buf, r.PrevHash[:]...)
	return buf
}

func appendStr(buf []byte, s string) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
	return append(buf, s...)
}

// ComputeLeafHash returns the RFC 6962 leaf hash of the record's contents
// (equal to tlog.RecordHash(r.LeafData(nil))).
func (r *Record) ComputeLeafHash() tlog.Hash {
	h, _ := r.leafHash(make([]byte, 0, 512+len(r.Payload)))
	return h
}

// leafHash hashes 0x00 || LeafData in one call, reusing buf (returned
// grown).
func (r *Record) leafHash(buf []byte) (tlog.Hash, []byte) {
	buf = r.LeafData(append(buf[:0], 0x00))
	return sha256.Sum256(buf), buf
}

// nodeHash is tlog.NodeHash without its allocations.
func nodeHash(left, right tlog.Hash) tlog.Hash {
	var b [1 + 2*tlog.HashSize]byte
	b[0] = 0x01
	copy(b[1:], left[:])
	copy(b[1+tlog.HashSize:], right[:])
	return sha256.Sum256(b[:])
}

// responsibleJSON is the canonical encoding of the responsible people: a JSON
// array of objects with fields in the fixed order person_id, name, role,
// node_code, strings escaped exactly as encoding/json does; never null.
func responsibleJSON(rs []Responsible) []byte { return appendResponsibleJSON(nil, rs) }

func appendResponsibleJSON(buf []byte, rs []Responsible) []byte {
	buf = append(buf, '[')
	for i, p := range rs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"person_id":`...)
		buf = appendJSONString(buf, p.PersonID)
		buf = append(buf, `,"name":`...)
		buf = appendJSONString(buf, p.Name)
		buf = append(buf, `,"role":`...)
		buf = appendJSONString(buf, p.Role)
		buf = append(buf, `,"node_code":`...)
		buf = appendJSONString(buf, p.NodeCode)
		buf = append(buf, '}')
	}
	return append(buf, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as encoding/json.Marshal does (HTML-safe
// escaping, invalid UTF-8 as U+FFFD, U+2028/U+2029 escaped), without
// reflection; TestJSONStringMatchesEncodingJSON keeps them equal.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// CanonicalJSON encodes v deterministically: encoding/json output re-decoded
// and re-encoded with object keys sorted (byte order), no insignificant
// whitespace, numbers kept as the literal encoding/json produced, and
// encoding/json's string escaping (which is also what it writes when the
// bytes are embedded as a json.RawMessage, so exports carry them unchanged).
// For ASCII keys and integers this is RFC 8785 (JCS); it is not re-applied on
// verification, which hashes the stored bytes.
func CanonicalJSON(v any) ([]byte, error) {
	if v == nil {
		return []byte("{}"), nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	return json.Marshal(x)
}

// validCountyCode reports whether s is a 6-digit county code (GB/T 2260).
func validCountyCode(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func checkText(name, s string, required bool) error {
	if required && s == "" {
		return structerr.NewInvalidArgument("ledger entry needs %s", name)
	}
	if len(s) > maxFieldLen {
		return structerr.NewInvalidArgument("ledger entry %s is longer than %d bytes", name, maxFieldLen)
	}
	if !utf8.ValidString(s) || bytes.IndexByte([]byte(s), 0) >= 0 {
		return structerr.NewInvalidArgument("ledger entry %s is not valid text", name)
	}
	return nil
}

func normaliseUUID(name, s string) (string, error) {
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return "", structerr.NewInvalidArgument("ledger entry %s %.40q is not a UUID", name, s)
	}
	return u.String(), nil
}

// newRecord validates e and turns it into a record without its place in the
// chain (Seq, PrevHash, LeafHash are filled by Append).
func newRecord(e Entry, now time.Time) (Record, error) {
	if !validCountyCode(e.CountyCode) {
		return Record{}, structerr.NewInvalidArgument("ledger entry needs a 6-digit county code, not %.40q", e.CountyCode)
	}
	r := Record{
		CountyCode:    e.CountyCode,
		ActorRole:     e.ActorRole,
		ActorNodeCode: e.ActorNodeCode,
		Action:        e.Action,
		SubjectType:   e.SubjectType,
		SubjectID:     e.SubjectID,
		NodeCode:      e.NodeCode,
	}
	if e.ActorID != "" {
		id, err := normaliseUUID("actor id", e.ActorID)
		if err != nil {
			return Record{}, err
		}
		r.ActorID = id
	} else if r.ActorRole == "" {
		r.ActorRole = SystemActor
	}
	for _, f := range []struct {
		name     string
		v        string
		required bool
	}{
		{"actor role", r.ActorRole, true},
		{"actor node code", r.ActorNodeCode, false},
		{"action", r.Action, true},
		{"subject type", r.SubjectType, true},
		{"subject id", r.SubjectID, true},
		{"node code", r.NodeCode, false},
	} {
		if err := checkText(f.name, f.v, f.required); err != nil {
			return Record{}, err
		}
	}
	if len(e.Responsible) > maxResponsible {
		return Record{}, structerr.NewInvalidArgument("ledger entry names more than %d responsible people", maxResponsible)
	}
	for _, p := range e.Responsible {
		id, err := normaliseUUID("responsible person id", p.PersonID)
		if err != nil {
			return Record{}, err
		}
		for _, f := range []struct{ name, v string }{{"responsible name", p.Name}, {"responsible role", p.Role}, {"responsible node code", p.NodeCode}} {
			if err := checkText(f.name, f.v, false); err != nil {
				return Record{}, err
			}
		}
		p.PersonID = id
		r.Responsible = append(r.Responsible, p)
	}
	payload, err := CanonicalJSON(e.Payload)
	if err != nil {
		return Record{}, structerr.NewInvalidArgument("ledger entry payload cannot be encoded as JSON: %v", err)
	}
	if len(payload) > maxPayloadLen {
		return Record{}, structerr.NewInvalidArgument("ledger entry payload is larger than %d bytes", maxPayloadLen)
	}
	r.Payload = payload
	at := e.At
	if at.IsZero() {
		at = now
	}
	// PostgreSQL keeps microseconds; hash what is stored.
	r.RecordedAt = at.UTC().Truncate(time.Microsecond)
	if y := r.RecordedAt.Year(); y < 1970 || y > 9999 {
		return Record{}, structerr.NewInvalidArgument("ledger entry time %s is out of range", r.RecordedAt.Format(time.RFC3339))
	}
	return r, nil
}

// people returns the distinct person ids a record concerns and whether each
// is its actor, for the record_people index.
func (r *Record) people() (ids []string, asActor []bool) {
	seen := map[string]int{}
	if r.ActorID != "" {
		seen[r.ActorID] = 0
		ids, asActor = append(ids, r.ActorID), append(asActor, true)
	}
	for _, p := range r.Responsible {
		if _, ok := seen[p.PersonID]; ok {
			continue
		}
		seen[p.PersonID] = len(ids)
		ids, asActor = append(ids, p.PersonID), append(asActor, false)
	}
	return ids, asActor
}

func (r *Record) String() string {
	return fmt.Sprintf("%s#%d %s %s/%s", r.CountyCode, r.Seq, r.Action, r.SubjectType, r.SubjectID)
}
