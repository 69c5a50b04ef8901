package ledger

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"

	"ecogrid/internal/structerr"
)

// RecordProof is a record with its RFC 6962 inclusion proof in the tree of
// Size records of its county's chain. Together with the signed checkpoint of
// that size it lets anyone holding the ledger's public key check, offline,
// that the record is exactly as it was recorded: VerifyRecordProof
// recomputes the leaf hash from the record's contents and the root from the
// proof, and compares it with the signed root. A report citing ledger
// records carries one RecordProof per record and one checkpoint per county.
type RecordProof struct {
	Record Record
	Size   int64            // the checkpoint size the proof is against
	Proof  tlog.RecordProof // sibling hashes, leaf to root
}

// maxProofLen bounds a decoded proof: a tree of 2^63 leaves needs 63 hashes.
const maxProofLen = 64

// LatestCheckpoint returns the largest signed checkpoint of a chain, checked
// against the ledger's trusted keys. It fails with FailedPrecondition when
// the chain has none yet.
func (l *Ledger) LatestCheckpoint(ctx context.Context, county string) (Checkpoint, error) {
	if !validCountyCode(county) {
		return Checkpoint{}, structerr.NewInvalidArgument("a ledger chain is named by a 6-digit county code, not %.40q", county)
	}
	s, ok, err := latestCheckpoint(ctx, l.pool, county)
	if err != nil {
		return Checkpoint{}, err
	}
	if !ok {
		return Checkpoint{}, structerr.NewFailedPrecondition("the ledger chain of county %s has no signed checkpoint yet", county)
	}
	cp, err := OpenCheckpoint(s.Note, l.keys.Verifiers())
	if err != nil {
		return Checkpoint{}, fmt.Errorf("ledger: stored checkpoint %s/%d: %w", county, s.Size, err)
	}
	cp.CreatedAt, cp.PrevSize = s.CreatedAt, s.PrevSize
	return cp, nil
}

// ProveRecords reads the records seqs of cp's chain and proves each one's
// inclusion in the tree that cp signs. Every seq must be below cp.Size (a
// record appended after the checkpoint cannot be proven against it yet:
// FailedPrecondition). Each proof is checked before it is returned, so a
// database whose tree hashes no longer match the signed root is refused
// here rather than handed out in a report.
func (l *Ledger) ProveRecords(ctx context.Context, cp Checkpoint, seqs []int64) ([]RecordProof, error) {
	for _, s := range seqs {
		if s < 0 || s >= cp.Size {
			return nil, structerr.NewFailedPrecondition("ledger record %s/%d is not covered by the checkpoint of size %d", cp.CountyCode, s, cp.Size)
		}
	}
	if len(seqs) == 0 {
		return nil, nil
	}
	tx, err := l.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	rows, err := tx.Query(ctx, `SELECT `+recordColumns+` FROM ledger.records r
		WHERE r.county_code = $1 AND r.seq = ANY($2) ORDER BY r.seq`, cp.CountyCode, seqs)
	if err != nil {
		return nil, err
	}
	byseq := make(map[int64]Record, len(seqs))
	for rows.Next() {
		var r Record
		if err := scanRecord(rows, &r); err != nil {
			rows.Close()
			return nil, err
		}
		byseq[r.Seq] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	hr, err := prefetchProofHashes(ctx, tx, cp, seqs)
	if err != nil {
		return nil, err
	}
	out := make([]RecordProof, 0, len(seqs))
	for _, s := range seqs {
		r, ok := byseq[s]
		if !ok {
			return nil, fmt.Errorf("ledger: record %s/%d is missing below a signed checkpoint", cp.CountyCode, s)
		}
		p, err := tlog.ProveRecord(cp.Size, s, hr)
		if err != nil {
			return nil, fmt.Errorf("ledger: proving record %s/%d: %w", cp.CountyCode, s, err)
		}
		rp := RecordProof{Record: r, Size: cp.Size, Proof: p}
		if err := VerifyRecordProof(rp, cp); err != nil {
			return nil, fmt.Errorf("ledger: chain %s does not match its signed checkpoint: %w", cp.CountyCode, err)
		}
		out = append(out, rp)
	}
	return out, nil
}

// VerifyRecordProof checks, without any database, that p.Record is record
// p.Record.Seq of the tree signed by cp (a checkpoint already opened with
// OpenCheckpoint against the trusted keys): its leaf hash is recomputed
// from its contents and the proof must lead from it to cp's root.
func VerifyRecordProof(p RecordProof, cp Checkpoint) error {
	r := &p.Record
	switch {
	case r.CountyCode != cp.CountyCode:
		return fmt.Errorf("record %s/%d is checked against the checkpoint of county %s", r.CountyCode, r.Seq, cp.CountyCode)
	case p.Size != cp.Size:
		return fmt.Errorf("record %s/%d: its proof is for a tree of %d records, the checkpoint signs %d", r.CountyCode, r.Seq, p.Size, cp.Size)
	case r.Seq < 0 || r.Seq >= cp.Size:
		return fmt.Errorf("record %s/%d is beyond the checkpoint of size %d", r.CountyCode, r.Seq, cp.Size)
	}
	leaf := r.ComputeLeafHash()
	if leaf != r.LeafHash {
		return fmt.Errorf("record %s/%d: its content differs from what was recorded (leaf hash mismatch)", r.CountyCode, r.Seq)
	}
	if err := tlog.CheckRecord(p.Proof, cp.Size, cp.Root, r.Seq, leaf); err != nil {
		return fmt.Errorf("record %s/%d: its inclusion proof does not lead to the root signed at size %d", r.CountyCode, r.Seq, cp.Size)
	}
	return nil
}

// recordProofJSON is the JSON form of a RecordProof: the record as in a
// ledger export, the checkpoint size, and the proof hashes in base64.
type recordProofJSON struct {
	Record json.RawMessage `json:"record"`
	Size   int64           `json:"checkpoint_size"`
	Proof  []string        `json:"proof"`
}

// MarshalJSON writes the record in the export layout (payload bytes as
// stored, so the leaf hash can be recomputed from the JSON).
func (p RecordProof) MarshalJSON() ([]byte, error) {
	rec, err := json.Marshal(toExportRecord(&p.Record))
	if err != nil {
		return nil, err
	}
	proof := make([]string, len(p.Proof))
	for i, h := range p.Proof {
		proof[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return json.Marshal(recordProofJSON{Record: rec, Size: p.Size, Proof: proof})
}

// UnmarshalJSON reads what MarshalJSON writes; it checks the layout only
// (VerifyRecordProof checks the contents).
func (p *RecordProof) UnmarshalJSON(b []byte) error {
	var j recordProofJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var f exportRecordFields
	if err := json.Unmarshal(j.Record, &f); err != nil {
		return fmt.Errorf("proven record: %w", err)
	}
	var r Record
	if err := f.toRecord(&r); err != nil {
		return fmt.Errorf("proven record: %w", err)
	}
	if len(j.Proof) > maxProofLen {
		return errors.New("proven record: the proof is too long")
	}
	proof := make(tlog.RecordProof, len(j.Proof))
	for i, s := range j.Proof {
		h, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(h) != tlog.HashSize {
			return errors.New("proven record: a proof hash is not a base64 SHA-256 hash")
		}
		copy(proof[i][:], h)
	}
	*p = RecordProof{Record: r, Size: j.Size, Proof: proof}
	return nil
}

// prefetchProofHashes reads, in one query, every stored tree hash that the
// proofs of seqs in the tree of cp.Size records need. Which hashes a proof
// reads depends only on the tree size and the record's index, so a first
// pass over a reader that only notes the indexes finds them all; proving
// hundreds of records then costs one round trip instead of one each.
func prefetchProofHashes(ctx context.Context, tx pgx.Tx, cp Checkpoint, seqs []int64) (tlog.HashReader, error) {
	want := map[int64]bool{}
	note := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		for _, x := range idx {
			want[x] = true
		}
		return make([]tlog.Hash, len(idx)), nil
	})
	for _, s := range seqs {
		if _, err := tlog.ProveRecord(cp.Size, s, note); err != nil {
			return nil, fmt.Errorf("ledger: proving record %s/%d: %w", cp.CountyCode, s, err)
		}
	}
	idx := make([]int64, 0, len(want))
	for x := range want {
		idx = append(idx, x)
	}
	hashes, err := readHashes(ctx, tx, cp.CountyCode, idx)
	if err != nil {
		return nil, err
	}
	byIdx := make(map[int64]tlog.Hash, len(idx))
	for i, x := range idx {
		byIdx[x] = hashes[i]
	}
	return tlog.HashReaderFunc(func(need []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(need))
		for i, x := range need {
			h, ok := byIdx[x]
			if !ok {
				return nil, fmt.Errorf("ledger: tree hash %d of chain %s was not read", x, cp.CountyCode)
			}
			out[i] = h
		}
		return out, nil
	}), nil
}
