package mapper

// stateCache holds the States one worker wrote last, by conversation, with
// the revision the bucket gave each. The bucket stays the truth: a cached
// State is used only when the bucket's revision is still the one cached,
// so the cache saves decoding a State, never the compare-and-set.
// It belongs to one worker and is not safe for concurrent use.
type stateCache struct {
	max     int
	entries map[string]cachedState
}

type cachedState struct {
	st  State
	rev uint64
}

func newStateCache(max int) *stateCache {
	return &stateCache{max: max, entries: make(map[string]cachedState, max)}
}

// get returns the cached State of conversation if it is at rev.
func (c *stateCache) get(conversation string, rev uint64) (State, bool) {
	e, ok := c.entries[conversation]
	if !ok || e.rev != rev || rev == 0 {
		return State{}, false
	}
	return e.st, true
}

// put remembers st at rev, forgetting some other conversation when full:
// which one matters little, as a miss costs only a decode.
func (c *stateCache) put(conversation string, st State, rev uint64) {
	if _, ok := c.entries[conversation]; !ok && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[conversation] = cachedState{st: st, rev: rev}
}
