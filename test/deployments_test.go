package test

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/fixture"
	"github.com/tailhorizon/tailhorizon/test/lantest"
	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// Client addresses the deployment tests ask from. The test binary runs in
// its own network namespace, where lo holds 198.18.0.1 (standing in for a
// LAN address) and the tests add a tailnet address.
var (
	tailnetClient = netip.MustParseAddr("100.64.99.9")
	lanClient     = netip.MustParseAddr("198.18.0.1")
	publicClient  = netip.MustParseAddr("127.0.0.1")
)

// deployment starts a shipped Corefile from docs/corefiles against the test
// tailnet and authority, and returns its address. replace holds more
// old, new pairs to replace in the file first.
func deployment(t *testing.T, file, socket, authority string, replace ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "corefiles", file))
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(fixture.Port(t))
	corefile := strings.NewReplacer(append(replace,
		"/var/run/tailscale/tailscaled.sock", socket,
		"/run/tailscale/tailscaled.sock", socket, // as mounted in a container
		"127.0.0.1:5301", authority,
		"192.0.2.53", authority, // the authority, seen from a container
		"example.org:5300 {", "example.org:"+port+" {",
		"example.org:53 {", "example.org:"+port+" {",
		// The LAN of the test namespace; the shipped files name the private ranges.
		"'192.168.0.0/16'", "'198.18.0.0/15'",
	)...).Replace(string(b))
	startCoreDNS(t, corefile)
	return net.JoinHostPort("127.0.0.1", port)
}

// exchangeFrom asks server from the source address from.
func exchangeFrom(t *testing.T, from netip.Addr, server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: from.AsSlice()}}}
	r, _, err := c.Exchange(new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype), server)
	if err != nil {
		t.Fatalf("query %s from %s: %v", name, from, err)
	}
	return r
}

// addLoopbackAddr gives lo another address for the rest of the test.
func addLoopbackAddr(t *testing.T, a netip.Addr) {
	t.Helper()
	prefix := netip.PrefixFrom(a, a.BitLen()).String()
	if out, err := exec.Command("ip", "addr", "add", prefix, "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add %s: %v: %s", prefix, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "addr", "del", prefix, "dev", "lo").Run() })
}

// waitLoaded waits until srv answers a tailnet client with hubIP for a
// name below hub: the tailnet's table is loaded. A new name each time: the
// public answer to a query made before the table is loaded may be cached.
func waitLoaded(t *testing.T, srv, hubIP string) {
	t.Helper()
	n := 0
	waitFor(t, 20*time.Second, "the tailnet is loaded", func() *dns.Msg {
		n++
		return exchangeFrom(t, tailnetClient, srv, "w"+strconv.Itoa(n)+".hub.example.org", dns.TypeA)
	}, func(r *dns.Msg) bool { return answerData(r) == hubIP })
}

type deploymentCase struct {
	name  string
	from  netip.Addr
	qname string
	qtype uint16
	rcode int
	want  string // the data of the one answer; "" for none
}

func TestDeployments(t *testing.T) {
	tn := tailnettest.Start(t)
	hub := tn.AddNode(t, "hub")
	tn.AddNode(t, "beta")
	api := hub.ServeLocalAPI(t)
	auth := startAuthority(t)
	addLoopbackAddr(t, tailnetClient)
	hubIP := hub.IPv4.String()

	deployments := []struct {
		file  string
		cases []deploymentCase
	}{
		{"device.Corefile", []deploymentCase{
			{"tailnet name", publicClient, "grafana.hub.example.org", dns.TypeA, dns.RcodeSuccess, hubIP},
			{"alias", publicClient, "registry.example.org", dns.TypeA, dns.RcodeSuccess, hubIP},
			{"unknown name goes public", publicClient, "blog.example.org", dns.TypeA, dns.RcodeSuccess, vpsIPv4},
			{"acme goes public", publicClient, "_acme-challenge.hub.example.org", dns.TypeTXT, dns.RcodeSuccess, `"public-token"`},
		}},
		{"split-dns.Corefile", []deploymentCase{
			{"tailnet client gets the tailnet address", tailnetClient, "grafana.hub.example.org", dns.TypeA, dns.RcodeSuccess, hubIP},
			{"tailnet client gets the private name", tailnetClient, "registry.example.org", dns.TypeA, dns.RcodeSuccess, hubIP},
			{"LAN client gets no tailnet address", lanClient, "hub.example.org", dns.TypeA, dns.RcodeSuccess, vpsIPv4},
			{"LAN client: private name is NXDOMAIN", lanClient, "registry.example.org", dns.TypeA, dns.RcodeNameError, ""},
			{"other client gets the public answer", publicClient, "hub.example.org", dns.TypeA, dns.RcodeSuccess, vpsIPv4},
			{"other client: private name is NXDOMAIN", publicClient, "registry.example.org", dns.TypeA, dns.RcodeNameError, ""},
		}},
		{"public.Corefile", []deploymentCase{
			{"tailnet client gets the tailnet address", tailnetClient, "hub.example.org", dns.TypeA, dns.RcodeSuccess, hubIP},
			{"public client gets the VPS", publicClient, "hub.example.org", dns.TypeA, dns.RcodeSuccess, vpsIPv4},
			{"public client gets the VPS over IPv6", publicClient, "hub.example.org", dns.TypeAAAA, dns.RcodeSuccess, vpsIPv6},
			{"public client: private name is NXDOMAIN", publicClient, "x.registry.example.org", dns.TypeA, dns.RcodeNameError, ""},
			{"public client: www", publicClient, "www.example.org", dns.TypeA, dns.RcodeSuccess, wwwIPv4},
		}},
	}
	for _, d := range deployments {
		t.Run(d.file, func(t *testing.T) {
			srv := deployment(t, d.file, api.Path, auth)
			waitLoaded(t, srv, hubIP)
			for _, c := range d.cases {
				t.Run(c.name, func(t *testing.T) {
					r := exchangeFrom(t, c.from, srv, c.qname, c.qtype)
					if r.Rcode != c.rcode || answerData(r) != c.want {
						t.Errorf("got %s %q; want %s %q", dns.RcodeToString[r.Rcode], answerData(r), dns.RcodeToString[c.rcode], c.want)
					}
				})
			}
		})
	}
}

// TestPublicViewLeaksNothing asks the deployments with a public-facing
// view, as a public client, for every name the tailnet has and more, with every type
// that can carry an address or a name, and checks that no record in any
// section carries a tailnet or LAN address (A, AAAA, or written in its
// data: TXT, HTTPS hints) or a tailnet name, and that the private name
// registry gets NXDOMAIN whatever the type.
func TestPublicViewLeaksNothing(t *testing.T) {
	tn := tailnettest.Start(t)
	hub := tn.AddNode(t, "hub")
	beta := tn.AddNode(t, "beta")
	api := hub.ServeLocalAPI(t)
	auth := startAuthority(t)
	addLoopbackAddr(t, tailnetClient)

	hidden := []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("fd7a:115c:a1e0::/48"),
		netip.MustParsePrefix("198.18.0.0/15")} // tailnet, and the test namespace's LAN
	leaks := func(data string) bool {
		for _, tok := range strings.FieldsFunc(data, func(r rune) bool { return strings.ContainsRune(" \t\"=,", r) }) {
			addr, err := netip.ParseAddr(tok)
			if err == nil && (addr.IsPrivate() || addr.IsLinkLocalUnicast() || addr.IsLoopback() ||
				slices.ContainsFunc(hidden, func(p netip.Prefix) bool { return p.Contains(addr) })) {
				return true
			}
		}
		data = strings.ToLower(data)
		return strings.Contains(data, tailnettest.Domain) || strings.Contains(data, "registry.")
	}
	names := []string{"hub", "beta", "registry", "x.registry", "grafana.hub", "www", "example.org", "ns1", tailnettest.Domain}
	var queries []string
	for _, n := range names {
		queries = append(queries, strings.TrimSuffix(n+".example.org", ".example.org.example.org"))
	}
	for _, ip := range []netip.Addr{hub.IPv4, hub.IPv6, beta.IPv4} {
		r, _ := dns.ReverseAddr(ip.String())
		queries = append(queries, r)
	}
	qtypes := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypePTR, dns.TypeANY, dns.TypeCNAME, dns.TypeTXT,
		dns.TypeSRV, dns.TypeHTTPS, dns.TypeMX, dns.TypeNS, dns.TypeSOA}
	for _, file := range []string{"public.Corefile", "split-dns.Corefile"} {
		t.Run(file, func(t *testing.T) {
			srv := deployment(t, file, api.Path, auth)
			waitLoaded(t, srv, hub.IPv4.String()) // else a leak could hide behind a table not loaded yet
			for _, q := range queries {
				for _, qtype := range qtypes {
					r := exchangeFrom(t, publicClient, srv, q, qtype)
					for _, rr := range append(append(r.Answer, r.Ns...), r.Extra...) {
						if leaks(rr.String()[len(rr.Header().String()):]) {
							t.Errorf("%s %s leaked %s", q, dns.TypeToString[qtype], rr)
						}
					}
					if strings.Contains(q, "registry") && (r.Rcode != dns.RcodeNameError || len(r.Answer) > 0) {
						t.Errorf("%s %s = %s with %d answers; want NXDOMAIN, a private name", q, dns.TypeToString[qtype], dns.RcodeToString[r.Rcode], len(r.Answer))
					}
				}
			}
		})
	}
}

// TestSplitDNSLAN: a LAN client of the shipped split-DNS Corefile gets the
// LAN address of a host on the LAN, and the private name from the LAN,
// while other clients still get only the public answer.
func TestSplitDNSLAN(t *testing.T) {
	tn := tailnettest.Start(t)
	hub := tn.AddNode(t, "hub")
	api := hub.ServeLocalAPI(t)
	auth := startAuthority(t)
	addLoopbackAddr(t, tailnetClient)
	lan := lantest.Start(t)
	hubLAN := lanAddr(lan, false, 20)
	lan.AddHost(t).RunAvahi(t, map[string][]netip.Addr{"hub": {hubLAN}})
	srv := deployment(t, "split-dns.Corefile", api.Path, auth,
		"    mdns {\n", "    mdns {\n        interface "+lan.Bridge+"\n")
	waitLoaded(t, srv, hub.IPv4.String())
	waitListening(t, lan.Bridge)

	ask := func(from netip.Addr, name string) func() *dns.Msg {
		return func() *dns.Msg { return exchangeFrom(t, from, srv, name, dns.TypeA) }
	}
	waitFor(t, 10*time.Second, "the LAN client gets hub's LAN address", ask(lanClient, "grafana.hub.example.org"),
		func(r *dns.Msg) bool { return answerData(r) == hubLAN.String() })
	cases := []struct {
		name  string
		from  netip.Addr
		qname string
		rcode int
		want  string
	}{
		{"LAN client: the private name from the LAN", lanClient, "registry.example.org", dns.RcodeSuccess, hubLAN.String()},
		{"LAN client: a host not on the LAN goes public", lanClient, "blog.example.org", dns.RcodeSuccess, vpsIPv4},
		{"tailnet client: the tailnet address", tailnetClient, "hub.example.org", dns.RcodeSuccess, hub.IPv4.String()},
		{"other client: the public answer", publicClient, "hub.example.org", dns.RcodeSuccess, vpsIPv4},
		{"other client: private name is NXDOMAIN", publicClient, "registry.example.org", dns.RcodeNameError, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := exchangeFrom(t, c.from, srv, c.qname, dns.TypeA)
			if r.Rcode != c.rcode || answerData(r) != c.want {
				t.Errorf("got %s %q; want %s %q", dns.RcodeToString[r.Rcode], answerData(r), dns.RcodeToString[c.rcode], c.want)
			}
		})
	}
}
