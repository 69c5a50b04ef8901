package ledger

import (
	"context"
	"fmt"
	"math/bits"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/mod/sumdb/tlog"
)

// Append records e as the next record of its county's chain, inside the
// caller's transaction tx: the act and its record commit or fail together.
//
// It locks the county's chain head row (SELECT … FOR UPDATE; the row is
// created on first use) until tx ends, so appends to one chain are
// serialised while other counties proceed in parallel. Call it late in the
// transaction to hold the lock briefly, and append to at most one county
// per transaction (two counties locked in opposite orders would deadlock;
// PostgreSQL would then abort one of them, which maps to Aborted).
//
// Invalid entries return an InvalidArgument error and write nothing.
func Append(ctx context.Context, tx pgx.Tx, e Entry) (Record, error) {
	rs, err := AppendMany(ctx, tx, []Entry{e})
	if err != nil {
		return Record{}, err
	}
	return rs[0], nil
}

// AppendMany records entries, in order, as the next records of their
// county's chain inside tx, as Append would one by one, but with one lock
// of the chain head and one round trip for all the rows: a transaction
// carrying many acts of one county (cased's batch of cases, the group
// commit of a Committer) holds the chain for the time of two round trips
// whatever its size. Every entry must name the same county. An invalid
// entry fails the lot with an InvalidArgument error before anything is
// written. (QueueLockHead and Head.QueueAppend let a caller fold the lock
// and the append into round trips of its own.)
func AppendMany(ctx context.Context, tx pgx.Tx, entries []Entry) ([]Record, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	// Refused before the chain is locked: an invalid batch never waits
	// for, or holds, the head (QueueAppend checks them again, cheaply).
	if _, err := checkEntries(entries, time.Now()); err != nil {
		return nil, err
	}
	head, err := lockRepaired(ctx, tx, entries[0].CountyCode)
	if err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	out, err := head.QueueAppend(b, entries)
	if err != nil {
		return nil, err
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, AppendError(out, err)
	}
	return out, nil
}

// checkEntries builds the records of entries (without their chain
// positions and hashes), refusing an invalid entry or a second chain.
func checkEntries(entries []Entry, now time.Time) ([]Record, error) {
	out := make([]Record, len(entries))
	for i, e := range entries {
		r, err := newRecord(e, now)
		if err != nil {
			return nil, err
		}
		if i > 0 && r.CountyCode != out[0].CountyCode {
			return nil, fmt.Errorf("ledger: one append of chains %s and %s", out[0].CountyCode, r.CountyCode)
		}
		out[i] = r
	}
	return out, nil
}

// lockRepaired locks county's chain head in tx (one round trip) and
// repairs its frontier if it must, ready for one append.
func lockRepaired(ctx context.Context, tx pgx.Tx, county string) (*Head, error) {
	b := &pgx.Batch{}
	lock := QueueLockHead(b, county)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		if _, lerr := lock(); lerr != err {
			err = fmt.Errorf("ledger: locking chain %s: %w", county, err)
		}
		return nil, err
	}
	head, err := lock()
	if err != nil {
		return nil, err
	}
	if err := head.Repair(ctx, tx); err != nil {
		return nil, err
	}
	return head, nil
}

// advanceHead moves a chain's head past a batch's last record, which the
// trigger checks is there (migration 00022); QueueAppend and BulkAppend
// both end with it.
const advanceHead = `UPDATE ledger.chains SET size = $2, head_hash = $3, frontier = $4, updated_at = now() WHERE county_code = $1`

// AppendError wraps the error of sending the statements QueueAppend
// queued for out, naming the records.
func AppendError(out []Record, err error) error {
	switch len(out) {
	case 0:
		return fmt.Errorf("ledger: appending: %w", err)
	case 1:
		return fmt.Errorf("ledger: appending %s: %w", out[0].String(), err)
	}
	return fmt.Errorf("ledger: appending %s to %s: %w", out[0].String(), out[len(out)-1].String(), err)
}

// Head is a chain's head locked by the current transaction (QueueLockHead),
// from which QueueAppend queues the next records. It is only good inside
// that transaction, and for one QueueAppend.
type Head struct {
	county   string
	size     int64
	hash     tlog.Hash
	frontier []tlog.Hash
	used     bool
}

// Size is the number of records of the chain when it was locked.
func (h *Head) Size() int64 { return h.size }

// QueueLockHead queues on b the statements that create county's chain on
// first use and lock its head until the transaction ends (SELECT … FOR
// UPDATE). Once b's results have been read (BatchResults.Close runs the
// queued callbacks), the returned function gives the locked head. A
// caller can so lock the chain in the round trip of its own statements:
// queued after them, the lock is held from the end of that round trip.
func QueueLockHead(b *pgx.Batch, county string) func() (*Head, error) {
	var head *Head
	err := fmt.Errorf("ledger: chain %s: the lock of its head was not read", county)
	b.Queue(`INSERT INTO ledger.chains (county_code, frontier) VALUES ($1, '\x') ON CONFLICT DO NOTHING`, county).Exec(func(pgconn.CommandTag) error {
		return nil
	})
	b.Queue(`SELECT size, head_hash, frontier FROM ledger.chains WHERE county_code = $1 FOR UPDATE`, county).QueryRow(func(row pgx.Row) error {
		var size int64
		var h, front []byte
		if err = row.Scan(&size, &h, &front); err != nil {
			err = fmt.Errorf("ledger: locking chain %s: %w", county, err)
			return err
		}
		head, err = newHead(county, size, h, front)
		return err
	})
	return func() (*Head, error) { return head, err }
}

func newHead(county string, size int64, head, front []byte) (*Head, error) {
	h := &Head{county: county, size: size}
	if size > 0 {
		if len(head) != tlog.HashSize {
			return nil, fmt.Errorf("ledger: chain %s head hash is damaged", county)
		}
		copy(h.hash[:], head)
	}
	if front != nil && len(front)%tlog.HashSize == 0 {
		h.frontier = make([]tlog.Hash, len(front)/tlog.HashSize, len(front)/tlog.HashSize+1)
		for i := range h.frontier {
			copy(h.frontier[i][:], front[i*tlog.HashSize:])
		}
	}
	return h, nil
}

// NeedsRepair reports whether the head's stored frontier is missing or
// damaged (a chain written before the frontier column), so that Repair
// must read it before QueueAppend.
func (h *Head) NeedsRepair() bool { return !frontierFits(h.frontier, h.size) }

// Repair rebuilds a missing or damaged frontier from the stored tree
// hashes (one read, once per chain); it does nothing when the frontier is
// sound.
func (h *Head) Repair(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}) error {
	if !h.NeedsRepair() {
		return nil
	}
	f, err := readHashes(ctx, q, h.county, frontierIndexes(h.size))
	if err != nil {
		return fmt.Errorf("ledger: reading the frontier of chain %s: %w", h.county, err)
	}
	h.frontier = f
	return nil
}

// QueueAppend computes the records of entries as the next records of the
// locked chain and queues on b the statements that store them and advance
// the head (one statement per table). The records are written when b is
// sent in the transaction that locked the head, which may queue its COMMIT
// after them. Every entry must be of the head's chain; an invalid entry
// fails the lot with an InvalidArgument error before anything is queued.
func (h *Head) QueueAppend(b *pgx.Batch, entries []Entry) ([]Record, error) {
	out, rows, err := h.place(entries)
	if err != nil || len(out) == 0 {
		return out, err
	}
	county := h.county
	b.Queue(`INSERT INTO ledger.records (county_code, seq, recorded_at, actor_id, actor_role, actor_node_code,
		action, subject_type, subject_id, node_code, responsible, payload, prev_hash, leaf_hash)
		SELECT $1, t.seq, t.at, t.actor::uuid, t.role, t.actor_node, t.action, t.stype, t.sid, t.node, t.resp::jsonb, t.payload, t.prev, t.leaf
		FROM unnest($2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
			$10::text[], $11::text[], $12::bytea[], $13::bytea[], $14::bytea[])
			AS t(seq, at, actor, role, actor_node, action, stype, sid, node, resp, payload, prev, leaf)`,
		county, rows.seqs, rows.times, rows.actors, rows.roles, rows.actorNodes, rows.actions, rows.types, rows.ids,
		rows.nodes, rows.responsible, rows.payloads, rows.prevs, rows.leaves)
	if len(rows.pPerson) > 0 {
		b.Queue(`INSERT INTO ledger.record_people (person_id, county_code, seq, as_actor)
			SELECT p, $2, s, a FROM unnest($1::uuid[], $3::bigint[], $4::boolean[]) AS t(p, s, a)`,
			rows.pPerson, county, rows.pSeq, rows.pActor)
	}
	b.Queue(`INSERT INTO ledger.tree_hashes (county_code, idx, hash) SELECT $1, i, h FROM unnest($2::bigint[], $3::bytea[]) AS t(i, h)`,
		county, rows.idx, rows.hashes)
	// The head advances past the batch's last record, which the trigger
	// checks is there (migration 00022).
	b.Queue(advanceHead,
		county, rows.size, rows.head[:], frontierBytes(rows.frontier))
	return out, nil
}

// appendRows are the rows of a batch of records placed at the head of
// their chain: the columns of ledger.records, record_people and
// tree_hashes, and the chain head after them. QueueAppend and BulkAppend
// both write exactly these, so a chain loaded either way is the same.
type appendRows struct {
	seqs                                   []int64
	times                                  []time.Time
	actors                                 []*string
	roles, actorNodes, actions, types, ids []string
	nodes, responsible                     []string
	payloads, prevs, leaves                [][]byte
	pPerson                                []string
	pSeq                                   []int64
	pActor                                 []bool
	idx                                    []int64
	hashes                                 [][]byte
	size                                   int64
	head                                   tlog.Hash
	frontier                               []tlog.Hash
}

// place validates entries as the next records of the locked chain and
// computes their sequence numbers, previous and leaf hashes, the people
// they name and the Merkle tree's new stored hashes. It uses the head up:
// one placement per lock.
func (h *Head) place(entries []Entry) ([]Record, *appendRows, error) {
	if len(entries) == 0 {
		return nil, nil, nil
	}
	if h.used {
		return nil, nil, fmt.Errorf("ledger: chain %s: one append per lock of its head", h.county)
	}
	if h.NeedsRepair() {
		return nil, nil, fmt.Errorf("ledger: chain %s: its frontier needs Repair before an append", h.county)
	}
	out, err := checkEntries(entries, time.Now())
	if err != nil {
		return nil, nil, err
	}
	if out[0].CountyCode != h.county {
		return nil, nil, fmt.Errorf("ledger: an entry of chain %s appended to chain %s", out[0].CountyCode, h.county)
	}
	h.used = true
	size, head, frontier := h.size, h.hash, h.frontier
	// One statement per table for the whole batch: the rows go as arrays.
	n := len(out)
	var (
		seqs                                   = make([]int64, n)
		times                                  = make([]time.Time, n)
		actors                                 = make([]*string, n)
		roles, actorNodes, actions, types, ids = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		nodes, responsible                     = make([]string, n), make([]string, n)
		payloads, prevs, leaves                = make([][]byte, n), make([][]byte, n), make([][]byte, n)
		pPerson                                []string
		pSeq                                   []int64
		pActor                                 []bool
		idx                                    []int64
		hashes                                 [][]byte
	)
	for i := range out {
		r := &out[i]
		r.Seq = size
		r.PrevHash = head
		r.LeafHash = r.ComputeLeafHash()
		// Pushing the leaf onto the frontier merges equal-sized subtrees;
		// the leaf and each merged root are exactly tlog's stored hashes
		// of the record (tlog.StoredHashes), at consecutive indexes.
		first := tlog.StoredHashIndex(0, r.Seq)
		idx, hashes = append(idx, first), append(hashes, r.LeafHash[:])
		frontier = append(frontier, r.LeafHash)
		for m := size + 1; m&1 == 0; m >>= 1 {
			k := len(frontier)
			frontier[k-2] = nodeHash(frontier[k-2], frontier[k-1])
			frontier = frontier[:k-1]
			root := frontier[k-2] // a copy: the frontier's slots are reused
			idx, hashes = append(idx, idx[len(idx)-1]+1), append(hashes, root[:])
		}
		seqs[i], times[i] = r.Seq, r.RecordedAt
		if r.ActorID != "" {
			actors[i] = &r.ActorID
		}
		roles[i], actorNodes[i], actions[i], types[i], ids[i] = r.ActorRole, r.ActorNodeCode, r.Action, r.SubjectType, r.SubjectID
		nodes[i], responsible[i] = r.NodeCode, string(responsibleJSON(r.Responsible))
		payloads[i], prevs[i], leaves[i] = r.Payload, r.PrevHash[:], r.LeafHash[:]
		people, asActor := r.people()
		for k := range people {
			pPerson, pSeq, pActor = append(pPerson, people[k]), append(pSeq, r.Seq), append(pActor, asActor[k])
		}
		size++
		head = r.LeafHash
	}
	return out, &appendRows{seqs: seqs, times: times, actors: actors, roles: roles, actorNodes: actorNodes, actions: actions, types: types, ids: ids,
		nodes: nodes, responsible: responsible, payloads: payloads, prevs: prevs, leaves: leaves,
		pPerson: pPerson, pSeq: pSeq, pActor: pActor, idx: idx, hashes: hashes, size: size, head: head, frontier: frontier}, nil
}

// frontierIndexes are the stored-hash indexes of the roots of the perfect
// subtrees that cover records [0, n), largest first: the Merkle frontier.
func frontierIndexes(n int64) []int64 {
	var idx []int64
	var start int64
	for level := 62; level >= 0; level-- {
		if n&(1<<level) != 0 {
			idx = append(idx, tlog.StoredHashIndex(level, start>>level))
			start += 1 << level
		}
	}
	return idx
}

// frontierFits reports whether f can be the frontier of n records: one
// hash per set bit of n (an empty frontier only for an empty chain).
func frontierFits(f []tlog.Hash, n int64) bool {
	return f != nil && len(f) == bits.OnesCount64(uint64(n))
}

func frontierBytes(f []tlog.Hash) []byte {
	b := make([]byte, 0, len(f)*tlog.HashSize)
	for _, h := range f {
		b = append(b, h[:]...)
	}
	return b
}

// txHashReader reads stored tree hashes of one chain.
func txHashReader(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, county string) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		return readHashes(ctx, q, county, indexes)
	})
}

func readHashes(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, county string, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	if len(indexes) == 0 {
		return out, nil
	}
	pos := make(map[int64][]int, len(indexes))
	for i, x := range indexes {
		pos[x] = append(pos[x], i)
	}
	rows, err := q.Query(ctx, `SELECT idx, hash FROM ledger.tree_hashes WHERE county_code = $1 AND idx = ANY($2)`, county, indexes)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := 0
	for rows.Next() {
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			return nil, err
		}
		if len(h) != tlog.HashSize {
			return nil, fmt.Errorf("ledger: stored hash %d of chain %s is damaged", idx, county)
		}
		for _, i := range pos[idx] {
			copy(out[i][:], h)
			found++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if found != len(indexes) {
		return nil, fmt.Errorf("ledger: chain %s is missing stored tree hashes", county)
	}
	return out, nil
}
