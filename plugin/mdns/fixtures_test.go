package mdns

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// nextRcode is what the next plugin returns, so a test sees a fallthrough.
const nextRcode = dns.RcodeRefused

// t0 is the fake clock's start.
var t0 = time.Unix(1700000000, 0)

// fakeLAN stands in for the network: a lookup of a host it knows is
// answered at once, with its records, through the resolver's learn; any
// other host never answers.
type fakeLAN struct {
	mu    sync.Mutex
	hosts map[string][]learnt
	asked map[string]int // lookups sent (first questions), by host
	now   atomic.Int64   // the resolver's clock, unix nanoseconds
}

func newFakeLAN() *fakeLAN {
	lan := &fakeLAN{
		hosts: map[string][]learnt{
			"beta":           {rec("198.18.1.20", 120), rec("2001:db8:1::20", 120)},
			"office-printer": {rec("198.18.1.30", 120)},
			"shortlived":     {rec("198.18.1.40", 3)},
		},
		asked: map[string]int{},
	}
	lan.now.Store(t0.UnixNano())
	return lan
}

func rec(addr string, ttl uint32) learnt {
	return learnt{addr: netip.MustParseAddr(addr), ttl: ttl}
}

func (lan *fakeLAN) advance(d time.Duration) { lan.now.Add(int64(d)) }

func (lan *fakeLAN) lookups(host string) int {
	lan.mu.Lock()
	defer lan.mu.Unlock()
	return lan.asked[host]
}

// resolver returns a resolver whose network is lan; it never listens.
func (lan *fakeLAN) resolver(window time.Duration) *resolver {
	r := newResolver("test", config{size: 100, maxTTL: 2 * time.Minute}, window)
	r.now = lan.now.Load
	r.query = func(host string, qu bool) error {
		lan.mu.Lock()
		if qu {
			lan.asked[host]++
		}
		recs, ok := lan.hosts[host]
		lan.mu.Unlock()
		if ok {
			r.learn(host, recs)
		}
		return nil
	}
	return r
}

// newTestMDNS returns a plugin for example.org on lan, with the alias
// printer -> office-printer.
func newTestMDNS(lan *fakeLAN, configure func(*MDNS)) *MDNS {
	m := New()
	m.Zones = []string{"example.org."}
	m.Next = test.NextHandler(nextRcode, nil)
	m.aliases = map[string]string{"printer": "office-printer"}
	m.timeout = time.Second
	if configure != nil {
		configure(m)
	}
	if lan != nil {
		m.res.Store(lan.resolver(10 * time.Millisecond))
	}
	return m
}
