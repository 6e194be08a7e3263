package lan

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tailhorizon/tailhorizon/test/fixture"
)

// entryBytes bounds the heap one cache entry takes: a host with one IPv4
// and one IPv6 address (the largest entry a flood makes), its LRU links
// and its share of the map. The plugin's BenchmarkCacheMemory measures
// about 275; its TestFlood holds the same bound.
const entryBytes = 512

// defaultSize is the plugin's default cache size.
const defaultSize = 10_000

// TestAnnouncementFlood feeds receive, what the socket readers call, many
// thousand distinct announcements from a host on the link. Each of half
// of them answers a lookup in flight for a new host, so it makes an entry;
// the other half announce hosts nobody asked for, which never enter. The
// cache stays at its size, evicts one entry an answer past it, counted in
// evictions_total, and the heap holds what size entries take.
func TestAnnouncementFlood(t *testing.T) {
	const announced = 30_000
	// No lookup ends by its timer; the answers come as announcements.
	conf := Options{Interfaces: []string{"announce"}, Size: defaultSize, MaxTTL: 2 * time.Minute, Window: time.Minute}
	r := New(conf, func(string, bool) error { return nil }, nil)
	size := conf.Size
	l, p := testListener(), packet{ifIndex: 2, src: netip.MustParseAddr("198.18.1.2"), dst: group, hops: 255}
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
		r.receive(l, announce(host, i), p)
		r.receive(l, announce(stranger, i), p)
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
