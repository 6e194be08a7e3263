package lan

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// t0 is the fake clock's start.
var t0 = time.Unix(1700000000, 0)

// fakeLAN stands in for the network: a lookup of a host it knows is
// answered at once, with its records, through the resolver's Learn; any
// other host never answers.
type fakeLAN struct {
	mu    sync.Mutex
	hosts map[string][]Record
	asked map[string]int // lookups sent (first questions), by host
	now   atomic.Int64   // the resolver's clock, unix nanoseconds
}

func newFakeLAN() *fakeLAN {
	lan := &fakeLAN{
		hosts: map[string][]Record{
			"beta":           {rec("198.18.1.20", 120), rec("2001:db8:1::20", 120)},
			"office-printer": {rec("198.18.1.30", 120)},
			"shortlived":     {rec("198.18.1.40", 3)},
		},
		asked: map[string]int{},
	}
	lan.now.Store(t0.UnixNano())
	return lan
}

func rec(addr string, ttl uint32) Record {
	return Record{Addr: netip.MustParseAddr(addr), TTL: ttl}
}

func (lan *fakeLAN) advance(d time.Duration) { lan.now.Add(int64(d)) }

func (lan *fakeLAN) lookups(host string) int {
	lan.mu.Lock()
	defer lan.mu.Unlock()
	return lan.asked[host]
}

// resolver returns a resolver whose network is lan; it never listens.
func (lan *fakeLAN) resolver(window time.Duration) *Resolver {
	var r *Resolver
	r = New(Options{Interfaces: []string{"test"}, Size: 100, MaxTTL: 2 * time.Minute, Window: window}, func(host string, qu bool) error {
		lan.mu.Lock()
		if qu {
			lan.asked[host]++
		}
		recs, ok := lan.hosts[host]
		lan.mu.Unlock()
		if ok {
			r.Learn(host, recs)
		}
		return nil
	}, lan.now.Load)
	return r
}
