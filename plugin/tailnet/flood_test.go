package tailnet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/cache"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/fixture"
)

// cacheCap is what one of the cache plugin's two caches (success and
// denial) holds at its default capacity of 10,000: 256 shards of
// 10000/256 = 39 entries each.
const cacheCap = 256 * (10000 / 256)

// cacheEntryBytes bounds the heap one entry of the cache plugin takes for
// the replies of this flood (an A record, or an NXDOMAIN with its SOA): the
// item, its records and its share of a shard's map. About 450 measured.
const cacheEntryBytes = 640

// TestFlood sends unique random names under the zone through ServeDNS,
// half below a peer (an answer) and half unknown (NXDOMAIN), with a
// tailnet of 100 peers. The tailnet's table is immutable and nothing is
// kept per query, so the heap may not grow with the names at all. With
// CoreDNS's cache in front it grows by what the success and denial caches
// hold at capacity, and no more; below capacity, by cacheEntryBytes a name
// at most.
//
// Under -race, make test sends 50,000 names through the cache, whose
// bookkeeping costs 0.1-0.3 ms a query there: 2.5 times what both caches
// hold, and twice the bound's worth had each name kept its entry.
func TestFlood(t *testing.T) {
	const few = 2000 // names that fill no shard of the cache: 39 a shard, 8 on average
	cases := []struct {
		name  string
		cache bool  // CoreDNS's cache in front
		names int   // how many
		bound int64 // bytes
	}{
		{"tailnet", false, fixture.FloodNames(100_000), fixture.FloodSlack},
		{"cache in front", true, fixture.FloodNames(50_000), 2*cacheCap*cacheEntryBytes + fixture.FloodSlack},
		{"cache in front, below capacity", true, few, few*cacheEntryBytes + fixture.FloodSlack},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h plugin.Handler = newTestTailnet(bigSnapshot(100), func(tn *Tailnet) { tn.tableConf.Tags = false })
			if c.cache {
				ch := cache.New()
				ch.Next = h
				h = ch
			}
			rng := rand.New(rand.NewPCG(1, 2))
			answered := 0
			serve := func(i int) {
				qname := fmt.Sprintf("r%016x.example.org.", rng.Uint64())
				if i%2 == 0 {
					qname = fmt.Sprintf("r%016x.host%d.example.org.", rng.Uint64(), i%100)
				}
				rec := dnstest.NewRecorder(&test.ResponseWriter{})
				h.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion(qname, dns.TypeA))
				if rec.Msg != nil && len(rec.Msg.Answer) > 0 {
					answered++
				}
			}
			serve(1) // counters and the like, made once
			before := fixture.LiveHeap()
			for i := range c.names {
				serve(i)
			}
			grew := fixture.LiveHeap() - before
			t.Logf("%d names: heap grew %d bytes (%.1f a name); bound %d", c.names, grew, float64(grew)/float64(c.names), c.bound)
			if grew > c.bound {
				t.Errorf("heap grew %d bytes over %d names; want at most %d", grew, c.names, c.bound)
			}
			if want := (c.names + 1) / 2; answered != want {
				t.Errorf("%d names answered; want half, %d", answered, want)
			}
			runtime.KeepAlive(h)
		})
	}
}
