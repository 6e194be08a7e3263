package tailnet

import (
	"context"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"tailscale.com/tailcfg"

	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/table"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
	"github.com/tailhorizon/tailhorizon/test/fixture"
)

// fuzzSeeds are query names worth mutating: escapes, long labels, case,
// IDNA, reverse names.
var fuzzSeeds = []string{
	"hub.example.org.", "a.b.HUB.example.org.", `a\.b.hub.example.org.`, `hub\000.example.org.`,
	"xn--bcher-kva.example.org.", "example.org.", "2.0.64.100.in-addr.arpa.",
	"3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa.",
	"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.org.",
}

// FuzzServeDNS feeds arbitrary wire messages to ServeDNS: whatever
// unpacks must be answered or passed on, never panic.
func FuzzServeDNS(f *testing.F) {
	for _, name := range fuzzSeeds {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypePTR, dns.TypeANY, dns.TypeSOA} {
			b, err := new(dns.Msg).SetQuestion(name, qtype).Pack()
			if err == nil {
				f.Add(b)
			}
		}
	}
	tn := newTestTailnet(testSnapshot(), func(tn *Tailnet) { tn.Fall = fall.Root; tn.tableConf.CNAME = true })
	f.Fuzz(func(t *testing.T, wire []byte) {
		m := new(dns.Msg)
		if m.Unpack(wire) != nil || len(m.Question) != 1 {
			return
		}
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := tn.ServeDNS(context.Background(), rec, m); err != nil {
			t.Fatalf("ServeDNS(%v) error %v; want none", m.Question[0], err)
		}
		if rec.Msg != nil {
			if _, err := rec.Msg.Pack(); err != nil {
				t.Fatalf("reply to %v does not pack: %v", m.Question[0], err)
			}
		}
	})
}

// FuzzParse feeds arbitrary Corefile text to parse: an error, never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"tailnet", "tailnet example.org 100.64.0.0/10 {\n ttl 10\n alias a b\n tags svc-\n fallthrough\n}",
		"tailnet {\n node dns\n state_dir /x\n advertise_tags tag:a\n listen\n}", "tailnet {\n probe 1s\n stale 5m\n cname\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, corefile string) {
		parse(fixture.Controller(corefile))
	})
}

// FuzzRecords feeds arbitrary extra records to the table and asks for
// their names: whatever control sends is served or left out, never a
// panic, and every reply packs.
func FuzzRecords(f *testing.F) {
	f.Add("www.example.org", "", "192.0.2.1")
	f.Add("_cargo._tcp.pkg.example.org", "SRV", "0 5 443 cargo.example.org.")
	f.Add("mapped.tail-scale.ts.net", "CNAME", "hub.example.org")
	f.Add(`a\.b.example.org.`, "TXT", "x")
	f.Add("example.org", "NS", "ns.example.org.")
	f.Fuzz(func(t *testing.T, name, typ, value string) {
		s := controlSnapshot()
		s.Records = watch.ParseRecords([]tailcfg.DNSRecord{{Name: name, Type: typ, Value: value}})
		tn := newTestTailnet(s, func(tn *Tailnet) { tn.Fall = fall.Root; tn.tableConf.Records = table.RecordsMagicDNS })
		for _, qtype := range []uint16{dns.TypeA, dns.TypeTXT, dns.StringToType[typ]} {
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			if _, err := tn.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)); err != nil && rec.Msg != nil {
				t.Fatalf("ServeDNS(%q) wrote a reply and returned %v", name, err)
			}
			if rec.Msg != nil {
				if _, err := rec.Msg.Pack(); err != nil {
					t.Fatalf("reply for %q %q %q does not pack: %v", name, typ, value, err)
				}
			}
		}
	})
}
