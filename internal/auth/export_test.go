package auth

// CacheApplied is how many change notices and flushes the caller cache has
// applied (0 before RunCache), and CacheReady whether it is in use: tests
// wait on them instead of on time.
func (a *Authorizer) CacheApplied() uint64 {
	if c := a.cache.Load(); c != nil {
		return c.applied.Load()
	}
	return 0
}

func (a *Authorizer) CacheReady() bool {
	c := a.cache.Load()
	if c == nil {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ready
}

func (a *Authorizer) CacheLen() int {
	c := a.cache.Load()
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
