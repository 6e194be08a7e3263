package mdns

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/fixture"
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
		src := netip.MustParseAddr("198.18.1.2")
		if !onLink {
			src = netip.MustParseAddr("203.0.113.9")
		}
		hosts, _ := r.inspect(testListener(), pkt, 2, src)
		if !onLink && len(hosts) > 0 {
			t.Fatalf("an off-link packet taught %v", hosts)
		}
		for host, recs := range hosts {
			if host != "beta" {
				t.Fatalf("learnt %q, which nobody asked for", host)
			}
			for _, rec := range recs {
				if !rec.addr.IsGlobalUnicast() || isTailnet(rec.addr) || rec.ttl > 120 {
					t.Fatalf("learnt %+v: outside the rules", rec)
				}
			}
		}
	})
}

// FuzzServeDNS feeds arbitrary wire messages to ServeDNS over a cache:
// answered or passed on, never a panic, every reply packs.
func FuzzServeDNS(f *testing.F) {
	for _, name := range []string{"beta.example.org.", "a.b.Beta.example.org.", `a\.b.example.org.`, "printer.example.org.", "example.org."} {
		if b, err := new(dns.Msg).SetQuestion(name, dns.TypeA).Pack(); err == nil {
			f.Add(b)
		}
	}
	lan := newFakeLAN()
	m := newTestMDNS(lan, func(m *MDNS) { m.timeout = time.Millisecond })
	f.Fuzz(func(t *testing.T, wire []byte) {
		q := new(dns.Msg)
		if q.Unpack(wire) != nil || len(q.Question) != 1 {
			return
		}
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		m.ServeDNS(context.Background(), rec, q)
		if rec.Msg != nil {
			if _, err := rec.Msg.Pack(); err != nil {
				t.Fatalf("reply to %v does not pack: %v", q.Question[0], err)
			}
		}
	})
}

// FuzzParse feeds arbitrary Corefile text to parse: an error, never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"mdns", "mdns example.org {\n interface eth0\n timeout 300ms\n ttl 10\n alias printer office\n size 100\n max_ttl 2m\n services _workstation._tcp\n fallthrough\n}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, corefile string) {
		parse(fixture.Controller(corefile))
	})
}
