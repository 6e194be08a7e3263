package mdns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tailhorizon/tailhorizon/test/fixture"
)

// entryBytes bounds the heap one cache entry takes: a host with one IPv4
// and one IPv6 address (the largest entry a flood makes), its LRU links
// and its share of the map. BenchmarkCacheMemory measures about 275.
const entryBytes = 512

// errSilent is a LAN that never answers, at once: the lookup ends as its
// window would, without a million names waiting a million timeouts.
var errSilent = errors.New("no answer")

// TestFlood sends fixture.FloodNames unique random names under the zone through
// ServeDNS, with the cache at its default size. One host in four answers
// on the (fake) LAN and the others never do, so each name makes an entry,
// positive or negative: the cache fills, then evicts one entry a name,
// and the heap holds what size entries take, however many names came.
func TestFlood(t *testing.T) {
	n := fixture.FloodNames(100_000)
	m := newTestMDNS(nil, nil)
	res := newResolver("flood", m.conf, m.timeout)
	size := m.conf.size // the default, 10,000
	fromLAN := 0
	res.query = func(host string, _ bool) error {
		if host[len(host)-1] < '4' { // the last of 16 random hex digits
			fromLAN++
			res.learn(host, []learnt{rec("198.18.1.20", 120), rec("2001:db8:1::20", 120)})
			return nil
		}
		return errSilent
	}
	m.res.Store(res)
	rng := rand.New(rand.NewPCG(1, 2))
	answered := 0
	serve := func() {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		m.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion(fmt.Sprintf("r%016x.example.org.", rng.Uint64()), dns.TypeA))
		if rec.Msg != nil && len(rec.Msg.Answer) > 0 {
			answered++
		}
	}
	serve() // counters and the like, made once
	evicted := testutil.ToFloat64(evictions.WithLabelValues("flood"))
	entries := res.cache.len()
	before := fixture.LiveHeap()
	for range n {
		serve()
		if got := res.cache.len(); got > size {
			t.Fatalf("cache holds %d hosts; want at most its size, %d", got, size)
		}
	}
	grew := fixture.LiveHeap() - before
	bound := int64(size*entryBytes + fixture.FloodSlack)
	evicted = testutil.ToFloat64(evictions.WithLabelValues("flood")) - evicted
	t.Logf("%d names: heap grew %d bytes (%.1f a name, %.1f an entry); bound %d; %v evictions", n, grew,
		float64(grew)/float64(n), float64(grew)/float64(size), bound, evicted)
	if grew > bound {
		t.Errorf("heap grew %d bytes over %d names; want at most %d", grew, n, bound)
	}
	if want := float64(entries + n - res.cache.len()); evicted != want {
		t.Errorf("evictions_total counted %v; want %v, an entry a name past the size", evicted, want)
	}
	if answered != fromLAN || fromLAN == 0 {
		t.Errorf("%d names answered; want the %d the LAN answered", answered, fromLAN)
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	if len(res.flights) != 0 {
		t.Errorf("%d lookups still in flight; want none", len(res.flights))
	}
}

// TestAnnouncementFlood feeds receive, what the socket readers call, many
// thousand distinct announcements from a host on the link. Each of half
// of them answers a lookup in flight for a new host, so it makes an entry;
// the other half announce hosts nobody asked for, which never enter. The
// cache stays at its size, evicts one entry an answer past it, counted in
// evictions_total, and the heap holds what size entries take.
func TestAnnouncementFlood(t *testing.T) {
	const announced = 30_000
	conf := New().conf                                // the default size, 10,000
	r := newResolver("announce", conf, time.Minute)   // no lookup ends by its timer
	r.query = func(string, bool) error { return nil } // the answers come as announcements
	size := conf.size
	l, src := testListener(), netip.MustParseAddr("198.18.1.2")
	announce := func(host string, i int) []byte {
		return response(t, func(m *dns.Msg) {
			for _, rr := range m.Answer {
				rr.Header().Class |= 0x8000 // cache-flush, as announcements have it
			}
		}, fmt.Sprintf("%s.local. 120 IN A 198.18.1.%d", host, i%250+1), fmt.Sprintf("%s.local. 120 IN AAAA 2001:db8:1::%x", host, i))
	}
	evicted := testutil.ToFloat64(evictions.WithLabelValues("announce"))
	unasked := testutil.ToFloat64(rejected.WithLabelValues("announce", rejectUnasked))
	before := fixture.LiveHeap()
	for i := range announced {
		host, stranger := fmt.Sprintf("h%d", i), fmt.Sprintf("u%d", i)
		f := r.lookup(host, reasonMiss)
		r.receive(l, announce(host, i), 2, src)
		r.receive(l, announce(stranger, i), 2, src)
		switch {
		case !isClosed(f.done):
			t.Fatalf("the announcement of %s did not end its lookup", host)
		case r.cache.has(stranger):
			t.Fatalf("%s, which nobody asked for, entered the cache", stranger)
		case r.cache.len() > size:
			t.Fatalf("cache holds %d hosts; want at most its size, %d", r.cache.len(), size)
		}
	}
	grew := fixture.LiveHeap() - before
	bound := int64(size*entryBytes + fixture.FloodSlack)
	evicted = testutil.ToFloat64(evictions.WithLabelValues("announce")) - evicted
	unasked = testutil.ToFloat64(rejected.WithLabelValues("announce", rejectUnasked)) - unasked
	t.Logf("%d announcements: heap grew %d bytes (%.1f an entry); bound %d; %v evictions, %v unasked records rejected",
		2*announced, grew, float64(grew)/float64(size), bound, evicted, unasked)
	if grew > bound {
		t.Errorf("heap grew %d bytes; want at most %d", grew, bound)
	}
	if want := float64(announced - size); evicted != want {
		t.Errorf("evictions_total counted %v; want %v, one an answer past the size", evicted, want)
	}
	if want := float64(2 * announced); unasked != want {
		t.Errorf("rejected_total{reason=unasked} counted %v; want %v, the A and AAAA of each stranger", unasked, want)
	}
}
