package auth

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"ecogrid/internal/accounts"
	"ecogrid/internal/database"
	"ecogrid/internal/people"
	"ecogrid/internal/scope"
)

// NotifyChannel is the PostgreSQL channel on which the database announces,
// at commit, that a person's sessions, account or grants changed (payload:
// the person id; triggers of migrations 00038 and 00039).
const NotifyChannel = "ecogrid_auth"

// CacheConfig tunes the caller cache. Zero values take defaults.
type CacheConfig struct {
	// TTL is the longest a cached session-and-grants answer is used
	// without asking PostgreSQL again (default 15s): the safety net should
	// a change notice not arrive while the listener still looks connected.
	TTL time.Duration
	// MaxEntries bounds the cache (default 100,000 sessions); when full it
	// is emptied and refills from the database.
	MaxEntries int
}

func (c *CacheConfig) setDefaults() {
	if c.TTL <= 0 {
		c.TTL = 15 * time.Second
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = 100_000
	}
}

var (
	cacheLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "ecogrid", Subsystem: "auth", Name: "caller_cache_lookups_total",
		Help: "Authenticated calls by whether the session and grants came from the cache (hit) or PostgreSQL (miss, bypass while the listener is down).",
	}, []string{"result"})
	cacheInvalidations = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "ecogrid", Subsystem: "auth", Name: "caller_cache_invalidations_total",
		Help: "Change notices (a person's sessions, account or grants) and reconnect flushes applied to the caller cache.",
	})
)

// The lookup counters, resolved once: the hit path is the hot path.
var (
	cacheHits     = cacheLookups.WithLabelValues("hit")
	cacheMisses   = cacheLookups.WithLabelValues("miss")
	cacheBypasses = cacheLookups.WithLabelValues("bypass")
)

// RegisterCacheMetrics registers the caller cache's metrics; call it once per process.
func RegisterCacheMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{cacheLookups, cacheInvalidations} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// callerCache keeps, per session, whether it is live and its person's
// grants, as PostgreSQL last answered. It is used only while its listener
// is connected to NotifyChannel; every notice drops the person's entries,
// and every (re)connection empties it. An answer read from the database
// is stored only if no notice or flush came in while it was being read
// (the generation did not move), so a read racing a change is never kept.
type callerCache struct {
	cfg CacheConfig

	mu       sync.RWMutex
	ready    bool
	gen      uint64
	entries  map[string]*cacheEntry
	byPerson map[string][]string

	applied atomic.Uint64 // notices and flushes applied, for tests
}

type cacheEntry struct {
	person string
	grants []scope.Grant
	until  time.Time
}

func newCallerCache(cfg CacheConfig) *callerCache {
	cfg.setDefaults()
	return &callerCache{cfg: cfg, entries: map[string]*cacheEntry{}, byPerson: map[string][]string{}}
}

func cacheKey(sessionID, accountID, personID string) string {
	return sessionID + "/" + accountID + "/" + personID
}

// get returns the cached grants of key, or ok false; when ok is false,
// gen is to be handed to put with the answer read from the database, and
// usable says whether put may store it at all.
func (c *callerCache) get(key string, now time.Time) (grants []scope.Grant, ok bool, gen uint64, usable bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.ready {
		cacheBypasses.Inc()
		return nil, false, 0, false
	}
	if e := c.entries[key]; e != nil && now.Before(e.until) {
		cacheHits.Inc()
		return slices.Clone(e.grants), true, 0, false
	}
	cacheMisses.Inc()
	return nil, false, c.gen, true
}

func (c *callerCache) put(key, person string, grants []scope.Grant, until time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready || c.gen != gen {
		return
	}
	if len(c.entries) >= c.cfg.MaxEntries {
		c.flushLocked()
	}
	if _, had := c.entries[key]; !had {
		c.byPerson[person] = append(c.byPerson[person], key)
	}
	c.entries[key] = &cacheEntry{person: person, grants: slices.Clone(grants), until: until}
}

// invalidate drops the entries of person.
func (c *callerCache) invalidate(person string) {
	c.mu.Lock()
	c.gen++
	for _, k := range c.byPerson[person] {
		delete(c.entries, k)
	}
	delete(c.byPerson, person)
	c.mu.Unlock()
	cacheInvalidations.Inc()
	c.applied.Add(1)
}

// setReady empties the cache and says whether it may be used: true once
// the listener is (again) listening, false when it lost its connection.
func (c *callerCache) setReady(ready bool) {
	c.mu.Lock()
	c.ready = ready
	c.flushLocked()
	c.mu.Unlock()
	cacheInvalidations.Inc()
	c.applied.Add(1)
}

func (c *callerCache) flushLocked() {
	c.gen++
	clear(c.entries)
	clear(c.byPerson)
}

// RunCache turns on the caller cache and keeps its change listener
// connected until ctx ends: it LISTENs on NotifyChannel on a connection of
// its own (outside pool, so that waiting never takes a pool slot), empties
// the cache on every (re)connection and drops a person's entries on every
// notice. While the listener is down the cache is bypassed, every call
// reading PostgreSQL as without a cache.
//
// A revoked session, a disabled account, a changed password or grant is
// therefore refused from the first call after its notice reaches this
// process (normally within milliseconds of the commit); should notices
// stop arriving over a connection that still looks alive, an answer is
// used for at most cfg.TTL, and never past the session's end or the next
// scheduled start or end of one of its person's grants.
func (a *Authorizer) RunCache(ctx context.Context, pool *pgxpool.Pool, cfg CacheConfig) {
	c := newCallerCache(cfg)
	a.cache.Store(c)
	wait := 200 * time.Millisecond
	for ctx.Err() == nil {
		err := c.listen(ctx, pool.Config().ConnConfig.Copy())
		c.setReady(false)
		if ctx.Err() != nil {
			return
		}
		a.log.Warn("caller cache listener lost; calls read PostgreSQL until it reconnects", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

func (c *callerCache) listen(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return err
	}
	// Listening from here on: anything committed later is announced, and
	// what was cached before may be stale.
	c.setReady(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		c.invalidate(n.Payload)
	}
}

// loadCallerUntil is loadCaller with the time until which its answer holds
// by the clock: the session's end or the next scheduled start or end of a
// grant of the person, whichever is first.
func loadCallerUntil(ctx context.Context, q database.Querier, sessionID, accountID, personID string, now time.Time) (bool, []scope.Grant, time.Time, error) {
	live, until, err := accounts.SessionLiveUntil(ctx, q, sessionID, accountID, personID)
	if err != nil || !live {
		return false, nil, time.Time{}, err
	}
	grants, err := people.ActiveGrants(ctx, q, personID, now)
	if err != nil {
		return false, nil, time.Time{}, err
	}
	next, err := people.NextGrantChange(ctx, q, personID, now)
	if err != nil {
		return false, nil, time.Time{}, err
	}
	if !next.IsZero() && next.Before(until) {
		until = next
	}
	return true, grants, until, nil
}
