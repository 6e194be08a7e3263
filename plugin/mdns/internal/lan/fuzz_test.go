package lan

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// FuzzInspect feeds hostile mDNS packets (truncated, compression loops,
// huge TTLs, other names, odd classes) to the acceptance filter: no
// panic, and nothing it lets in breaks the cache's rules.
func FuzzInspect(f *testing.F) {
	for _, rrs := range [][]string{
		{"beta.local. 120 IN A 198.18.1.20", "beta.local. 4294967295 IN AAAA 2001:db8:1::20"},
		{"other.local. 120 IN A 198.18.1.21"},
		{"beta.local. 0 IN A 198.18.1.20"},
		{"beta.local. 120 IN A 169.254.1.1", "beta.local. 120 IN A 100.64.0.9"},
	} {
		m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true}}
		for _, s := range rrs {
			rr, _ := dns.NewRR(s)
			m.Answer = append(m.Answer, rr)
		}
		if b, err := m.Pack(); err == nil {
			f.Add(b, true)
			f.Add(b[:len(b)/2], true)
		}
	}
	f.Add(pointerAnswer(12), false) // a compression-pointer loop
	f.Fuzz(func(t *testing.T, pkt []byte, onLink bool) {
		lan := newFakeLAN()
		r := lan.resolver(time.Second)
		r.cache.fail("beta", t0)
		p := packet{ifIndex: 2, src: netip.MustParseAddr("198.18.1.2"), dst: netip.MustParseAddr("198.18.1.1"), hops: 255}
		if !onLink {
			p.src = netip.MustParseAddr("203.0.113.9")
		}
		hosts, _ := r.inspect(testListener(), pkt, p)
		if !onLink && len(hosts) > 0 {
			t.Fatalf("an off-link packet taught %v", hosts)
		}
		for host, recs := range hosts {
			if host != "beta" {
				t.Fatalf("learnt %q, which nobody asked for", host)
			}
			for _, rec := range recs {
				if !rec.Addr.IsValid() && (rec.NoA || rec.NoAAAA) {
					continue // an NSEC
				}
				if !rec.Addr.IsGlobalUnicast() || isTailnet(rec.Addr) || !testListener().ifaces[2].covers(rec.Addr) || rec.TTL > 120 {
					t.Fatalf("learnt %+v: outside the rules", rec)
				}
			}
		}
	})
}
