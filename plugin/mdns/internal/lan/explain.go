package lan

// Peek returns what the cache knows of host now, as Cached does, but
// without marking it used or asking for a refresh: for the trace, which
// must change nothing. It is nil when the cache has nothing valid.
func (r *Resolver) Peek(host string) *HostRecs {
	now := r.now()
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	e := r.cache.m[host]
	if e == nil || e.recs.expires <= now {
		return nil
	}
	return e.recs
}

// CacheEntry is one host of the cache.
type CacheEntry struct {
	Host string // lowercase label, without ".local."
	Recs *HostRecs
}

// Entries returns the hosts of the cache, most recently used first, at
// most max of them.
func (r *Resolver) Entries(max int) []CacheEntry {
	r.cache.mu.Lock()
	defer r.cache.mu.Unlock()
	var out []CacheEntry
	for e := r.cache.lru.next; e != &r.cache.lru && len(out) < max; e = e.next {
		out = append(out, CacheEntry{Host: e.host, Recs: e.recs})
	}
	return out
}

// Until returns when h's last record, or its negative entry, expires, in
// unix nanoseconds.
func (h *HostRecs) Until() int64 { return h.expires }
