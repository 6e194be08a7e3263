package fallback

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/fixture"
)

// TestFlood sends unique random names under the zone through a fallback
// in front of a chain that says NXDOMAIN to all of them, so that each goes
// to a real upstream on loopback. fallback keeps nothing per name (its
// rules are fixed by the Corefile, its metrics are labelled by reason, and
// forward pools connections, not names), so the heap may not grow with the
// names. Each name is a real round trip, about 0.1 ms under -race, so make
// test sends 20,000: a leak of 13 bytes a name or more exceeds the bound,
// and a name kept in a map takes more than 60.
func TestFlood(t *testing.T) {
	n, bound := fixture.FloodNames(20_000), int64(256<<10)
	f := newTestFallback(t, benchUpstream(t).Addr, chain(dns.RcodeNameError, 0, true), func(f *Fallback) {
		if err := f.rules.Add("registry", []string{"tailnet"}); err != nil {
			t.Fatal(err)
		}
	})
	rng := rand.New(rand.NewPCG(1, 2))
	public := 0
	serve := func() {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		f.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion(fmt.Sprintf("r%016x.example.org.", rng.Uint64()), dns.TypeA))
		if rec.Msg != nil && len(rec.Msg.Answer) == 1 {
			if a, ok := rec.Msg.Answer[0].(*dns.A); ok && a.A.Equal(upstreamIP) {
				public++
			}
		}
	}
	for range 100 { // the upstream connection, counters and pools, made once
		serve()
	}
	public = 0
	before := fixture.LiveHeap()
	for range n {
		serve()
	}
	grew := fixture.LiveHeap() - before
	t.Logf("%d names: heap grew %d bytes (%.1f a name); bound %d", n, grew, float64(grew)/float64(n), bound)
	if grew > bound {
		t.Errorf("heap grew %d bytes over %d names; want at most %d", grew, n, bound)
	}
	if public != n {
		t.Errorf("%d names got the upstream's answer; want all %d", public, n)
	}
}
