package tailnet

import (
	"context"
	"net/netip"
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

// controlSnapshot is testSnapshot with what control pushes besides the
// nodes: a service svc:cargo hosted by hub (online) and alpha (offline),
// svc:docs hosted only by alpha (beta's exit route does not count), svc:hub whose name a host has, and extra
// records in the zone, under the MagicDNS suffix and elsewhere.
func controlSnapshot() *watch.Snapshot {
	s := testSnapshot()
	route := func(n int, vip string) {
		s.Nodes[n].Routes = append(s.Nodes[n].Routes, netip.PrefixFrom(netip.MustParseAddr(vip), 32))
	}
	route(1, "100.100.0.1") // hub hosts cargo
	route(3, "100.100.0.1") // alpha too
	route(3, "100.100.0.2") // alpha hosts docs
	// beta is an exit node and a subnet router: its routes contain docs'
	// VIP, but it does not host docs.
	s.Nodes[4].Routes = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("100.100.0.0/16")}
	s.Services = []watch.Service{
		{Name: "cargo", Addrs: []netip.Addr{netip.MustParseAddr("100.100.0.1"), netip.MustParseAddr("fd7a:115c:a1e0::100")}},
		{Name: "docs", Addrs: []netip.Addr{netip.MustParseAddr("100.100.0.2")}},
		{Name: "hub", Addrs: []netip.Addr{netip.MustParseAddr("100.100.0.3")}},
	}
	s.Suffix = "tail-scale.ts.net"
	s.Records = watch.ParseRecords([]tailcfg.DNSRecord{
		{Name: "www.example.org", Value: "192.0.2.1"},
		{Name: "www.example.org", Value: "192.0.2.2"},
		{Name: "www.example.org", Value: "2001:db8::1"},
		{Name: "ALIAS.example.org.", Type: "CNAME", Value: "www.example.org"},
		{Name: "www.example.org", Type: "TXT", Value: "v=spf1 -all"},
		{Name: "pkg2.example.org", Type: "CNAME", Value: "cargo.example.org"},
		{Name: "old.example.org", Type: "CNAME", Value: "alpha.example.org"},
		{Name: "ext.example.org", Type: "CNAME", Value: "www.example.net"},
		{Name: "www.example.org", Type: "MX", Value: "10 mail.example.net."},
		{Name: "_cargo._tcp.pkg.example.org", Type: "SRV", Value: "0 5 443 cargo.example.org."},
		{Name: "hub.example.org", Value: "192.0.2.9"},       // the host wins
		{Name: "x.cargo.example.org", Value: "192.0.2.9"},   // the service wins
		{Name: "registry.example.org", Value: "192.0.2.10"}, // wins over the alias registry -> hub
		{Name: "down.example.org", Value: "100.64.0.4"},     // alpha's address: gated on alpha
		{Name: "docs2.example.org", Value: "100.100.0.2"},   // docs' VIP: gated on its hosts
		{Name: "mapped.tail-scale.ts.net", Value: "192.0.2.20"},
		{Name: "elsewhere.example.net", Value: "192.0.2.30"},
		{Name: "bad.example.org", Type: "MX", Value: "not an mx"},
		{Name: "example.org", Type: "TXT", Value: "apex"},
	})
	return s
}

// TestControlNames is the precedence and the answers of services and
// extra records: host > service > extra record > alias > tag name.
func TestControlNames(t *testing.T) {
	cases := []struct {
		name string
		tc   test.Case
		mode table.RecordMode
	}{
		{"service VIP while a host is reachable", test.Case{Qname: "cargo.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("cargo.example.org. 10 IN A 100.100.0.1")}}, table.RecordsOn},
		{"service AAAA, mixed case", test.Case{Qname: "Cargo.example.org.", Qtype: dns.TypeAAAA,
			Answer: []dns.RR{test.AAAA("Cargo.example.org. 10 IN AAAA fd7a:115c:a1e0::100")}}, table.RecordsOn},
		{"names below a service", test.Case{Qname: "index.cargo.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("index.cargo.example.org. 10 IN A 100.100.0.1")}}, table.RecordsOn},
		{"service NODATA", test.Case{Qname: "cargo.example.org.", Qtype: dns.TypeMX,
			Ns: []dns.RR{test.SOA(soaLine)}}, table.RecordsOn},
		{"service with no reachable host passes", test.Case{Qname: "docs.example.org.", Qtype: dns.TypeA, Rcode: nextRcode}, table.RecordsOn},
		{"a host wins over a service", test.Case{Qname: "hub.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("hub.example.org. 10 IN A 100.64.0.2")}}, table.RecordsOn},
		{"alias to a service", test.Case{Qname: "crates.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("crates.example.org. 10 IN A 100.100.0.1")}}, table.RecordsOn},
		{"alias to a service whose name a host has", test.Case{Qname: "hubsvc.example.org.", Qtype: dns.TypeA, Rcode: nextRcode}, table.RecordsOn},
		{"record, several A", test.Case{Qname: "www.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("www.example.org. 10 IN A 192.0.2.1"), test.A("www.example.org. 10 IN A 192.0.2.2")}}, table.RecordsOn},
		{"record AAAA, mixed case", test.Case{Qname: "WWW.example.org.", Qtype: dns.TypeAAAA,
			Answer: []dns.RR{test.AAAA("WWW.example.org. 10 IN AAAA 2001:db8::1")}}, table.RecordsOn},
		{"record TXT", test.Case{Qname: "www.example.org.", Qtype: dns.TypeTXT,
			Answer: []dns.RR{test.TXT(`www.example.org. 10 IN TXT "v=spf1 -all"`)}}, table.RecordsOn},
		{"record MX", test.Case{Qname: "www.example.org.", Qtype: dns.TypeMX,
			Answer: []dns.RR{test.MX("www.example.org. 10 IN MX 10 mail.example.net.")}}, table.RecordsOn},
		{"record SRV", test.Case{Qname: "_cargo._tcp.pkg.example.org.", Qtype: dns.TypeSRV,
			Answer: []dns.RR{test.SRV("_cargo._tcp.pkg.example.org. 10 IN SRV 0 5 443 cargo.example.org.")}}, table.RecordsOn},
		{"record CNAME for any type, and its in-zone target's records", test.Case{Qname: "alias.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.CNAME("alias.example.org. 10 IN CNAME www.example.org."),
				test.A("www.example.org. 10 IN A 192.0.2.1"), test.A("www.example.org. 10 IN A 192.0.2.2")}}, table.RecordsOn},
		{"record CNAME asked for", test.Case{Qname: "alias.example.org.", Qtype: dns.TypeCNAME,
			Answer: []dns.RR{test.CNAME("alias.example.org. 10 IN CNAME www.example.org.")}}, table.RecordsOn},
		{"record CNAME to a service", test.Case{Qname: "pkg2.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("cargo.example.org. 10 IN A 100.100.0.1"), test.CNAME("pkg2.example.org. 10 IN CNAME cargo.example.org.")}}, table.RecordsOn},
		{"record CNAME to an offline host is the CNAME alone", test.Case{Qname: "old.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.CNAME("old.example.org. 10 IN CNAME alpha.example.org.")}}, table.RecordsOn},
		{"record CNAME out of the zone", test.Case{Qname: "ext.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.CNAME("ext.example.org. 10 IN CNAME www.example.net.")}}, table.RecordsOn},
		{"record NODATA", test.Case{Qname: "www.example.org.", Qtype: dns.TypeSRV,
			Ns: []dns.RR{test.SOA(soaLine)}}, table.RecordsOn},
		{"empty non-terminal is NODATA", test.Case{Qname: "_tcp.pkg.example.org.", Qtype: dns.TypeA,
			Ns: []dns.RR{test.SOA(soaLine)}}, table.RecordsOn},
		{"below a record is an unknown name", test.Case{Qname: "a.www.example.org.", Qtype: dns.TypeA, Rcode: nextRcode}, table.RecordsOn},
		{"a host wins over a record", test.Case{Qname: "hub.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("hub.example.org. 10 IN A 100.64.0.2")}}, table.RecordsOn},
		{"a service wins over a record", test.Case{Qname: "x.cargo.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("x.cargo.example.org. 10 IN A 100.100.0.1")}}, table.RecordsOn},
		{"a record wins over an alias", test.Case{Qname: "registry.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("registry.example.org. 10 IN A 192.0.2.10")}}, table.RecordsOn},
		{"the alias still answers below the record", test.Case{Qname: "x.registry.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("x.registry.example.org. 10 IN A 100.64.0.2")}}, table.RecordsOn},
		{"record of an offline node's address passes", test.Case{Qname: "down.example.org.", Qtype: dns.TypeA, Rcode: nextRcode}, table.RecordsOn},
		{"record of a service VIP with no reachable host passes", test.Case{Qname: "docs2.example.org.", Qtype: dns.TypeA, Rcode: nextRcode}, table.RecordsOn},
		{"record under the MagicDNS suffix, not mapped", test.Case{Qname: "mapped.example.org.", Qtype: dns.TypeA, Rcode: nextRcode}, table.RecordsOn},
		{"record under the MagicDNS suffix, mapped", test.Case{Qname: "mapped.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("mapped.example.org. 10 IN A 192.0.2.20")}}, table.RecordsMagicDNS},
		{"records off", test.Case{Qname: "www.example.org.", Qtype: dns.TypeA, Rcode: nextRcode}, table.RecordsOff},
		{"a record that does not parse is left out", test.Case{Qname: "bad.example.org.", Qtype: dns.TypeMX, Rcode: nextRcode}, table.RecordsOn},
		{"no record at the apex: its other types are the public zone's", test.Case{Qname: "example.org.", Qtype: dns.TypeTXT, Rcode: nextRcode}, table.RecordsOn},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tn := newTestTailnet(controlSnapshot(), func(tn *Tailnet) {
				tn.Fall = fall.Root
				tn.tableConf.Records = c.mode
				tn.tableConf.SvcAlias = map[string]string{"crates": "cargo", "hubsvc": "hub"}
			})
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			rcode, err := tn.ServeDNS(context.Background(), rec, c.tc.Msg())
			if c.tc.Rcode == nextRcode {
				if rcode != nextRcode || rec.Msg != nil {
					t.Fatalf("ServeDNS = %d, wrote %v; want it passed to the next plugin", rcode, rec.Msg)
				}
				return
			}
			if err != nil || rcode != dns.RcodeSuccess || rec.Msg == nil {
				t.Fatalf("ServeDNS = %d, %v, wrote %v; want an answer", rcode, err, rec.Msg)
			}
			if err := test.SortAndCheck(rec.Msg, c.tc); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestServicesOff(t *testing.T) {
	tn := newTestTailnet(controlSnapshot(), func(tn *Tailnet) { tn.Fall = fall.Root; tn.tableConf.Services = false })
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if rcode, _ := tn.ServeDNS(context.Background(), rec, (&test.Case{Qname: "index.cargo.example.org.", Qtype: dns.TypeA}).Msg()); rcode != nextRcode {
		t.Errorf("index.cargo with services off: rcode %d; want it passed on (%d)", rcode, nextRcode)
	}
}

func TestParseControlOptions(t *testing.T) {
	cases := []struct {
		name    string
		input   string
		wantErr string
		check   func(*Tailnet) string
	}{
		{"defaults: services and records on", `tailnet`, "", func(tn *Tailnet) string {
			if !tn.tableConf.Services || tn.tableConf.Records != table.RecordsOn {
				return "defaults differ"
			}
			return ""
		}},
		{"services off, records magicdns, alias to a service", "tailnet {\n services off\n records magicdns\n alias Crates svc:Cargo\n alias wiki nas\n}", "", func(tn *Tailnet) string {
			switch {
			case tn.tableConf.Services, tn.tableConf.Records != table.RecordsMagicDNS:
				return "options differ"
			case tn.tableConf.SvcAlias["crates"] != "cargo", tn.tableConf.Aliases["wiki"] != "nas":
				return "aliases differ"
			}
			return ""
		}},
		{"records off", "tailnet {\n records off\n}", "", func(tn *Tailnet) string {
			if tn.tableConf.Records != table.RecordsOff {
				return "records still on"
			}
			return ""
		}},
		{"services without argument", "tailnet {\n services\n}", "Wrong argument count", nil},
		{"services bad", "tailnet {\n services maybe\n}", `services "maybe": want on or off`, nil},
		{"records bad", "tailnet {\n records all\n}", `records "all": want on, off or magicdns`, nil},
		{"alias to svc: without a name", "tailnet {\n alias crates svc:\n}", "single DNS labels", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { fixture.ParseCase(t, parse, c.input, c.wantErr, c.check) })
	}
}

func TestControlNamesCounted(t *testing.T) {
	tn := newTestTailnet(controlSnapshot(), func(tn *Tailnet) { tn.Fall = fall.Root })
	checkCounted(t, tn, []countCase{
		{"cargo.example.org.", dns.TypeA, "service"},
		{"docs.example.org.", dns.TypeA, "service_offline_fallthrough"},
		{"www.example.org.", dns.TypeTXT, "record"},
		{"www.example.org.", dns.TypeSRV, "nodata"},
		{"down.example.org.", dns.TypeA, "offline_fallthrough"},
	})
}

// TestControlNamesAllocs keeps services and extra records in the hot
// path's budget (TestServeDNSAllocs): a service answer builds its records
// as a host's does; an extra record is one copy of the stored one.
func TestControlNamesAllocs(t *testing.T) {
	tn := newTestTailnet(controlSnapshot(), nil)
	w := &test.ResponseWriter{}
	const budget = 5
	for _, q := range []*dns.Msg{
		new(dns.Msg).SetQuestion("index.cargo.example.org.", dns.TypeA),
		new(dns.Msg).SetQuestion("_cargo._tcp.pkg.example.org.", dns.TypeSRV),
	} {
		got := testing.AllocsPerRun(1000, func() { tn.ServeDNS(context.Background(), w, q) })
		if got > budget {
			t.Errorf("%s: ServeDNS allocates %v times per query; want at most %d", q.Question[0].Name, got, budget)
		}
		t.Logf("%s: %v allocations per query", q.Question[0].Name, got)
	}
}
