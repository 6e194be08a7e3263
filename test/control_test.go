package test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"tailscale.com/tailcfg"

	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// controlCorefile serves example.org from the tailnet at socket, with the
// public authority at upstream behind the fallback, which keeps the name
// "pub" public. probe is the probe interval, or off, so that control's
// online bit alone says whether a host is reachable.
func controlCorefile(socket, upstream, probe string) string {
	return fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    tailnet example.org {
        socket %s
        ttl 10
        probe %s
        records magicdns
        alias crates svc:cargo
    }
    fallback example.org {
        to %s
        policy pub public
    }
}
`, socket, probe, upstream)
}

// rdataAre returns a check that an answer is NOERROR with exactly the
// records want, each "TYPE RDATA" without owner and TTL, in any order;
// none for NODATA.
func rdataAre(want ...string) func(*dns.Msg) bool {
	want = slices.Sorted(slices.Values(want))
	return func(r *dns.Msg) bool {
		var got []string
		for _, a := range answers(r) {
			got = append(got, strings.Join(strings.Fields(a)[2:], " "))
		}
		slices.Sort(got)
		return r.Rcode == dns.RcodeSuccess && slices.Equal(got, want)
	}
}

// TestControlPushed: with the in-process control server, a Tailscale
// Service is answered with its VIPs while one of its hosts is online and
// passes to the public answer while none is, and control's extra records
// appear live, of every type, under the zone and mapped from the MagicDNS
// suffix; the fallback's per-name policy applies to them as to hosts.
func TestControlPushed(t *testing.T) {
	tn := tailnettest.Start(t)
	hub := tn.AddNode(t, "hub")
	alpha := tn.AddNode(t, "alpha")
	beta := tn.AddNode(t, "beta")
	api := hub.ServeLocalAPI(t)
	auth := startAuthority(t)
	_, srv := startCoreDNS(t, controlCorefile(api.Path, auth, "off"))
	ask := func(name string, qtype uint16) func() *dns.Msg {
		return func() *dns.Msg { return exchange(t, srv, name, qtype) }
	}
	is := rdataAre
	public := is("A " + vpsIPv4)
	waitFor(t, 20*time.Second, "beta answered", ask("beta.example.org", dns.TypeA), is("A "+beta.IPv4.String()))

	vip4, vip6 := netip.MustParseAddr("100.100.0.1"), netip.MustParseAddr("fd7a:115c:a1e0:ab12::1")
	t.Run("service", func(t *testing.T) {
		tn.Control.SetNodeCapMap(hub.Key, tailcfg.NodeCapMap{
			tailcfg.NodeCapability(tailcfg.NodeAttrPrefixServices) + "cargo-id": {
				tailcfg.RawMessage(fmt.Sprintf(`{"Name":"svc:cargo","Addrs":[%q,%q]}`, vip4, vip6)),
			},
		})
		// No host yet: the name passes, as an offline peer's does.
		waitFor(t, 10*time.Second, "cargo without hosts is public", ask("cargo.example.org", dns.TypeA), public)
		for _, n := range []*tailnettest.Node{alpha, beta} {
			tn.Control.SetSubnetRoutes(n.Key, []netip.Prefix{netip.PrefixFrom(vip4, 32), netip.PrefixFrom(vip6, 128)})
		}
		waitFor(t, 10*time.Second, "cargo answered with its VIP", ask("cargo.example.org", dns.TypeA), is("A "+vip4.String()))
		cases := []struct {
			qname string
			qtype uint16
			want  string
		}{
			{"cargo.example.org", dns.TypeAAAA, "AAAA " + vip6.String()},
			{"index.cargo.example.org", dns.TypeA, "A " + vip4.String()},
			{"crates.example.org", dns.TypeA, "A " + vip4.String()},
			{"hub.example.org", dns.TypeA, "A " + hub.IPv4.String()},
		}
		for _, c := range cases {
			if r := exchange(t, srv, c.qname, c.qtype); !is(c.want)(r) {
				t.Errorf("%s %s: got %v; want %q", c.qname, dns.TypeToString[c.qtype], answers(r), c.want)
			}
		}
		tn.SetOnline(alpha, false)
		waitFor(t, 10*time.Second, "alpha offline", ask("alpha.example.org", dns.TypeA), public)
		if r := exchange(t, srv, "cargo.example.org", dns.TypeA); !is("A " + vip4.String())(r) {
			t.Errorf("cargo with beta still online: got %v; want its VIP", answers(r))
		}
		tn.SetOnline(beta, false)
		took := waitFor(t, 10*time.Second, "cargo public with both hosts offline", ask("crates.example.org", dns.TypeA), public)
		t.Logf("cargo passed on %s after its last host went offline", took)
		tn.SetOnline(beta, true)
		took = waitFor(t, 10*time.Second, "cargo back with beta", ask("cargo.example.org", dns.TypeA), is("A "+vip4.String()))
		t.Logf("cargo answered again %s after beta came back", took)
	})

	t.Run("extra records", func(t *testing.T) {
		if r := exchange(t, srv, "www.example.org", dns.TypeA); !is("A " + wwwIPv4)(r) {
			t.Fatalf("www before any record: got %v; want the public answer", answers(r))
		}
		tn.Control.AddDNSRecords(
			tailcfg.DNSRecord{Name: "www.example.org", Value: "192.0.2.1"},
			tailcfg.DNSRecord{Name: "www.example.org", Value: "192.0.2.2"},
			tailcfg.DNSRecord{Name: "www.example.org", Type: "TXT", Value: "v=spf1 -all"},
			tailcfg.DNSRecord{Name: "docs.example.org", Type: "CNAME", Value: "www.example.org."},
			tailcfg.DNSRecord{Name: "_cargo._tcp.example.org", Type: "SRV", Value: "0 5 443 cargo.example.org."},
			tailcfg.DNSRecord{Name: "wiki." + tailnettest.Domain, Value: alpha.IPv4.String()},
			tailcfg.DNSRecord{Name: "pub.example.org", Value: "192.0.2.3"},
		)
		took := waitFor(t, 10*time.Second, "www from control", ask("www.example.org", dns.TypeA), is("A 192.0.2.1", "A 192.0.2.2"))
		t.Logf("records answered %s after control pushed them", took)
		cases := []struct {
			qname string
			qtype uint16
			want  []string
		}{
			{"www.example.org", dns.TypeTXT, []string{`TXT "v=spf1 -all"`}},
			{"docs.example.org", dns.TypeA, []string{"CNAME www.example.org.", "A 192.0.2.1", "A 192.0.2.2"}},
			{"_cargo._tcp.example.org", dns.TypeSRV, []string{"SRV 0 5 443 cargo.example.org."}},
			{"www.example.org", dns.TypeAAAA, nil},                   // NODATA
			{"pub.example.org", dns.TypeA, []string{"A " + vpsIPv4}}, // policy: public only
		}
		for _, c := range cases {
			r := exchange(t, srv, c.qname, c.qtype)
			if !is(c.want...)(r) {
				t.Errorf("%s %s: got %s %v; want %q", c.qname, dns.TypeToString[c.qtype], dns.RcodeToString[r.Rcode], answers(r), c.want)
			}
		}
		// wiki is alpha's address, so it follows alpha, which is offline.
		if r := exchange(t, srv, "wiki.example.org", dns.TypeA); !public(r) {
			t.Errorf("wiki while alpha is offline: got %v; want the public answer", answers(r))
		}
		tn.SetOnline(alpha, true)
		waitFor(t, 10*time.Second, "wiki with alpha back", ask("wiki.example.org", dns.TypeA), is("A "+alpha.IPv4.String()))
	})

	t.Run("hosts leave", func(t *testing.T) {
		alpha.Close()
		if r := exchange(t, srv, "cargo.example.org", dns.TypeA); !is("A " + vip4.String())(r) {
			t.Errorf("cargo with beta still up: got %v; want its VIP", answers(r))
		}
		beta.Close()
		waitFor(t, 10*time.Second, "cargo public once its hosts are gone", ask("cargo.example.org", dns.TypeA), public)
		waitFor(t, 10*time.Second, "wiki public once alpha is gone", ask("wiki.example.org", dns.TypeA), public)
	})
}
