// Package counters hands out the per-result request counters of a plugin
// without a lock on the query path.
package counters

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Cache hands out the counters of a CounterVec labelled (server, view,
// result), one per result, without a lock once a server and view have been
// seen: WithLabelValues takes a read lock and hashes the labels on every
// call. The zero value is not usable; set Vec and Results.
type Cache struct {
	Vec     *prometheus.CounterVec // labels: server, view, result
	Results []string               // the result label values, by index

	m  atomic.Pointer[map[serverView][]prometheus.Counter] // copied on write
	mu sync.Mutex                                          // serializes writers
}

type serverView struct{ server, view string }

// Get returns the counters of server and view, indexed like Results.
func (c *Cache) Get(server, view string) []prometheus.Counter {
	key := serverView{server, view}
	if m := c.m.Load(); m != nil {
		if cs := (*m)[key]; cs != nil {
			return cs
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil && (*old)[key] != nil {
		return (*old)[key]
	}
	cs := make([]prometheus.Counter, len(c.Results))
	for i, r := range c.Results {
		cs[i] = c.Vec.WithLabelValues(server, view, r)
	}
	m := map[serverView][]prometheus.Counter{key: cs}
	if old != nil {
		maps.Copy(m, *old)
	}
	c.m.Store(&m)
	return cs
}
