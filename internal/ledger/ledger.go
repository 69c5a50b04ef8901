package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"ecogrid/internal/database"
	"ecogrid/internal/structerr"
)

// Config configures the ledger's checkpointing.
type Config struct {
	// CheckpointInterval is how often RunCheckpointer signs every chain that
	// grew (0: DefaultCheckpointInterval).
	CheckpointInterval time.Duration
	// WitnessDir, when set, is a directory outside the database where the
	// latest checkpoint of each chain is kept (<county>.checkpoint). A new
	// checkpoint must extend it, so a database restored from an older backup
	// is refused instead of being signed into a fork, and VerifyChain checks
	// the chain against it.
	WitnessDir string
}

// DefaultCheckpointInterval is the checkpoint cadence when none is set.
const DefaultCheckpointInterval = 5 * time.Minute

// Ledger signs checkpoints and verifies and reads the chains. Appending
// needs no Ledger: it is the package function Append, run in the caller's
// transaction.
type Ledger struct {
	pool   *pgxpool.Pool
	keys   *Keys
	cfg    Config
	logger *slog.Logger
	// verifying admits one VerifyChain at a time: each holds three pool
	// connections for minutes on a large chain.
	verifying chan struct{}
}

// New returns a Ledger over pool. keys may hold no signer (verification and
// reading only).
func New(pool *pgxpool.Pool, keys *Keys, cfg Config, logger *slog.Logger) *Ledger {
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if keys == nil {
		keys = &Keys{}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Ledger{pool: pool, keys: keys, cfg: cfg, logger: logger, verifying: make(chan struct{}, 1)}
}

// Keys returns the ledger's keys.
func (l *Ledger) Keys() *Keys { return l.keys }

// checkpointLockKey namespaces the advisory lock taken while a chain is
// checkpointed, so replicas do not sign the same chain twice at once.
const checkpointLockKey = "ecogrid.ledger.checkpoint/"

// Checkpoint signs the current size and root of a county's chain, unless the
// latest checkpoint already covers it (then that one is returned).
//
// Before signing it re-verifies every record added since the previous
// checkpoint (content, links, and the stored tree hashes recomputed from
// them), and proves with tlog.ProveTree/CheckTree that the new tree extends
// the previous checkpoint and the witnessed one, so a tampered or
// rolled-back chain is refused, never signed.
func (l *Ledger) Checkpoint(ctx context.Context, county string) (Checkpoint, error) {
	signer := l.keys.Signer()
	if signer == nil {
		return Checkpoint{}, structerr.NewFailedPrecondition("%s", ErrNoSigningKey.Error())
	}
	if !validCountyCode(county) {
		return Checkpoint{}, structerr.NewInvalidArgument("a ledger chain is named by a 6-digit county code, not %.40q", county)
	}
	var out Checkpoint
	err := database.InTx(ctx, l.pool, func(tx pgx.Tx) error {
		var err error
		out, err = l.checkpointTx(ctx, tx, county, signer)
		return err
	})
	if errors.Is(err, errAlreadyCheckpointed) {
		return out, nil
	}
	if err != nil {
		return Checkpoint{}, err
	}
	if err := l.writeWitness(out); err != nil {
		// The checkpoint is committed and valid; the witness lags one behind
		// until the next one. Loud, because the rollback guard depends on it.
		l.logger.Error("ledger_witness_write_failed", slog.String("county_code", county), slog.Any("error", err))
	}
	checkpointsSigned.Inc()
	l.logger.Info("ledger_checkpoint_signed", slog.String("county_code", county), slog.Int64("size", out.Size), slog.String("key_name", out.KeyName))
	return out, nil
}

// checkpointTx is Checkpoint inside its transaction, holding the chain's
// checkpoint lock: read the head, gather what the new tree must extend,
// verify what was added since, prove the extension, sign and store. It
// returns errAlreadyCheckpointed with the covering checkpoint when the
// chain has not grown.
func (l *Ledger) checkpointTx(ctx context.Context, tx pgx.Tx, county string, signer note.Signer) (Checkpoint, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, checkpointLockKey+county); err != nil {
		return Checkpoint{}, err
	}
	// Records below the committed head are immutable, so READ COMMITTED
	// reads below size are stable.
	size, head, err := chainHead(ctx, tx, county)
	if err != nil {
		return Checkpoint{}, err
	}
	if size == 0 {
		return Checkpoint{}, structerr.NewFailedPrecondition("the ledger of county %s has no records yet", county)
	}
	prevs, last, err := l.priorCheckpoints(ctx, tx, county, size)
	if err != nil {
		return Checkpoint{}, err
	}
	from := int64(0)
	for _, p := range prevs {
		from = max(from, p.Size)
	}
	if last != nil && last.Size == size {
		if prevs[0].Root != mustRoot(ctx, tx, county, size) {
			return Checkpoint{}, l.refuse(county, size, "the stored tree no longer matches its latest checkpoint")
		}
		return prevs[0], errAlreadyCheckpointed
	}
	if err := verifyRange(ctx, tx, county, from, size, head); err != nil {
		var d *Defect
		if errors.As(err, &d) {
			return Checkpoint{}, l.refuse(county, size, d.Error())
		}
		return Checkpoint{}, err
	}
	r := txHashReader(ctx, tx, county)
	root, err := tlog.TreeHash(size, r)
	if err != nil {
		return Checkpoint{}, err
	}
	if err := l.proveExtends(county, size, root, prevs, r); err != nil {
		return Checkpoint{}, err
	}
	cp, err := signCheckpoint(signer, county, size, root)
	if err != nil {
		return Checkpoint{}, err
	}
	cp.CreatedAt = nowMicro()
	if last != nil {
		cp.PrevSize = last.Size
		if cp.Proof, err = tlog.ProveTree(size, last.Size, r); err != nil {
			return Checkpoint{}, err
		}
	}
	if err := insertCheckpoint(ctx, tx, cp); err != nil {
		return Checkpoint{}, err
	}
	return cp, nil
}

// priorCheckpoints returns the checkpoints a new tree of size records must
// extend: the latest stored one (first, when there is one; also returned
// as last) and the witnessed one when it differs. A stored checkpoint that
// does not verify, or one larger than the chain (a rolled-back database),
// refuses the chain.
func (l *Ledger) priorCheckpoints(ctx context.Context, tx pgx.Tx, county string, size int64) (prevs []Checkpoint, last *storedCheckpoint, err error) {
	stored, haveLast, err := latestCheckpoint(ctx, tx, county)
	if err != nil {
		return nil, nil, err
	}
	if haveLast {
		last = &stored
		cp, err := OpenCheckpoint(last.Note, l.keys.Verifiers())
		if err != nil || !sameCheckpoint(cp, last.Checkpoint) {
			return nil, nil, l.refuse(county, size, fmt.Sprintf("its latest stored checkpoint (size %d) does not verify", last.Size))
		}
		cp.PrevSize, cp.CreatedAt = last.PrevSize, last.CreatedAt
		prevs = append(prevs, cp)
	}
	if w, ok, err := l.readWitness(county); err != nil {
		return nil, nil, l.refuse(county, size, "its witnessed checkpoint does not verify: "+err.Error())
	} else if ok && (!haveLast || !sameCheckpoint(w, last.Checkpoint)) {
		prevs = append(prevs, w)
	}
	for _, p := range prevs {
		if p.Size > size {
			return nil, nil, l.refuse(county, size, fmt.Sprintf("a checkpoint of %d records was signed but the chain has %d: the database was rolled back", p.Size, size))
		}
	}
	return prevs, last, nil
}

// proveExtends refuses a tree (size, root) that does not extend every one
// of prevs: same root at the same size, else a consistency proof.
func (l *Ledger) proveExtends(county string, size int64, root tlog.Hash, prevs []Checkpoint, r tlog.HashReader) error {
	for _, p := range prevs {
		if p.Size == size {
			if p.Root != root {
				return l.refuse(county, size, fmt.Sprintf("fork: the chain's root differs from the checkpoint of size %d", size))
			}
			continue
		}
		proof, err := tlog.ProveTree(size, p.Size, r)
		if err != nil {
			return err
		}
		if tlog.CheckTree(proof, size, root, p.Size, p.Root) != nil {
			return l.refuse(county, size, fmt.Sprintf("fork: the chain does not extend the checkpoint of size %d", p.Size))
		}
	}
	return nil
}

var errAlreadyCheckpointed = errors.New("already checkpointed")

func mustRoot(ctx context.Context, tx pgx.Tx, county string, size int64) tlog.Hash {
	h, err := tlog.TreeHash(size, txHashReader(ctx, tx, county))
	if err != nil {
		return tlog.Hash{}
	}
	return h
}

// refuse logs a chain that cannot be signed (tampering or rollback) and
// returns the error the caller sees.
func (l *Ledger) refuse(county string, size int64, why string) error {
	checkpointsRefused.Inc()
	l.logger.Error("ledger_checkpoint_refused", slog.String("county_code", county), slog.Int64("size", size), slog.String("reason", why))
	return structerr.NewFailedPrecondition("the ledger of county %s cannot be checkpointed: %s", county, why)
}

// verifyChunk is how many records verifyRange holds in memory at once.
const verifyChunk = 4096

// verifyRange re-verifies records [from, to) of a chain: continuity, links,
// leaf hashes against their content, the head hash, and the stored tree
// hashes of the range against ones recomputed from the leaves. It returns a
// *Defect for a tampered chain.
func verifyRange(ctx context.Context, tx pgx.Tx, county string, from, to int64, head tlog.Hash) error {
	prev, err := leafBefore(ctx, tx, county, from)
	if err != nil {
		return err
	}
	dbReader := txHashReader(ctx, tx, county)
	var buf []byte
	for lo := from; lo < to; lo += verifyChunk {
		hi := min(lo+verifyChunk, to)
		var leaves []tlog.Hash
		if leaves, prev, buf, err = verifyLeaves(ctx, tx, county, lo, hi, prev, buf); err != nil {
			return err
		}
		computed, err := recomputeStoredHashes(lo, leaves, dbReader)
		if err != nil {
			return err
		}
		if err := compareStoredHashes(ctx, tx, county, tlog.StoredHashIndex(0, lo), computed); err != nil {
			return err
		}
	}
	if to > 0 && prev != head {
		return &Defect{Seq: to - 1, Reason: "the chain head does not point at the last record"}
	}
	return nil
}

// leafBefore is the leaf hash of record from-1, which record from must
// link to (zero for the first record).
func leafBefore(ctx context.Context, tx pgx.Tx, county string, from int64) (tlog.Hash, error) {
	var prev tlog.Hash
	if from == 0 {
		return prev, nil
	}
	var h []byte
	if err := tx.QueryRow(ctx, `SELECT leaf_hash FROM ledger.records WHERE county_code = $1 AND seq = $2`, county, from-1).Scan(&h); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return prev, &Defect{Seq: from - 1, Reason: "record is missing"}
		}
		return prev, err
	}
	copy(prev[:], h)
	return prev, nil
}

// verifyLeaves checks records [lo, hi): none missing, each leaf hash
// recomputed from its content, each linked to the one before (prev). It
// returns their leaf hashes and the last one; buf is reused between calls.
func verifyLeaves(ctx context.Context, tx pgx.Tx, county string, lo, hi int64, prev tlog.Hash, buf []byte) ([]tlog.Hash, tlog.Hash, []byte, error) {
	leaves := make([]tlog.Hash, 0, hi-lo)
	n := lo
	err := forEachRecord(ctx, tx, county, lo, hi, func(r *Record) error {
		if r.Seq != n {
			return &Defect{Seq: n, Reason: "record is missing"}
		}
		var leaf tlog.Hash
		leaf, buf = r.leafHash(buf)
		if leaf != r.LeafHash {
			return &Defect{Seq: n, Reason: "its content differs from what was recorded (leaf hash mismatch)"}
		}
		if r.PrevHash != prev {
			return &Defect{Seq: max(n-1, 0), Reason: fmt.Sprintf("record %d does not follow record %d", n, n-1)}
		}
		leaves = append(leaves, leaf)
		prev = leaf
		n++
		return nil
	})
	if err == nil && n != hi {
		err = &Defect{Seq: n, Reason: "record is missing"}
	}
	return leaves, prev, buf, err
}

// recomputeStoredHashes computes the stored tree hashes that records
// lo, lo+1, … add, from their leaves. Hashes of older records come from
// the database (verified in earlier chunks, or covered by the consistency
// proof against the previous checkpoint).
func recomputeStoredHashes(lo int64, leaves []tlog.Hash, db tlog.HashReader) ([]tlog.Hash, error) {
	base := tlog.StoredHashIndex(0, lo)
	computed := make([]tlog.Hash, 0, 2*len(leaves))
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		var miss []int64
		var missAt []int
		for i, x := range idx {
			if x >= base && x-base < int64(len(computed)) {
				out[i] = computed[x-base]
			} else {
				miss, missAt = append(miss, x), append(missAt, i)
			}
		}
		if len(miss) > 0 {
			got, err := db.ReadHashes(miss)
			if err != nil {
				return nil, err
			}
			for j, i := range missAt {
				out[i] = got[j]
			}
		}
		return out, nil
	})
	for i, leaf := range leaves {
		hs, err := tlog.StoredHashesForRecordHash(lo+int64(i), leaf, reader)
		if err != nil {
			return nil, err
		}
		computed = append(computed, hs...)
	}
	return computed, nil
}

// compareStoredHashes checks the stored tree hashes from index base on
// against computed: each present and equal.
func compareStoredHashes(ctx context.Context, tx pgx.Tx, county string, base int64, computed []tlog.Hash) error {
	rows, err := tx.Query(ctx, `SELECT idx, hash FROM ledger.tree_hashes WHERE county_code = $1 AND idx >= $2 AND idx < $3 ORDER BY idx`,
		county, base, base+int64(len(computed)))
	if err != nil {
		return err
	}
	want := base
	var idx int64
	var h []byte
	_, err = pgx.ForEachRow(rows, []any{&idx, &h}, func() error {
		if idx != want || !equalHash(h, computed[idx-base]) {
			level, k := tlog.SplitStoredHashIndex(min(idx, want))
			return &Defect{Seq: k << level, Reason: "the stored Merkle tree hashes were altered"}
		}
		want++
		return nil
	})
	if err != nil {
		return err
	}
	if want != base+int64(len(computed)) {
		level, k := tlog.SplitStoredHashIndex(want)
		return &Defect{Seq: k << level, Reason: "stored Merkle tree hashes are missing"}
	}
	return nil
}

// CheckpointAll signs every chain that grew since its last checkpoint. A
// chain that cannot be signed is logged and the others still are.
func (l *Ledger) CheckpointAll(ctx context.Context) ([]Checkpoint, error) {
	rows, err := l.pool.Query(ctx, `SELECT c.county_code FROM ledger.chains c
		WHERE c.size > COALESCE((SELECT max(k.size) FROM ledger.checkpoints k WHERE k.county_code = c.county_code), 0)
		ORDER BY c.county_code`)
	if err != nil {
		return nil, err
	}
	counties, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	var out []Checkpoint
	var errs []error
	for _, c := range counties {
		cp, err := l.Checkpoint(ctx, c)
		if err != nil {
			l.logger.Error("ledger_checkpoint_failed", slog.String("county_code", c), slog.Any("error", err))
			errs = append(errs, fmt.Errorf("county %s: %w", c, err))
			continue
		}
		out = append(out, cp)
	}
	return out, errors.Join(errs...)
}

// RunCheckpointer signs grown chains every CheckpointInterval until ctx ends.
// Run it in one goroutine per process that holds the signing key; several
// replicas may run it (an advisory lock per chain keeps them apart).
func (l *Ledger) RunCheckpointer(ctx context.Context) error {
	if l.keys.Signer() == nil {
		return ErrNoSigningKey
	}
	t := time.NewTicker(l.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_, _ = l.CheckpointAll(ctx) // each failure is logged
		}
	}
}

// witnessPath is where the latest checkpoint of a chain is witnessed.
func (l *Ledger) witnessPath(county string) string {
	return filepath.Join(l.cfg.WitnessDir, county+".checkpoint")
}

// readWitness returns the witnessed checkpoint of a chain, if any.
func (l *Ledger) readWitness(county string) (Checkpoint, bool, error) {
	if l.cfg.WitnessDir == "" {
		return Checkpoint{}, false, nil
	}
	b, err := os.ReadFile(l.witnessPath(county))
	if errors.Is(err, os.ErrNotExist) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, err
	}
	cp, err := OpenCheckpoint(string(b), l.keys.Verifiers())
	if err != nil {
		return Checkpoint{}, false, err
	}
	if cp.CountyCode != county {
		return Checkpoint{}, false, fmt.Errorf("witness file of %s holds a checkpoint of %s", county, cp.CountyCode)
	}
	return cp, true, nil
}

// writeWitness replaces the witnessed checkpoint atomically (write, fsync,
// rename) when cp is larger.
func (l *Ledger) writeWitness(cp Checkpoint) error {
	if l.cfg.WitnessDir == "" {
		return nil
	}
	if w, ok, err := l.readWitness(cp.CountyCode); err == nil && ok && w.Size >= cp.Size {
		return nil
	}
	if err := os.MkdirAll(l.cfg.WitnessDir, 0o750); err != nil {
		return err
	}
	f, err := os.CreateTemp(l.cfg.WitnessDir, cp.CountyCode+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(cp.Note); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), l.witnessPath(cp.CountyCode))
}
