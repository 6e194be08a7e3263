package mdns

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/plugin/mdns/internal/lan"
	"github.com/tailhorizon/tailhorizon/test/fixture"
)

// filledMDNS returns a plugin whose cache holds n hosts, host0 to
// host(n-1), each with one IPv4 and one IPv6 address valid for two minutes.
func filledMDNS(tb testing.TB, n int) *MDNS {
	m := newTestMDNS(nil, nil)
	var res *lan.Resolver
	var answer []lan.Record // what the LAN answers to the next lookup
	res = lan.New(lan.Options{Interfaces: []string{"bench"}, Size: n, MaxTTL: 2 * time.Minute, Window: time.Second}, func(host string, _ bool) error {
		res.Learn(host, answer)
		return nil
	}, nil)
	m.res.Store(res)
	for i := range n {
		v4 := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		v6 := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)})
		answer = []lan.Record{{Addr: v4, TTL: 120}, {Addr: v6, TTL: 120}}
		res.Lookup(fmt.Sprintf("host%d", i)) // ended by the answer, both families
	}
	if got := res.Len(); got != n {
		tb.Fatalf("cache holds %d hosts; want %d", got, n)
	}
	return m
}

// BenchmarkServeDNS answers grafana.hostN.example.org A from the cache, at
// several cache sizes; compare with tailnet's BenchmarkServeDNS, measured
// in the same run.
func BenchmarkServeDNS(b *testing.B) {
	for _, n := range []int{3, 1000, 100000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			m := filledMDNS(b, n)
			q := new(dns.Msg).SetQuestion(fmt.Sprintf("grafana.host%d.example.org.", n/2), dns.TypeA)
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			if _, err := m.ServeDNS(context.Background(), rec, q); err != nil || rec.Msg == nil || len(rec.Msg.Answer) != 1 {
				b.Fatalf("no answer: %v %v", err, rec.Msg)
			}
			w := &test.ResponseWriter{}
			b.ReportAllocs()
			for b.Loop() {
				m.ServeDNS(context.Background(), w, q)
			}
		})
	}
}

// BenchmarkServeDNSParallel is the cached answer from every core at once:
// the cache's lock is the one place queries meet.
func BenchmarkServeDNSParallel(b *testing.B) {
	m := filledMDNS(b, 1000)
	q := new(dns.Msg).SetQuestion("grafana.host500.example.org.", dns.TypeA)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		w := &test.ResponseWriter{}
		for pb.Next() {
			m.ServeDNS(context.Background(), w, q)
		}
	})
}

// BenchmarkCacheMemory reports the heap a cache of 100,000 hosts takes, each
// with one IPv4 and one IPv6 address, as bytes/host: what entryBytes bounds.
func BenchmarkCacheMemory(b *testing.B) {
	const n = 100000
	for b.Loop() {
		before := fixture.LiveHeap()
		m := filledMDNS(b, n)
		grew := fixture.LiveHeap() - before
		b.ReportMetric(float64(grew)/n, "bytes/host")
		b.ReportMetric(float64(grew)/(1<<20), "MiB")
		runtime.KeepAlive(m)
	}
}

// TestServeDNSAllocs keeps the cached answer's allocations in budget: the
// reply, its question and answer slices, and the record.
func TestServeDNSAllocs(t *testing.T) {
	m := filledMDNS(t, 1000)
	q := new(dns.Msg).SetQuestion("grafana.host500.example.org.", dns.TypeA)
	w := &test.ResponseWriter{}
	got := testing.AllocsPerRun(1000, func() { m.ServeDNS(context.Background(), w, q) })
	const budget = 5
	if got > budget {
		t.Errorf("ServeDNS allocates %v times per cached answer; want at most %d", got, budget)
	}
}
