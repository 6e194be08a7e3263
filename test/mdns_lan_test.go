package test

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/lantest"
	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// rawHost starts a raw responder for args.Host on a host of its own
// (each binds port 5353 in its namespace), after setup; args.Src defaults
// to the host's IPv4 LAN address, args.Iface is its interface.
func rawHost(t *testing.T, lan *lantest.LAN, args lantest.RawArgs, setup func(*lantest.Host, *lantest.RawArgs)) *lantest.Host {
	t.Helper()
	h := lan.AddHost(t)
	if setup != nil {
		setup(h, &args)
	}
	args.Iface = h.Iface
	if !args.Src.IsValid() {
		args.Src = h.IPv4
	}
	h.RunRaw(t, args)
	return h
}

// rejectedSince returns a function that reports how much the rejected_total series
// of reason grew since rejectedSince was called.
func rejectedSince(t *testing.T, reason string) func() float64 {
	before := metric(t, "coredns_mdns_rejected_total", "reason", reason)
	return func() float64 { return metric(t, "coredns_mdns_rejected_total", "reason", reason) - before }
}

// TestMDNSOnLink: what raw responders on the LAN say counts only from the
// link: an answer keeps only the addresses on the asking interface's
// prefixes (a docker-like 172.19.0.1 is dropped, the LAN address kept); an
// answer to the group from a secondary address of the host's interface is
// on-link (RFC 6762 §11); one that arrives with IP TTL 254, as a forged
// on-link source from behind a router does, is ignored and counted, and
// so is a unicast answer from an off-link source. IPv6 likewise, with the
// hop limit.
func TestMDNSOnLink(t *testing.T) {
	lan := lantest.Start(t)
	docker, secondary, forged, unicast := lanAddr(lan, false, 50), lanAddr(lan, false, 51), lanAddr(lan, false, 52), lanAddr(lan, false, 53)
	rawHost(t, lan, lantest.RawArgs{Host: "docker-host", Records: []string{
		"docker-host.local. 120 IN A 172.19.0.1", "docker-host.local. 120 IN A " + docker.String(),
		"docker-host.local. 120 IN AAAA 2001:db8:ffff::1"}}, nil)
	rawHost(t, lan, lantest.RawArgs{Host: "second", Src: netip.MustParseAddr("198.51.100.21"),
		Records: []string{"second.local. 120 IN A " + secondary.String()}},
		func(h *lantest.Host, _ *lantest.RawArgs) { h.IP(t, "addr", "add", "198.51.100.21/32", "dev", h.Iface) })
	rawHost(t, lan, lantest.RawArgs{Host: "forged", TTL: 254, Records: []string{"forged.local. 120 IN A " + forged.String()}}, nil)
	rawHost(t, lan, lantest.RawArgs{Host: "uni", Src: netip.MustParseAddr("198.51.100.22"), Unicast: true,
		Records: []string{"uni.local. 120 IN A " + unicast.String()}},
		func(h *lantest.Host, _ *lantest.RawArgs) { h.IP(t, "addr", "add", "198.51.100.22/32", "dev", h.Iface) })
	fromIPv6 := func(h *lantest.Host, a *lantest.RawArgs) { a.Src = h.IPv6 }
	v6, v6Forged := lanAddr(lan, true, 54), lanAddr(lan, true, 55)
	rawHost(t, lan, lantest.RawArgs{Host: "six", Records: []string{
		"six.local. 120 IN AAAA 2001:db8:ffff::54", "six.local. 120 IN AAAA " + v6.String()}}, fromIPv6)
	rawHost(t, lan, lantest.RawArgs{Host: "six-forged", TTL: 254, Records: []string{"six-forged.local. 120 IN AAAA " + v6Forged.String()}}, fromIPv6)
	_, server := startCoreDNS(t, mdnsCorefile(lan.Bridge))
	waitListening(t, lan.Bridge)

	t.Run("IPv6: off-link address dropped, LAN address kept", func(t *testing.T) {
		r := exchange(t, server, "six.example.net", dns.TypeAAAA)
		if got, want := answers(r), []string{"six.example.net. 10 AAAA " + v6.String()}; !slices.Equal(got, want) {
			t.Errorf("answers = %q; want %q", got, want)
		}
	})
	t.Run("IPv6: hop limit 254", func(t *testing.T) {
		ttl := rejectedSince(t, "ttl")
		if r := exchange(t, server, "six-forged.example.net", dns.TypeAAAA); r.Rcode != dns.RcodeNameError {
			t.Errorf("six-forged: %s %v; want NXDOMAIN", dns.RcodeToString[r.Rcode], answers(r))
		}
		if got := ttl(); got < 1 {
			t.Errorf("rejected{reason=ttl} grew by %v; want at least 1", got)
		}
	})
	t.Run("off-link address dropped, LAN address kept", func(t *testing.T) {
		offLink := rejectedSince(t, "off_link_address")
		r := exchange(t, server, "docker-host.example.net", dns.TypeA)
		if got, want := answers(r), []string{"docker-host.example.net. 10 A " + docker.String()}; !slices.Equal(got, want) {
			t.Errorf("answers = %q; want %q", got, want)
		}
		if r := exchange(t, server, "docker-host.example.net", dns.TypeAAAA); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
			t.Errorf("AAAA: %s %v; want NODATA: its only AAAA is off-link", dns.RcodeToString[r.Rcode], answers(r))
		}
		if got := offLink(); got < 2 {
			t.Errorf("rejected{reason=off_link_address} grew by %v; want at least 2", got)
		}
	})
	t.Run("answer to the group from a secondary address", func(t *testing.T) {
		if r := exchange(t, server, "second.example.net", dns.TypeA); !hasA(r, secondary) {
			t.Errorf("second: %s %v; want %s", dns.RcodeToString[r.Rcode], answers(r), secondary)
		}
	})
	t.Run("IP TTL 254", func(t *testing.T) {
		ttl := rejectedSince(t, "ttl")
		if r := exchange(t, server, "forged.example.net", dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Errorf("forged: %s %v; want NXDOMAIN", dns.RcodeToString[r.Rcode], answers(r))
		}
		if got := ttl(); got < 1 {
			t.Errorf("rejected{reason=ttl} grew by %v; want at least 1", got)
		}
	})
	t.Run("unicast answer from an off-link source", func(t *testing.T) {
		offLink := rejectedSince(t, "off_link")
		if r := exchange(t, server, "uni.example.net", dns.TypeA); r.Rcode != dns.RcodeNameError {
			t.Errorf("uni: %s %v; want NXDOMAIN", dns.RcodeToString[r.Rcode], answers(r))
		}
		if got := offLink(); got < 1 {
			t.Errorf("rejected{reason=off_link} grew by %v; want at least 1", got)
		}
	})
}

// TestMDNSOneFamily: the first AAAA query for an IPv4-only host gets
// NODATA long before the timeout (2 s here): avahi and a raw responder
// that send NSEC end the wait at once, a raw responder without NSEC
// grace after its A. A and AAAA are asked in one question and cached
// together, so the A that follows is answered from the cache.
func TestMDNSOneFamily(t *testing.T) {
	lan := lantest.Start(t)
	v4 := lanAddr(lan, false, 60)
	lan.AddHost(t).RunAvahi(t, map[string][]netip.Addr{"avahi4": {v4}})
	rawHost(t, lan, lantest.RawArgs{Host: "nsec4", Records: []string{"nsec4.local. 120 IN A " + v4.String(), "nsec4.local. 120 IN NSEC nsec4.local. A"}}, nil)
	rawHost(t, lan, lantest.RawArgs{Host: "plain4", Records: []string{"plain4.local. 120 IN A " + v4.String()}}, nil)
	_, server := startCoreDNS(t, mdnsCorefile(lan.Bridge, "timeout 2s"))
	waitListening(t, lan.Bridge)
	for _, host := range []string{"avahi4", "nsec4", "plain4"} {
		t.Run(host, func(t *testing.T) {
			misses := metric(t, "coredns_mdns_lookups_total", "interfaces", lan.Bridge, "reason", "miss")
			start := time.Now()
			r := exchange(t, server, host+".example.net", dns.TypeAAAA)
			took := time.Since(start)
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
				t.Errorf("AAAA: %s %v; want NODATA with the SOA", dns.RcodeToString[r.Rcode], answers(r))
			}
			if took > time.Second {
				t.Errorf("NODATA after %s; want it well before the 2s timeout", took)
			}
			if r := exchange(t, server, host+".example.net", dns.TypeA); !hasA(r, v4) {
				t.Errorf("A: %v; want %s", answers(r), v4)
			}
			if got := metric(t, "coredns_mdns_lookups_total", "interfaces", lan.Bridge, "reason", "miss") - misses; got != 1 {
				t.Errorf("lookups for AAAA then A = %v; want 1: both are asked together", got)
			}
			t.Logf("first AAAA of IPv4-only %s: NODATA after %s", host, took)
		})
	}
}

// TestMDNSDeviceChain: the device chain, fallback → tailnet (fallthrough)
// → mdns (fallthrough) → the public authority. mdns asks the LAN only
// for the tailnet's hosts and those of its hosts option: a public-only
// name goes on without an mDNS question, every time. It logs the
// latencies docs/benchmarks.md quotes.
func TestMDNSDeviceChain(t *testing.T) {
	tn := tailnettest.Start(t)
	hub := tn.AddNode(t, "hub")
	beta := tn.AddNode(t, "beta")
	api := hub.ServeLocalAPI(t)
	lan := lantest.Start(t)
	published := map[string][]netip.Addr{
		"beta":    {lanAddr(lan, false, 20)},
		"printer": {lanAddr(lan, false, 30)},
	}
	for i := range 10 {
		published[fmt.Sprintf("cam%d", i)] = []netip.Addr{lanAddr(lan, false, 100+i)}
	}
	lan.AddHost(t).RunAvahi(t, published)
	lanOnly := "printer cam0 cam1 cam2 cam3 cam4 cam5 cam6 cam7 cam8 cam9"
	_, server := startCoreDNS(t, fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    fallback {
        to %s
    }
    tailnet example.org {
        socket %s
        fallthrough
    }
    mdns example.org {
        interface %s
        hosts %s
        fallthrough
    }
}
`, startAuthority(t), api.Path, lan.Bridge, lanOnly))
	waitListening(t, lan.Bridge)
	waitFor(t, 20*time.Second, "beta on the tailnet", func() *dns.Msg { return exchange(t, server, "beta.example.org", dns.TypeA) },
		func(r *dns.Msg) bool { return hasA(r, beta.IPv4) })

	timed := func(name string, qtype uint16) (*dns.Msg, time.Duration) {
		start := time.Now()
		r := exchange(t, server, name, qtype)
		return r, time.Since(start)
	}
	report := func(what string, d []time.Duration) {
		slices.Sort(d)
		t.Logf("%s: median %s, max %s (%d queries)", what, d[len(d)/2], d[len(d)-1], len(d))
	}

	t.Run("public-only names: no mDNS question", func(t *testing.T) {
		misses := metric(t, "coredns_mdns_lookups_total", "interfaces", lan.Bridge, "reason", "miss")
		var first []time.Duration
		for i := range 30 {
			r, took := timed(fmt.Sprintf("blog%d.example.org", i), dns.TypeA)
			if answerData(r) != vpsIPv4 {
				t.Fatalf("blog%d: %s %v; want the public %s", i, dns.RcodeToString[r.Rcode], answers(r), vpsIPv4)
			}
			first = append(first, took)
		}
		if got := metric(t, "coredns_mdns_lookups_total", "interfaces", lan.Bridge, "reason", "miss") - misses; got != 0 {
			t.Errorf("mDNS lookups for 30 public-only names = %v; want 0", got)
		}
		report("first lookup of a public-only name (fallback, tailnet, mdns, public)", first)
	})
	t.Run("LAN-only hosts of the hosts option: first and cached", func(t *testing.T) {
		var first, cached []time.Duration
		for i := range 10 {
			name, want := fmt.Sprintf("cam%d.example.org", i), lanAddr(lan, false, 100+i)
			for _, list := range []*[]time.Duration{&first, &cached} {
				r, took := timed(name, dns.TypeA)
				if !hasA(r, want) {
					t.Fatalf("%s: %v; want %s", name, answers(r), want)
				}
				*list = append(*list, took)
			}
		}
		report("first lookup via avahi through the chain", first)
		report("cached, through the chain", cached)
	})
	t.Run("first AAAA of an IPv4-only LAN host", func(t *testing.T) {
		r, took := timed("printer.example.org", dns.TypeAAAA)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
			t.Errorf("printer AAAA: %s %v; want NODATA", dns.RcodeToString[r.Rcode], answers(r))
		}
		t.Logf("first AAAA of IPv4-only printer through the chain: NODATA after %s", took)
	})
	t.Run("a tailnet host off the tailnet is asked on the LAN", func(t *testing.T) {
		beta.Close()
		took := waitFor(t, 10*time.Second, "beta on the LAN", func() *dns.Msg { return exchange(t, server, "beta.example.org", dns.TypeA) },
			func(r *dns.Msg) bool { return hasA(r, lanAddr(lan, false, 20)) })
		t.Logf("beta answered with its LAN address %s after it left the tailnet", took)
	})
}

// TestMDNSReloadLowers: a reload that lowers size and max_ttl lowers them
// on the resolver the server blocks share: the cache shrinks to the new
// size at once, and a host learnt afterwards is answered within the new
// cap.
func TestMDNSReloadLowers(t *testing.T) {
	lan := lantest.Start(t)
	lan.AddHost(t).RunAvahi(t, map[string][]netip.Addr{"beta": {lanAddr(lan, false, 20)}, "gamma": {lanAddr(lan, false, 21)}})
	inst, server := startCoreDNS(t, mdnsCorefile(lan.Bridge, "size 50", "ttl 60", "timeout 50ms"))
	waitListening(t, lan.Bridge)
	var wg sync.WaitGroup
	for i := range 20 { // nobody has them: 20 negative entries, one wait
		wg.Go(func() { exchange(t, server, fmt.Sprintf("nosuch%d.example.org", i), dns.TypeA) })
	}
	wg.Wait()
	if r := exchange(t, server, "beta.example.net", dns.TypeA); len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 60 {
		t.Fatalf("beta before the reload: %v; want its A with TTL 60", answers(r))
	}
	if got := metric(t, "coredns_mdns_entries", "interfaces", lan.Bridge); got != 21 {
		t.Fatalf("entries before the reload = %v; want 21", got)
	}
	next, err := inst.Restart(caddy.CaddyfileInput{Contents: []byte(mdnsCorefile(lan.Bridge, "size 5", "ttl 60", "timeout 50ms", "max_ttl 5s")),
		Filepath: "Corefile", ServerTypeName: "dns"})
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	t.Cleanup(func() { next.Stop(); next.ShutdownCallbacks() })
	server = next.Servers()[0].LocalAddr().String()
	if got := metric(t, "coredns_mdns_entries", "interfaces", lan.Bridge); got != 5 {
		t.Errorf("entries after the reload = %v; want the new size, 5", got)
	}
	if r := exchange(t, server, "gamma.example.net", dns.TypeA); len(r.Answer) != 1 || r.Answer[0].Header().Ttl > 5 {
		t.Errorf("gamma after the reload: %v; want its A with a TTL of at most the new max_ttl, 5s", answers(r))
	}
}
