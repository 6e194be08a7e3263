package mdns

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/plugin/mdns/internal/lan"
)

// nextRcode is what the next plugin returns, so a test sees a fallthrough.
const nextRcode = dns.RcodeRefused

// t0 is the fake clock's start.
var t0 = time.Unix(1700000000, 0)

// fakeLAN stands in for the network: a lookup of a host it knows is
// answered at once, with its records, through the resolver's Learn; any
// other host never answers.
type fakeLAN struct {
	mu    sync.Mutex
	hosts map[string][]lan.Record
	asked map[string]int // lookups sent (first questions), by host
	now   atomic.Int64   // the resolver's clock, unix nanoseconds
}

func newFakeLAN() *fakeLAN {
	l := &fakeLAN{
		hosts: map[string][]lan.Record{
			"beta":           {rec("198.18.1.20", 120), rec("2001:db8:1::20", 120)},
			"office-printer": {rec("198.18.1.30", 120)},
			"shortlived":     {rec("198.18.1.40", 3)},
		},
		asked: map[string]int{},
	}
	l.now.Store(t0.UnixNano())
	return l
}

func rec(addr string, ttl uint32) lan.Record {
	return lan.Record{Addr: netip.MustParseAddr(addr), TTL: ttl}
}

func (l *fakeLAN) advance(d time.Duration) { l.now.Add(int64(d)) }

func (l *fakeLAN) lookups(host string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.asked[host]
}

// resolver returns a resolver whose network is lan; it never listens.
func (l *fakeLAN) resolver(window time.Duration) *lan.Resolver {
	return l.resolverWith(window, l.query)
}

// resolverWith returns a resolver on lan's clock that asks with query,
// which gets the resolver to answer.
func (l *fakeLAN) resolverWith(window time.Duration, query func(r *lan.Resolver, host string, qu bool) error) *lan.Resolver {
	var r *lan.Resolver
	o := lan.Options{Interfaces: []string{"test"}, Size: 100, MaxTTL: 2 * time.Minute, Window: window}
	r = lan.New(o, func(host string, qu bool) error { return query(r, host, qu) }, l.now.Load)
	return r
}

// query counts the first questions for host and answers those it knows.
func (l *fakeLAN) query(r *lan.Resolver, host string, qu bool) error {
	l.mu.Lock()
	if qu {
		l.asked[host]++
	}
	recs, ok := l.hosts[host]
	l.mu.Unlock()
	if ok {
		r.Learn(host, recs)
	}
	return nil
}

// newTestMDNS returns a plugin for example.org on lan, with the alias
// printer -> office-printer.
func newTestMDNS(l *fakeLAN, configure func(*MDNS)) *MDNS {
	m := New()
	m.Zones = []string{"example.org."}
	m.Next = test.NextHandler(nextRcode, nil)
	m.aliases = map[string]string{"printer": "office-printer"}
	m.timeout = time.Second
	if configure != nil {
		configure(m)
	}
	if l != nil {
		m.res.Store(l.resolver(10 * time.Millisecond))
	}
	return m
}
