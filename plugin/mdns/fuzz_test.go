package mdns

import (
	"context"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/fixture"
)

// FuzzServeDNS feeds arbitrary wire messages to ServeDNS over a cache:
// answered or passed on, never a panic, every reply packs.
func FuzzServeDNS(f *testing.F) {
	for _, name := range []string{"beta.example.org.", "a.b.Beta.example.org.", `a\.b.example.org.`, "printer.example.org.", "example.org."} {
		if b, err := new(dns.Msg).SetQuestion(name, dns.TypeA).Pack(); err == nil {
			f.Add(b)
		}
	}
	fake := newFakeLAN()
	m := newTestMDNS(fake, func(m *MDNS) { m.timeout = time.Millisecond })
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
