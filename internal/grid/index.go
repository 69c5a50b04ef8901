package grid

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tidwall/rtree"
	"github.com/twpayne/go-geom"
)

// NotifyChannel is the PostgreSQL channel the grid.nodes trigger notifies
// with the latest change_seq after every write.
const NotifyChannel = "grid_nodes_changed"

// Index answers "which cell is this point in" from memory: an R-tree per
// level over the bounding boxes of every current polygon, then an exact
// point-in-polygon test that respects holes. It is an immutable snapshot
// swapped atomically on change, so Locate never takes a lock.
//
// Every gridd replica keeps its Index in step with grid.nodes by Run: it
// LISTENs on NotifyChannel and fetches the rows whose change_seq is above
// the last one seen (writers serialise on an advisory lock, so change_seq
// order is commit order), and polls max(change_seq) as a fallback, so a
// change made through any replica is visible everywhere within a second.
type Index struct {
	snap atomic.Pointer[snapshot]
	pool *pgxpool.Pool
	log  *slog.Logger

	refreshMu sync.Mutex // one refresh at a time
	ready     chan struct{}
	readyOnce sync.Once
	metrics   indexMetrics
	// PollInterval is how often Run checks max(change_seq) when no
	// notification arrives (default 500 ms).
	PollInterval time.Duration
}

type snapshot struct {
	seq    int64
	levels []Level // levels present, deepest first
	trees  map[Level]*boxTree
	nodes  map[uuid.UUID]*indexNode
	arena  *loadArena // during a full load only
	// changes says since when each county's boundaries have been in force
	// unchanged, for LocateAt.
	changes boundaryChanges
}

type indexNode struct {
	ref    Ref
	parent uuid.UUID
	polys  []*polyEntry
	path   []Ref // from the county down to this node; shared, never modified
}

// polyEntry is one polygon of a node: its rings as one flat [x0 y0 x1 y1 …]
// slice with ring end offsets, the layout go-geom uses, so a vertex costs
// 16 bytes.
type polyEntry struct {
	node     *indexNode
	min, max [2]float64
	flat     []float64
	ends     []int // ring end offsets in flat; nil for a polygon without holes
}

// NewIndex returns an empty index reading from pool; call Load (or Run)
// before Locate answers.
func NewIndex(pool *pgxpool.Pool, logger *slog.Logger) *Index {
	if logger == nil {
		logger = slog.Default()
	}
	ix := &Index{pool: pool, log: logger, PollInterval: 500 * time.Millisecond, ready: make(chan struct{})}
	ix.snap.Store(&snapshot{trees: map[Level]*boxTree{}, nodes: map[uuid.UUID]*indexNode{}, changes: newBoundaryChanges()})
	return ix
}

// Seq returns the change_seq the index reflects.
func (ix *Index) Seq() int64 { return ix.snap.Load().seq }

// Len returns the number of nodes indexed.
func (ix *Index) Len() int { return len(ix.snap.Load().nodes) }

// Locate returns the deepest current node whose area covers the WGS-84
// point, with its ancestors. Points on an edge shared by two cells resolve
// to exactly one of them: the crossing test is half-open (a cell owns its
// west and south edges) and computes every edge's crossing in a canonical
// direction, so the two cells sharing an edge agree bit for bit. A point
// on the outer boundary of the grid, which no half-open test claims, goes
// to the covering cell with the smallest code.
func (ix *Index) Locate(lat, lon float64) (Location, bool) {
	return ix.snap.Load().locate(lat, lon)
}

func (s *snapshot) locate(lat, lon float64) (Location, bool) {
	for _, l := range s.levels {
		if n := s.locateLevel(l, lon, lat); n != nil {
			return s.location(n), true
		}
	}
	return Location{}, false
}

func (s *snapshot) locateLevel(l Level, x, y float64) *indexNode {
	var hit, edge *indexNode
	lo, hi := pointBox(x, y)
	s.trees[l].Search(lo, hi, func(_, _ [2]float32, p *polyEntry) bool {
		in, on := p.contains(x, y)
		if in {
			hit = p.node
			return false
		}
		if on && (edge == nil || p.node.ref.Code < edge.ref.Code) {
			edge = p.node
		}
		return true
	})
	if hit != nil {
		return hit
	}
	return edge
}

func (s *snapshot) location(n *indexNode) Location {
	return Location{Cell: n.ref, Path: n.path}
}

// contains is the even-odd crossing test over all rings (holes included)
// with a half-open rule, plus an exact on-boundary flag.
func (p *polyEntry) contains(x, y float64) (in, on bool) {
	if p.ends == nil { // one ring, the common case: no ends to read
		return ringCrossings(p.flat, x, y, false, false)
	}
	start := 0
	for _, end := range p.ends {
		in, on = ringCrossings(p.flat[start:end], x, y, in, on)
		start = end
	}
	return in, on
}

// ringCrossings applies one ring's edges to the crossing state.
func ringCrossings(f []float64, x, y float64, in, on bool) (bool, bool) {
	for i := 0; i+3 < len(f); i += 2 {
		ax, ay, bx, by := f[i], f[i+1], f[i+2], f[i+3]
		if ay > by { // canonical direction: from lower to upper y
			ax, ay, bx, by = bx, by, ax, ay
		}
		if y < ay || y > by {
			continue
		}
		if ay == by { // horizontal edge: only "on" matters
			if y == ay && x >= min(ax, bx) && x <= max(ax, bx) {
				on = true
			}
			continue
		}
		cross := ax + (y-ay)*(bx-ax)/(by-ay)
		if cross == x {
			on = true
		}
		if y < by && x < cross { // half-open in y: [ay, by)
			in = !in
		}
	}
	return in, on
}

// Load replaces the index with every current node in the database.
func (ix *Index) Load(ctx context.Context) error {
	ix.refreshMu.Lock()
	defer ix.refreshMu.Unlock()
	return ix.loadLocked(ctx)
}

func (ix *Index) loadLocked(ctx context.Context) error {
	rows, seq, err := ix.changedSince(ctx, 0)
	if err != nil {
		return err
	}
	s := &snapshot{trees: map[Level]*boxTree{}, nodes: make(map[uuid.UUID]*indexNode, len(rows)), arena: newLoadArena(rows), changes: newBoundaryChanges()}
	for _, r := range rows {
		s.changes.note(r)
		if !r.retired {
			s.insert(r.ref, r.parent, r.geom)
		}
	}
	s.arena = nil
	// Paths, parents first.
	all := make([]*indexNode, 0, len(s.nodes))
	for _, n := range s.nodes {
		all = append(all, n)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ref.Level < all[j].ref.Level })
	for _, n := range all {
		s.setPath(n)
	}
	s.seq = seq
	s.setLevels()
	ix.snap.Store(s)
	ix.metrics.fullLoads.Add(1)
	ix.metrics.lastCurrent.Store(time.Now().UnixNano())
	ix.readyOnce.Do(func() { close(ix.ready) })
	return nil
}

// Ready is closed once the index has been loaded: gridd reports itself
// serving only after it, so no replica answers "nowhere" while empty.
func (ix *Index) Ready() <-chan struct{} { return ix.ready }

// Refresh applies the changes committed since the index's change_seq.
// Changes to leaf cells (the common case: a village boundary) are applied
// copy-on-write to the current snapshot; a change to a node with
// descendants (a township renamed or redrawn) rebuilds the index, since
// every descendant's precomputed path changes.
func (ix *Index) Refresh(ctx context.Context) error {
	ix.refreshMu.Lock()
	defer ix.refreshMu.Unlock()
	old := ix.snap.Load()
	var newest int64
	if err := ix.pool.QueryRow(ctx, `SELECT coalesce(max(change_seq), 0) FROM grid.nodes`).Scan(&newest); err != nil {
		return fmt.Errorf("grid index: reading change_seq: %w", err)
	}
	if newest <= old.seq {
		ix.metrics.lastCurrent.Store(time.Now().UnixNano())
		return nil
	}
	rows, seq, err := ix.changedSince(ctx, old.seq)
	if err != nil {
		return err
	}
	deepest := LevelUnspecified
	if len(old.levels) > 0 {
		deepest = old.levels[0]
	}
	for _, r := range rows {
		if r.ref.Level < deepest || deepest == LevelUnspecified {
			return ix.loadLocked(ctx)
		}
	}
	// Copy on write: the R-trees copy lazily (tidwall/rtree's Copy), the
	// node map eagerly; readers keep using the old snapshot meanwhile.
	s := &snapshot{seq: seq, trees: make(map[Level]*boxTree, len(old.trees)), nodes: maps.Clone(old.nodes), changes: old.changes.clone()}
	for l, t := range old.trees {
		s.trees[l] = t.Copy()
	}
	for _, r := range rows {
		s.changes.note(r)
		s.remove(r.ref.ID)
		if !r.retired {
			s.setPath(s.insert(r.ref, r.parent, r.geom))
		}
	}
	s.setLevels()
	ix.snap.Store(s)
	ix.metrics.refreshes.Add(1)
	ix.metrics.lastCurrent.Store(time.Now().UnixNano())
	return nil
}

type changedNode struct {
	ref     Ref
	parent  uuid.UUID
	geom    *geom.MultiPolygon
	retired bool
	// changedAt is when the row's boundary took effect: its current
	// version's valid_from, or its retirement.
	changedAt time.Time
}

// changedSince reads the nodes changed after seq, in change order.
func (ix *Index) changedSince(ctx context.Context, seq int64) ([]changedNode, int64, error) {
	rows, err := ix.pool.Query(ctx, `
		SELECT id, code, level, name, coalesce(parent_id, '00000000-0000-0000-0000-000000000000'), geom, retired_at IS NOT NULL, change_seq,
			greatest(valid_from, coalesce(retired_at, valid_from))
		FROM grid.nodes WHERE change_seq > $1 ORDER BY change_seq`, seq)
	if err != nil {
		return nil, 0, fmt.Errorf("grid index: %w", err)
	}
	defer rows.Close()
	var out []changedNode
	for rows.Next() {
		var (
			c     changedNode
			cs    int64
			level int16
		)
		if err := rows.Scan(&c.ref.ID, &c.ref.Code, &level, &c.ref.Name, &c.parent, &c.geom, &c.retired, &cs, &c.changedAt); err != nil {
			return nil, 0, fmt.Errorf("grid index: %w", err)
		}
		c.ref.Level = Level(level)
		seq = max(seq, cs)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("grid index: %w", err)
	}
	return out, seq, nil
}

// setPath fills n.path from its parent's (which must be set already).
func (s *snapshot) setPath(n *indexNode) {
	var prefix []Ref
	if p, ok := s.nodes[n.parent]; ok && n.parent != uuid.Nil {
		prefix = p.path
	}
	n.path = make([]Ref, len(prefix)+1)
	copy(n.path, prefix)
	n.path[len(prefix)] = n.ref
}

func (s *snapshot) setLevels() {
	s.levels = nil
	for l, t := range s.trees {
		if t.Len() > 0 {
			s.levels = append(s.levels, l)
		}
	}
	sort.Slice(s.levels, func(i, j int) bool { return s.levels[i] > s.levels[j] })
}

func (s *snapshot) remove(id uuid.UUID) {
	n, ok := s.nodes[id]
	if !ok {
		return
	}
	t := s.trees[n.ref.Level]
	for _, p := range n.polys {
		lo, hi := outerBox(p.min, p.max)
		t.Delete(lo, hi, p)
	}
	delete(s.nodes, id)
}

func (s *snapshot) insert(ref Ref, parent uuid.UUID, mp *geom.MultiPolygon) *indexNode {
	n := &indexNode{ref: ref, parent: parent}
	t := s.trees[ref.Level]
	if t == nil {
		t = &boxTree{}
		s.trees[ref.Level] = t
	}
	for i := range mp.NumPolygons() {
		poly := mp.Polygon(i)
		flat := poly.FlatCoords()
		stride := poly.Stride()
		pe := s.arena.entry()
		pe.node = n
		pe.flat = s.arena.floats(len(flat) / stride * 2)
		if stride == 2 {
			pe.flat = append(pe.flat, flat...)
		} else { // drop Z/M
			for k := 0; k+1 < len(flat); k += stride {
				pe.flat = append(pe.flat, flat[k], flat[k+1])
			}
		}
		if rings := poly.Ends(); len(rings) > 1 { // holes: keep the ring ends
			pe.ends = s.arena.ints(len(rings))
			for _, e := range rings {
				pe.ends = append(pe.ends, e/stride*2)
			}
		}
		if len(pe.flat) < 2 {
			continue
		}
		pe.min = [2]float64{pe.flat[0], pe.flat[1]}
		pe.max = pe.min
		for k := 0; k+1 < len(pe.flat); k += 2 {
			pe.min[0], pe.min[1] = min(pe.min[0], pe.flat[k]), min(pe.min[1], pe.flat[k+1])
			pe.max[0], pe.max[1] = max(pe.max[0], pe.flat[k]), max(pe.max[1], pe.flat[k+1])
		}
		n.polys = append(n.polys, pe)
		lo, hi := outerBox(pe.min, pe.max)
		t.Insert(lo, hi, pe)
	}
	s.nodes[ref.ID] = n
	return n
}

// boxTree is the R-tree over polygon bounding boxes. Boxes are stored as
// float32 rounded outwards (half the bytes per node scanned, so fewer cache
// misses per lookup); they only filter candidates for the exact float64
// point-in-polygon test, so rounding outwards loses nothing.
type boxTree = rtree.RTreeGN[float32, *polyEntry]

func down32(v float64) float32 {
	f := float32(v)
	if float64(f) > v {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	return f
}

func up32(v float64) float32 {
	f := float32(v)
	if float64(f) < v {
		f = math.Nextafter32(f, float32(math.Inf(1)))
	}
	return f
}

// outerBox is the smallest float32 box containing [min, max].
func outerBox(min, max [2]float64) (lo, hi [2]float32) {
	return [2]float32{down32(min[0]), down32(min[1])}, [2]float32{up32(max[0]), up32(max[1])}
}

// pointBox is the float32 box around a point: every box containing the
// point intersects it.
func pointBox(x, y float64) (lo, hi [2]float32) {
	return outerBox([2]float64{x, y}, [2]float64{x, y})
}

// loadArena lays out a full load's polygons contiguously, in load order
// (code order, so neighbouring cells are mostly neighbours in memory): one
// allocation each for entries, coordinates and ring ends instead of three
// per polygon, fewer cache misses per lookup and less for the GC to trace.
type loadArena struct {
	entries []polyEntry
	coords  []float64
	ends    []int
}

func newLoadArena(rows []changedNode) *loadArena {
	var polys, coords, ends int
	for _, r := range rows {
		if r.retired || r.geom == nil {
			continue
		}
		for i := range r.geom.NumPolygons() {
			p := r.geom.Polygon(i)
			polys++
			coords += len(p.FlatCoords()) / p.Stride() * 2
			if len(p.Ends()) > 1 {
				ends += len(p.Ends())
			}
		}
	}
	return &loadArena{entries: make([]polyEntry, 0, polys), coords: make([]float64, 0, coords), ends: make([]int, 0, ends)}
}

// entry, floats and ints hand out pieces of the arena (empty slices with
// the capacity asked for), or fresh allocations without one.
func (a *loadArena) entry() *polyEntry {
	if a == nil || len(a.entries) == cap(a.entries) {
		return &polyEntry{}
	}
	a.entries = a.entries[:len(a.entries)+1]
	return &a.entries[len(a.entries)-1]
}

func (a *loadArena) floats(n int) []float64 {
	if a == nil || cap(a.coords)-len(a.coords) < n {
		return make([]float64, 0, n)
	}
	start := len(a.coords)
	a.coords = a.coords[:start+n]
	return a.coords[start : start : start+n]
}

func (a *loadArena) ints(n int) []int {
	if a == nil || cap(a.ends)-len(a.ends) < n {
		return make([]int, 0, n)
	}
	start := len(a.ends)
	a.ends = a.ends[:start+n]
	return a.ends[start : start : start+n]
}

// Node returns the indexed node's reference, for callers that only need to
// know that a current node exists and what it is called.
func (ix *Index) Node(id uuid.UUID) (Ref, bool) {
	n, ok := ix.snap.Load().nodes[id]
	if !ok {
		return Ref{}, false
	}
	return n.ref, true
}

// Run keeps the index in step with the database until ctx ends: a full
// Load, then LISTEN for change notifications with a poll of max(change_seq)
// every PollInterval as a fallback. Connection failures are retried with
// backoff; Run returns only ctx's error.
func (ix *Index) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		started := time.Now()
		err := ix.listen(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(started) > time.Minute {
			backoff = 100 * time.Millisecond // it was working: a fresh failure
		}
		ix.metrics.reconnects.Add(1)
		ix.log.Warn("grid index listener failed, retrying", slog.Any("error", err), slog.Duration("backoff", backoff))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (ix *Index) listen(ctx context.Context) error {
	pc, err := ix.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pc.Hijack() // a dedicated connection, closed when listening ends
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{NotifyChannel}.Sanitize()); err != nil {
		return err
	}
	// Load after LISTEN so that no change falls between the two.
	if ix.Seq() == 0 {
		if err := ix.Load(ctx); err != nil {
			return err
		}
	} else if err := ix.Refresh(ctx); err != nil {
		return err
	}
	ix.log.Info("grid index loaded", slog.Int("nodes", ix.Len()), slog.Int64("change_seq", ix.Seq()))
	poll := ix.PollInterval
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, poll)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if seq, perr := strconv.ParseInt(n.Payload, 10, 64); perr == nil && seq <= ix.Seq() {
				continue
			}
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			// poll: fall through to Refresh, which checks max(change_seq)
		default:
			return err
		}
		if err := ix.Refresh(ctx); err != nil {
			return err
		}
	}
}
