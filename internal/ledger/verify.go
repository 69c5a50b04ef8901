package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Defect is where a chain stops being trustworthy: the first bad sequence
// number and why.
//
// Seq is a lower bound on the first altered record, never later than it:
//   - a record whose content no longer matches its leaf hash, that does not
//     follow its predecessor, or that is missing, is reported at its own
//     seq (when a record's successor does not follow it, the record itself
//     may have been re-hashed, so its seq is reported);
//   - records that are individually consistent but do not reproduce a signed
//     checkpoint's root (the chain was rewritten and re-hashed) are reported
//     at the size of the last checkpoint that did verify: everything before
//     it is proven by a signature;
//   - a forged or conflicting checkpoint likewise at the last good one;
//   - a chain shorter than a signed checkpoint at its length, the first
//     missing seq.
type Defect struct {
	Seq    int64
	Reason string
}

func (d *Defect) Error() string { return fmt.Sprintf("ledger record %d: %s", d.Seq, d.Reason) }

// Result is the outcome of verifying one chain.
type Result struct {
	CountyCode     string
	Records        int64       // records checked before stopping
	Checkpoints    int         // signed checkpoints matched against the records
	LastCheckpoint *Checkpoint // the largest of them
	Defect         *Defect     // nil when the chain verified
}

// OK reports whether the chain verified.
func (r Result) OK() bool { return r.Defect == nil }

// Uncovered is how many of the verified records no signed checkpoint
// covers: they are chained to the signed ones, but whoever holds the
// database could still have rewritten them, so an offline audit of an
// export cannot rely on them.
func (r Result) Uncovered() int64 {
	var covered int64
	if r.LastCheckpoint != nil {
		covered = r.LastCheckpoint.Size
	}
	if covered >= r.Records {
		return 0
	}
	return r.Records - covered
}

// ChainVerifier checks one county's chain as its records stream past, in
// O(log n) memory: the leaf hash of each record recomputed from its
// content, its link to the previous record, sequence continuity, and the
// Merkle root at every checkpoint size against the signed checkpoint. It is
// shared by VerifyChain (records from the database) and the offline verifier
// (records from an export), so both apply exactly the same rules.
//
// Add every checkpoint first (AddCheckpoint), then every record in seq order
// (AddRecord), then call Finish.
type ChainVerifier struct {
	county string
	keys   note.Verifiers

	pending []*pendingCheckpoint // sorted by size once records start
	started bool
	next    int // index into pending of the next checkpoint to reach

	n        int64       // records verified
	prev     tlog.Hash   // leaf hash of record n-1
	stack    []tlog.Hash // compact range: roots of the perfect subtrees of [0, n)
	lastGood *Checkpoint
	checked  int
	defect   *Defect
	buf      []byte

	// stored, when set, is called with every stored Merkle tree hash in
	// index order (tlog.StoredHashIndex numbering) as it is recomputed, to
	// compare it with the stored copy; it returns why they differ, or "".
	stored    func(idx int64, h tlog.Hash) string
	storedIdx int64

	// baseline, when set, holds the leaf hashes of an earlier verified
	// export; every record it covers must be unchanged.
	baseline []tlog.Hash
}

type pendingCheckpoint struct {
	cp       Checkpoint
	size     int64  // parsed even when cp does not verify
	bad      string // why the checkpoint itself is not acceptable
	fork     bool   // signed, but conflicts with another of its size
	prevSize int64
	proof    tlog.TreeProof
}

// maxCheckpoints bounds the checkpoints one verification holds in memory.
const maxCheckpoints = 4 << 20

// NewChainVerifier verifies the chain of county against the trusted keys.
func NewChainVerifier(county string, keys note.Verifiers) *ChainVerifier {
	return &ChainVerifier{county: county, keys: keys}
}

// ErrTooManyCheckpoints is returned by AddCheckpoint past maxCheckpoints.
var ErrTooManyCheckpoints = errors.New("too many checkpoints in one chain")

// AddCheckpoint registers a checkpoint note (with the consistency proof from
// the chain's previous checkpoint, if any) to be matched against the
// records. A note that does not verify is not an error here: it becomes
// the chain's defect when the records reach it.
func (v *ChainVerifier) AddCheckpoint(noteText string, prevSize int64, proof tlog.TreeProof) error {
	if v.started {
		return errors.New("checkpoints must come before records")
	}
	if len(v.pending) >= maxCheckpoints {
		return ErrTooManyCheckpoints
	}
	p := &pendingCheckpoint{prevSize: prevSize, proof: proof}
	cp, err := OpenCheckpoint(noteText, v.keys)
	switch {
	case err != nil:
		p.size = peekCheckpointSize(noteText)
		p.bad = err.Error()
	case cp.CountyCode != v.county:
		p.size = cp.Size
		p.bad = fmt.Sprintf("checkpoint is for county %s, not %s", cp.CountyCode, v.county)
	default:
		p.size = cp.Size
		cp.PrevSize, cp.Proof = prevSize, proof
		p.cp = cp
	}
	v.pending = append(v.pending, p)
	return nil
}

// start sorts the checkpoints, drops exact duplicates, and marks forks:
// two signed checkpoints of one size with different roots, or one whose
// consistency proof from its predecessor fails.
func (v *ChainVerifier) start() {
	v.started = true
	slices.SortStableFunc(v.pending, func(a, b *pendingCheckpoint) int {
		switch {
		case a.size < b.size:
			return -1
		case a.size > b.size:
			return 1
		case a.bad == "" && b.bad != "":
			return -1
		case a.bad != "" && b.bad == "":
			return 1
		}
		return 0
	})
	out := v.pending[:0]
	bySize := map[int64]*pendingCheckpoint{}
	for _, p := range v.pending {
		if q, ok := bySize[p.size]; ok && p.bad == "" && (q.bad == "" || q.fork) {
			if q.cp.Root == p.cp.Root {
				continue
			}
			// Which of the two is genuine does not matter: the chain forked.
			p.bad = fmt.Sprintf("fork: two signed checkpoints of size %d with different roots", p.size)
			q.bad, q.fork, p.fork = p.bad, true, true
		}
		if _, ok := bySize[p.size]; !ok {
			bySize[p.size] = p
		}
		out = append(out, p)
	}
	v.pending = out
	for _, p := range v.pending {
		if p.bad != "" || p.prevSize <= 0 {
			continue
		}
		q, ok := bySize[p.prevSize]
		switch {
		case !ok || p.prevSize >= p.size:
			p.bad = fmt.Sprintf("its predecessor, the checkpoint of size %d, is missing", p.prevSize)
		case q.bad != "":
			// q is reported first, when the records reach it.
		case tlog.CheckTree(p.proof, p.size, p.cp.Root, q.size, q.cp.Root) != nil:
			p.bad = fmt.Sprintf("fork: not consistent with the checkpoint of size %d", q.size)
		}
	}
	v.reachCheckpoints()
}

// AddRecord checks the next record. It returns the chain's defect once one
// is found (and keeps returning it).
func (v *ChainVerifier) AddRecord(r *Record) *Defect {
	if v.defect != nil {
		return v.defect
	}
	if !v.started {
		v.start()
		if v.defect != nil {
			return v.defect
		}
	}
	switch {
	case r.Seq > v.n:
		return v.fail(v.n, fmt.Sprintf("record %d is missing (the next record present is %d)", v.n, r.Seq))
	case r.Seq < v.n:
		return v.fail(v.n, fmt.Sprintf("record %d is missing: record %d appears again in its place", v.n, r.Seq))
	case r.CountyCode != v.county:
		return v.fail(r.Seq, fmt.Sprintf("record belongs to county %.40q, not to chain %s", r.CountyCode, v.county))
	}
	var leaf tlog.Hash
	leaf, v.buf = r.leafHash(v.buf)
	if leaf != r.LeafHash {
		return v.fail(r.Seq, "its content differs from what was recorded (leaf hash mismatch)")
	}
	if r.Seq < int64(len(v.baseline)) && leaf != v.baseline[r.Seq] {
		return v.fail(r.Seq, "it differs from the same record in the baseline export (changed and re-hashed)")
	}
	if r.PrevHash != v.prev {
		if r.Seq == 0 {
			return v.fail(0, "the first record does not start the chain (its previous hash is not zero)")
		}
		return v.fail(r.Seq-1, fmt.Sprintf("record %d does not follow record %d: record %d was rewritten and re-hashed, or record %d was moved or inserted", r.Seq, r.Seq-1, r.Seq-1, r.Seq))
	}
	if bad, at := v.push(leaf); bad != "" {
		return v.fail(at, bad)
	}
	v.prev = leaf
	v.n++
	v.reachCheckpoints()
	return v.defect
}

// push appends a leaf to the compact range, merging equal-sized subtrees.
// The hashes it makes, in order, are exactly tlog's stored hashes of the
// record; they are passed to v.stored when set.
// A stored hash that differs is reported at the first record under it.
func (v *ChainVerifier) push(h tlog.Hash) (string, int64) {
	v.stack = append(v.stack, h)
	if bad := v.emit(h); bad != "" {
		return bad, v.n
	}
	span := int64(1)
	for n := v.n + 1; n&1 == 0; n >>= 1 {
		k := len(v.stack)
		v.stack[k-2] = nodeHash(v.stack[k-2], v.stack[k-1])
		v.stack = v.stack[:k-1]
		span <<= 1
		if bad := v.emit(v.stack[k-2]); bad != "" {
			return bad, v.n + 1 - span
		}
	}
	return "", 0
}

func (v *ChainVerifier) emit(h tlog.Hash) string {
	if v.stored == nil {
		return ""
	}
	bad := v.stored(v.storedIdx, h)
	v.storedIdx++
	return bad
}

// root is the RFC 6962 Merkle tree hash of the n records seen.
func (v *ChainVerifier) root() tlog.Hash {
	h := v.stack[len(v.stack)-1]
	for i := len(v.stack) - 2; i >= 0; i-- {
		h = nodeHash(v.stack[i], h)
	}
	return h
}

// reachCheckpoints checks every checkpoint of size n.
func (v *ChainVerifier) reachCheckpoints() {
	for v.defect == nil && v.next < len(v.pending) && v.pending[v.next].size <= v.n {
		p := v.pending[v.next]
		v.next++
		from := v.lastGoodSize()
		switch {
		case p.bad != "":
			v.fail(from, fmt.Sprintf("checkpoint of size %d: %s", p.size, p.bad))
		case p.size < v.n: // only size 0 can lag; OpenCheckpoint refuses it
			v.fail(from, fmt.Sprintf("checkpoint of size %d is out of order", p.size))
		case v.root() != p.cp.Root:
			v.fail(from, fmt.Sprintf("records %d to %d do not reproduce the root signed by %s at size %d: the chain was rewritten and re-hashed", from, p.size-1, p.cp.KeyName, p.size))
		default:
			cp := p.cp
			v.lastGood = &cp
			v.checked++
		}
	}
}

func (v *ChainVerifier) lastGoodSize() int64 {
	if v.lastGood == nil {
		return 0
	}
	return v.lastGood.Size
}

func (v *ChainVerifier) fail(seq int64, reason string) *Defect {
	if v.defect == nil {
		v.defect = &Defect{Seq: seq, Reason: reason}
	}
	return v.defect
}

// Finish ends the stream. size, when not negative, is the chain length the
// source claims (the chain head); a shorter stream is a missing tail. A
// signed checkpoint beyond the last record is a missing tail too.
func (v *ChainVerifier) Finish(size int64) Result {
	if !v.started {
		v.start()
	}
	if v.defect == nil && size >= 0 && size != v.n {
		if size > v.n {
			v.fail(v.n, fmt.Sprintf("the chain head says %d records but records end at %d", size, v.n))
		} else {
			v.fail(size, fmt.Sprintf("the chain head says %d records but there are %d", size, v.n))
		}
	}
	if v.defect == nil && v.next < len(v.pending) {
		p := v.pending[v.next]
		if p.bad != "" {
			v.fail(v.lastGoodSize(), fmt.Sprintf("checkpoint of size %d: %s", p.size, p.bad))
		} else {
			v.fail(v.n, fmt.Sprintf("records from %d on are missing: a checkpoint of %d records was signed by %s", v.n, p.size, p.cp.KeyName))
		}
	}
	return Result{CountyCode: v.county, Records: v.n, Checkpoints: v.checked, LastCheckpoint: v.lastGood, Defect: v.defect}
}

// equalHash compares a stored hash column with a computed hash.
func equalHash(b []byte, h tlog.Hash) bool { return bytes.Equal(b, h[:]) }
