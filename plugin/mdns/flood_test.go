package mdns

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailhorizon/tailhorizon/plugin/mdns/internal/lan"
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
	o := m.opts
	o.Interfaces = []string{"flood"}
	size := o.Size // the default, 10,000
	fromLAN := 0
	var res *lan.Resolver
	res = lan.New(o, func(host string, _ bool) error {
		if host[len(host)-1] < '4' { // the last of 16 random hex digits
			fromLAN++
			res.Learn(host, []lan.Record{rec("198.18.1.20", 120), rec("2001:db8:1::20", 120)})
			return nil
		}
		return errSilent
	}, nil)
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
	evicted := counter(t, "coredns_mdns_evictions_total", "flood")
	entries := res.Len()
	before := fixture.LiveHeap()
	for range n {
		serve()
		if got := res.Len(); got > size {
			t.Fatalf("cache holds %d hosts; want at most its size, %d", got, size)
		}
	}
	grew := fixture.LiveHeap() - before
	bound := int64(size*entryBytes + fixture.FloodSlack)
	evicted = counter(t, "coredns_mdns_evictions_total", "flood") - evicted
	t.Logf("%d names: heap grew %d bytes (%.1f a name, %.1f an entry); bound %d; %v evictions", n, grew,
		float64(grew)/float64(n), float64(grew)/float64(size), bound, evicted)
	if grew > bound {
		t.Errorf("heap grew %d bytes over %d names; want at most %d", grew, n, bound)
	}
	if want := float64(entries + n - res.Len()); evicted != want {
		t.Errorf("evictions_total counted %v; want %v, an entry a name past the size", evicted, want)
	}
	if answered != fromLAN || fromLAN == 0 {
		t.Errorf("%d names answered; want the %d the LAN answered", answered, fromLAN)
	}
	if got := res.InFlight(); got != 0 {
		t.Errorf("%d lookups still in flight; want none", got)
	}
}

// counter returns the value of the resolver's counter called name for the
// interface list interfaces, read from the default registry, where
// internal/lan registers its metrics.
func counter(t testing.TB, name, interfaces string) float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "interfaces" && l.GetValue() == interfaces {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
