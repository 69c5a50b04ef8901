package ledger

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"ecogrid/internal/database"
)

// Act is one act handed to a Committer: it writes the act's rows in tx and
// returns the entries that record it, all of the Committer chain's county.
// It may run more than once (its batch is rolled back and run again when
// another act of the batch fails), so it must only write through tx and
// must not depend on having run before.
type Act func(ctx context.Context, tx pgx.Tx) ([]Entry, error)

// CommitterConfig tunes a Committer. Zero values take defaults.
type CommitterConfig struct {
	// MaxBatch is the most acts of one chain in one transaction (default 128).
	MaxBatch int
	// Depth is how many transactions of one chain may be under way at
	// once (default 2): while one waits for its commit's WAL flush holding
	// the chain head, the next runs its acts and then queues on the head.
	Depth int
	// Timeout bounds one batch's transaction (default 30s).
	Timeout time.Duration
}

func (c *CommitterConfig) setDefaults() {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 128
	}
	if c.Depth <= 0 {
		c.Depth = 2
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
}

// Committer is group commit for one chain's acts: concurrent callers of Do
// for the same county have their acts run one after another in one
// transaction, their entries appended in that order with one lock of the
// chain head (AppendMany), and one commit — one WAL flush — for them all.
// The rules of Append hold unchanged: every act commits in the same
// transaction as its records, so after a crash an act is there with its
// records or not at all, and Do returns only after the commit, so nothing
// is acknowledged that is not durable. Order and hash links are those of
// the single chain head, which other processes' appends still lock.
//
// An act that fails fails alone: its batch is rolled back and the other
// acts run again in a new transaction without it. If the commit itself
// fails, every act of the batch gets the error (as a lone transaction's
// caller would, not knowing whether the commit happened).
type Committer struct {
	db  database.TxBeginner
	cfg CommitterConfig

	mu     sync.Mutex
	chains map[string]*chainQueue
}

type chainQueue struct {
	pending []*committerJob
	running int
}

type committerJob struct {
	ctx    context.Context
	act    Act
	staged *StagedAct
	recs   []Record
	err    error
	done   chan struct{}
}

// Stage is one round trip's worth of an act's statements.
type Stage struct {
	// Queue queues the stage's statements on b.
	Queue func(b *pgx.Batch) error
	// Read reads their results from br, one per statement queued, in order.
	Read func(br pgx.BatchResults) error
}

// StagedAct is an act written as statements queued in stages instead of
// run: the Committer sends stage k of every staged act of a batch in one
// round trip, so the acts of a batch cost a round trip per stage, not per
// act and statement. A later stage may use what an earlier one read (its
// Queue is called after the earlier Read). Stages is called for every run
// of the act and must build its stages afresh; Entries, called after the
// last stage, returns the act's records.
type StagedAct struct {
	Stages  func() []Stage
	Entries func() ([]Entry, error)
}

var (
	groupBatches = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "ecogrid", Subsystem: "ledger", Name: "group_commit_acts",
		Help:    "Acts committed together in one group-commit transaction of a chain.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
	})
	groupReruns = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "ecogrid", Subsystem: "ledger", Name: "group_commit_reruns_total",
		Help: "Group-commit batches rolled back and run again without an act that failed.",
	})
)

// NewCommitter returns a group committer over db.
func NewCommitter(db database.TxBeginner, cfg CommitterConfig) *Committer {
	cfg.setDefaults()
	return &Committer{db: db, cfg: cfg, chains: map[string]*chainQueue{}}
}

// Do runs act in a transaction shared with the other acts on county's
// chain at hand, appends the entries it returns and returns their records
// once that transaction has committed. If ctx ends before the act has
// started, it is not run; once started, the batch finishes (under the
// Committer's own timeout) and Do reports its outcome.
func (c *Committer) Do(ctx context.Context, county string, act Act) ([]Record, error) {
	return c.do(&committerJob{ctx: ctx, act: act, done: make(chan struct{})}, county)
}

// DoStaged is Do for an act written as stages.
func (c *Committer) DoStaged(ctx context.Context, county string, act StagedAct) ([]Record, error) {
	return c.do(&committerJob{ctx: ctx, staged: &act, done: make(chan struct{})}, county)
}

func (c *Committer) do(j *committerJob, county string) ([]Record, error) {
	c.mu.Lock()
	q := c.chains[county]
	if q == nil {
		q = &chainQueue{}
		c.chains[county] = q
	}
	q.pending = append(q.pending, j)
	if q.running < c.cfg.Depth {
		q.running++
		go c.run(county, q)
	}
	c.mu.Unlock()
	<-j.done
	return j.recs, j.err
}

// run commits batches of q until it is empty.
func (c *Committer) run(county string, q *chainQueue) {
	for {
		c.mu.Lock()
		n := min(len(q.pending), c.cfg.MaxBatch)
		if n == 0 {
			q.running--
			if q.running == 0 {
				delete(c.chains, county)
			}
			c.mu.Unlock()
			return
		}
		batch := q.pending[:n:n]
		q.pending = q.pending[n:]
		c.mu.Unlock()
		c.commit(county, batch)
	}
}

// commit runs batch in one transaction, leaving out failing acts.
func (c *Committer) commit(county string, batch []*committerJob) {
	jobs := batch[:0]
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.err = err
			close(j.done)
			continue
		}
		jobs = append(jobs, j)
	}
	for len(jobs) > 0 {
		bad, err := c.try(county, jobs)
		if bad >= 0 {
			groupReruns.Inc()
			jobs[bad].err = err
			close(jobs[bad].done)
			jobs = append(jobs[:bad:bad], jobs[bad+1:]...)
			continue
		}
		groupBatches.Observe(float64(len(jobs)))
		for _, j := range jobs {
			if err != nil {
				j.recs, j.err = nil, err
			}
			close(j.done)
		}
		return
	}
}

// try runs jobs in one transaction. It returns the index of the first act
// that failed and its error, or -1 and the error of the append or commit.
func (c *Committer) try(county string, jobs []*committerJob) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.Timeout)
	defer cancel()
	if pool, ok := c.db.(*pgxpool.Pool); ok && allStaged(jobs) {
		return tryPipelined(ctx, pool, county, jobs)
	}
	bad := -1
	var actErr error
	err := database.InTx(ctx, c.db, func(tx pgx.Tx) error {
		// Staged acts first, their stages in lockstep; then the others. The
		// records go in the order of jobs whatever order the acts ran in.
		if i, err := runStages(ctx, tx, jobs); err != nil {
			if i >= 0 {
				bad, actErr = i, err
			}
			return err
		}
		var all []Entry
		counts := make([]int, len(jobs))
		now := time.Now()
		for i, j := range jobs {
			var entries []Entry
			var err error
			if j.staged != nil {
				entries, err = j.staged.Entries()
			} else {
				entries, err = j.act(ctx, tx)
			}
			if err == nil {
				err = checkActEntries(county, entries, now)
			}
			if err != nil {
				bad, actErr = i, err
				return err
			}
			all = append(all, entries...)
			counts[i] = len(entries)
		}
		recs, err := AppendMany(ctx, tx, all)
		if err != nil {
			return err
		}
		for i, j := range jobs {
			j.recs, recs = recs[:counts[i]:counts[i]], recs[counts[i]:]
		}
		return nil
	})
	if bad >= 0 {
		return bad, actErr
	}
	return -1, err
}

// runStages runs the stages of the staged acts among jobs, stage k of
// every act in one round trip. It returns the index of the first act that
// failed and its error, or -1 and an error no act can be blamed for.
func runStages(ctx context.Context, tx pgx.Tx, jobs []*committerJob) (int, error) {
	stages := make([][]Stage, len(jobs))
	most := 0
	for i, j := range jobs {
		if j.staged != nil {
			stages[i] = j.staged.Stages()
			most = max(most, len(stages[i]))
		}
	}
	for k := range most {
		b := &pgx.Batch{}
		var owners []int
		for i := range jobs {
			if k >= len(stages[i]) {
				continue
			}
			if err := stages[i][k].Queue(b); err != nil {
				return i, err
			}
			owners = append(owners, i)
		}
		br := tx.SendBatch(ctx, b)
		for _, i := range owners {
			if err := stages[i][k].Read(br); err != nil {
				br.Close()
				return i, err
			}
		}
		if err := br.Close(); err != nil {
			return -1, err
		}
	}
	return -1, nil
}

func allStaged(jobs []*committerJob) bool {
	for _, j := range jobs {
		if j.staged == nil {
			return false
		}
	}
	return true
}

// tryPipelined is try for a batch of staged acts, as a pipelined
// transaction (database.PipeTx): BEGIN goes with the first stage, the lock
// of the chain head with the last, and the records with the COMMIT, so a
// batch of s stages costs s + 1 round trips and holds the chain for one
// round trip and the WAL flush.
func tryPipelined(ctx context.Context, pool *pgxpool.Pool, county string, jobs []*committerJob) (int, error) {
	tx, err := database.BeginPipe(ctx, pool)
	if err != nil {
		return -1, err
	}
	defer tx.Rollback(ctx)
	stages := make([][]Stage, len(jobs))
	most := 1
	for i, j := range jobs {
		stages[i] = j.staged.Stages()
		most = max(most, len(stages[i]))
	}
	var lock func() (*Head, error)
	for k := range most {
		b := &pgx.Batch{}
		var owners []int
		for i := range jobs {
			if k >= len(stages[i]) {
				continue
			}
			if err := stages[i][k].Queue(b); err != nil {
				return i, err
			}
			owners = append(owners, i)
		}
		if k == most-1 {
			lock = QueueLockHead(b, county)
		}
		bad := -1
		err := tx.SendRead(ctx, b, func(br pgx.BatchResults) error {
			for _, i := range owners {
				if err := stages[i][k].Read(br); err != nil {
					bad = i
					return err
				}
			}
			return nil
		})
		if err != nil {
			return bad, err
		}
	}
	head, err := lock()
	if err != nil {
		return -1, err
	}
	var all []Entry
	counts := make([]int, len(jobs))
	now := time.Now()
	for i, j := range jobs {
		entries, err := j.staged.Entries()
		if err == nil {
			err = checkActEntries(county, entries, now)
		}
		if err != nil {
			return i, err
		}
		all = append(all, entries...)
		counts[i] = len(entries)
	}
	if len(all) > 0 {
		if err := head.Repair(ctx, tx); err != nil {
			return -1, err
		}
	}
	b := &pgx.Batch{}
	recs, err := head.QueueAppend(b, all)
	if err != nil {
		return -1, err
	}
	if err := tx.Commit(ctx, b); err != nil {
		if len(recs) > 0 {
			err = AppendError(recs, err)
		}
		return -1, err
	}
	for i, j := range jobs {
		j.recs, recs = recs[:counts[i]:counts[i]], recs[counts[i]:]
	}
	return -1, nil
}

// checkActEntries refuses an act's entries when one is of another chain
// than county's or is not a valid record, before any is appended.
func checkActEntries(county string, entries []Entry, now time.Time) error {
	for _, e := range entries {
		if e.CountyCode != county {
			return fmt.Errorf("ledger: an act of chain %s records an entry of chain %s", county, e.CountyCode)
		}
		if _, err := newRecord(e, now); err != nil {
			return err
		}
	}
	return nil
}
