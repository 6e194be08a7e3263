package lan

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
)

// AddrRec is one address of a host as the A or AAAA record wants it.
type AddrRec struct {
	IP      net.IP // 4 bytes for IPv4, 16 for IPv6; never modified
	Expires int64  // unix nanoseconds
}

// HostRecs is what the cache knows of one host at one moment. It is
// immutable and safe for concurrent use: an update replaces it.
type HostRecs struct {
	V4, V6   []AddrRec // each valid until its Expires; never modified
	Negative bool      // the host did not answer or said goodbye; V4 and V6 are empty
	// Pending is set while the first lookup of the host is in flight and
	// has heard of one family only: a record of the other may still come.
	Pending   bool
	expires   int64 // unix nanoseconds: when the last record (or the negative entry) expires
	refreshAt int64 // unix nanoseconds: from then on a query asks for a refresh; 0 for none
}

// Has reports whether h has a record of qtype, or whether qtype is one
// that no lookup answers (neither A nor AAAA), so that waiting is useless.
func (h *HostRecs) Has(qtype uint16) bool {
	switch qtype {
	case dns.TypeA:
		return len(h.V4) > 0
	case dns.TypeAAAA:
		return len(h.V6) > 0
	}
	return true
}

// Record is one address record of a host, heard from the LAN, or, with
// no Addr, its NSEC record (RFC 6762 §6.1): the families it has no
// address of.
type Record struct {
	Addr  netip.Addr // invalid for an NSEC record
	TTL   uint32     // seconds, capped; 0 is a goodbye
	Flush bool       // the cache-flush bit: the packet has the whole set of its type
	// NoA and NoAAAA, in an NSEC record only: the host has no A, no AAAA
	// record. They end the wait for that family; they remove nothing.
	NoA, NoAAAA bool
}

// NSEC returns the Record for an NSEC record of a host that has no A
// record (noA), or no AAAA record (noAAAA).
func NSEC(noA, noAAAA bool) Record { return Record{NoA: noA, NoAAAA: noAAAA} }

// entry is one host in the cache.
type entry struct {
	host       string      // lowercase label, without ".local."
	recs       *HostRecs   // never nil; guarded by cache.mu
	prev, next *entry      // the LRU list, most recently used first; guarded by cache.mu
	refreshing atomic.Bool // a refresh was asked for and has not ended
}

// cache holds what the LAN said about the hosts that were asked for. It is
// bounded: past size entries, the least recently used goes. It is safe for
// concurrent use.
type cache struct {
	entries   prometheus.Gauge   // set to the number of entries
	evictions prometheus.Counter // counts the entries evicted for room

	mu sync.Mutex
	// mu guards the following fields.
	size   int
	negTTL time.Duration     // how long a host that did not answer stays unknown
	m      map[string]*entry // keys are lowercase host labels
	lru    entry             // sentinel of the LRU list
}

// newCache returns an empty cache, of size 0 until configure.
func newCache(entries prometheus.Gauge, evictions prometheus.Counter) *cache {
	c := &cache{m: make(map[string]*entry), entries: entries, evictions: evictions}
	c.lru.next, c.lru.prev = &c.lru, &c.lru
	return c
}

// configure sets the size and the negative TTL. A size below the number
// of entries evicts the least recently used ones.
func (c *cache) configure(size int, negTTL time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.size, c.negTTL = size, negTTL
	c.evictLocked()
}

// len returns the number of entries, expired ones included.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// get returns the entry of host and its records, if it has records that
// have not expired at now, and marks it used.
func (c *cache) get(host string, now int64) (*entry, *HostRecs) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[host]
	if e == nil || e.recs.expires <= now {
		return nil, nil
	}
	c.touchLocked(e)
	return e, e.recs
}

// has reports whether host is in the cache, expired or not: a host that
// was asked for, whose announcements are welcome.
func (c *cache) has(host string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[host] != nil
}

// learn applies the records of one packet about host at now. An entry is
// made when create is set (a lookup waits for host); otherwise only a host
// already in the cache is updated. pending says the lookup waits for the
// other family still; a new entry is then Pending. It reports whether the
// cache changed.
func (c *cache) learn(host string, recs []Record, create, pending bool, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[host]
	if e == nil && !create {
		return false
	}
	var old *HostRecs
	if e != nil {
		old = e.recs
	}
	nr := merge(old, recs, now)
	if nr.expires <= now.UnixNano() || len(nr.V4)+len(nr.V6) == 0 {
		nr = &HostRecs{Negative: true, expires: now.Add(c.negTTL).UnixNano()}
	}
	// A refresh of a live entry is not pending: it knew both families.
	nr.Pending = pending && !nr.Negative && (old == nil || old.Negative || old.Pending || old.expires <= now.UnixNano())
	c.putLocked(host, e, nr)
	return true
}

// settle clears Pending on host, once its lookup ended: what the entry
// lacks, the host does not have.
func (c *cache) settle(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[host]; e != nil && e.recs.Pending {
		nr := *e.recs
		nr.Pending = false
		e.recs = &nr
	}
}

// fail records that a lookup of host got no answer: unless it has valid
// records, it is unknown for negTTL.
func (c *cache) fail(host string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[host]
	if e != nil && !e.recs.Negative && e.recs.expires > now.UnixNano() {
		return
	}
	c.putLocked(host, e, &HostRecs{Negative: true, expires: now.Add(c.negTTL).UnixNano()})
}

func (c *cache) putLocked(host string, e *entry, recs *HostRecs) {
	if e == nil {
		e = &entry{host: host}
		c.m[host] = e
		e.prev, e.next = &c.lru, c.lru.next
		e.prev.next, e.next.prev = e, e
	} else {
		c.touchLocked(e)
	}
	e.recs = recs
	e.refreshing.Store(false)
	c.evictLocked()
}

// evictLocked evicts the least recently used entries past the size.
func (c *cache) evictLocked() {
	for len(c.m) > c.size {
		c.removeLocked(c.lru.prev)
		c.evictions.Inc()
	}
	c.entries.Set(float64(len(c.m)))
}

func (c *cache) touchLocked(e *entry) {
	if c.lru.next == e {
		return
	}
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = &c.lru, c.lru.next
	e.prev.next, e.next.prev = e, e
}

func (c *cache) removeLocked(e *entry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
	delete(c.m, e.host)
}

// sweep drops the expired entries among the n least recently used.
func (c *cache) sweep(now int64, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.lru.prev; e != &c.lru && n > 0; n-- {
		prev := e.prev
		if e.recs.expires <= now {
			c.removeLocked(e)
		}
		e = prev
	}
	c.entries.Set(float64(len(c.m)))
}

// merge returns old with recs applied at now. A record with the cache-flush
// bit replaces the other addresses of its family; a goodbye (TTL 0)
// removes its address; an expired address goes.
func merge(old *HostRecs, recs []Record, now time.Time) *HostRecs {
	nr := &HostRecs{}
	if old != nil && !old.Negative {
		nr.V4, nr.V6 = old.V4, old.V6
	}
	flush4, flush6 := false, false
	for _, r := range recs {
		if !r.Addr.IsValid() {
			continue // NSEC
		}
		if r.Flush && r.Addr.Is4() {
			flush4 = true
		} else if r.Flush {
			flush6 = true
		}
	}
	if flush4 {
		nr.V4 = nil
	}
	if flush6 {
		nr.V6 = nil
	}
	t := now.UnixNano()
	for _, r := range recs {
		if !r.Addr.IsValid() {
			continue
		}
		if r.Addr.Is4() {
			nr.V4 = upsert(nr.V4, r, t)
		} else {
			nr.V6 = upsert(nr.V6, r, t)
		}
	}
	refresh := int64(0)
	for _, list := range [][]AddrRec{nr.V4, nr.V6} {
		for _, a := range list {
			nr.expires = max(nr.expires, a.Expires)
			// Refresh at 80% of the record's life, as RFC 6762 §5.2 does.
			if at := a.Expires - (a.Expires-t)/5; refresh == 0 || at < refresh {
				refresh = at
			}
		}
	}
	nr.refreshAt = refresh
	return nr
}

// upsert returns list, a copy if it changes, with r applied at now and
// the addresses that have expired removed.
func upsert(list []AddrRec, r Record, now int64) []AddrRec {
	ip := r.Addr.AsSlice()
	out := make([]AddrRec, 0, len(list)+1)
	for _, a := range list {
		if a.Expires > now && !a.IP.Equal(ip) {
			out = append(out, a)
		}
	}
	if r.TTL > 0 {
		out = append(out, AddrRec{IP: ip, Expires: now + int64(r.TTL)*int64(time.Second)})
	}
	return out
}
