package test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tailhorizon/tailhorizon/test/lantest"
	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// mdnsCorefile serves example.org and example.net from the LAN on bridge;
// example.org falls through to a template standing in for the public zone.
func mdnsCorefile(bridge string, extra ...string) string {
	return fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    mdns example.org example.net {
        interface %s
        alias printer office-printer
        fallthrough example.org
        %s
    }
    template IN A example.org {
        answer "{{ .Name }} 60 IN A %s"
    }
}
`, bridge, strings.Join(extra, "\n        "), publicAnswer)
}

// lanAddr returns 198.18.NET.x or 2001:db8:NET::x.
func lanAddr(lan *lantest.LAN, v6 bool, x int) netip.Addr {
	if v6 {
		return netip.MustParseAddr(fmt.Sprintf("2001:db8:%d::%d", lan.Net, x))
	}
	return netip.MustParseAddr(fmt.Sprintf("198.18.%d.%d", lan.Net, x))
}

// waitListening waits until the mdns resolver of bridge listens.
func waitListening(t *testing.T, bridge string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); metric(t, "coredns_mdns_listening_interfaces", "interfaces", bridge) < 1; {
		if time.Now().After(deadline) {
			t.Fatalf("the mdns resolver does not listen on %s", bridge)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric returns the sum of the series of the metric called name whose
// labels include the label pairs given; for a histogram, of their counts.
func metric(t testing.TB, name string, pairs ...string) float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(pairs); i += 2 {
				if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] }) {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

func TestMDNS(t *testing.T) {
	lan := lantest.Start(t)
	avahiHost, hashiHost := lan.AddHost(t), lan.AddHost(t)
	published := map[string][]netip.Addr{
		"beta":           {lanAddr(lan, false, 20), lanAddr(lan, true, 20)},
		"office-printer": {lanAddr(lan, false, 30)},
	}
	for i := range 20 {
		published[fmt.Sprintf("host%d", i)] = []netip.Addr{lanAddr(lan, false, 100+i)}
	}
	avahi := avahiHost.RunAvahi(t, published)
	responder := hashiHost.RunResponder(t, lantest.ResponderArgs{Iface: hashiHost.Iface, Host: "gamma",
		Addrs: []netip.Addr{lanAddr(lan, false, 40), lanAddr(lan, true, 40)}, Service: "_workstation._tcp"})
	_, server := startCoreDNS(t, mdnsCorefile(lan.Bridge, "max_ttl 5s"))
	waitListening(t, lan.Bridge)

	cases := []struct {
		name  string
		qname string
		qtype uint16
		rcode int
		want  []string // answers, sorted
		soa   bool
	}{
		{"avahi A", "beta.example.org", dns.TypeA, dns.RcodeSuccess,
			[]string{"beta.example.org. 5 A " + lanAddr(lan, false, 20).String()}, false},
		{"avahi AAAA", "beta.example.org", dns.TypeAAAA, dns.RcodeSuccess,
			[]string{"beta.example.org. 5 AAAA " + lanAddr(lan, true, 20).String()}, false},
		{"deep name, mixed case", "Grafana.BETA.example.net", dns.TypeA, dns.RcodeSuccess,
			[]string{"Grafana.BETA.example.net. 5 A " + lanAddr(lan, false, 20).String()}, false},
		{"alias", "printer.example.org", dns.TypeA, dns.RcodeSuccess,
			[]string{"printer.example.org. 5 A " + lanAddr(lan, false, 30).String()}, false},
		{"NODATA for AAAA of a v4-only host", "office-printer.example.org", dns.TypeAAAA, dns.RcodeSuccess, nil, true},
		{"NODATA for MX", "beta.example.org", dns.TypeMX, dns.RcodeSuccess, nil, true},
		{"hashicorp/mdns A", "gamma.example.org", dns.TypeA, dns.RcodeSuccess,
			[]string{"gamma.example.org. 5 A " + lanAddr(lan, false, 40).String()}, false},
		{"hashicorp/mdns AAAA", "gamma.example.org", dns.TypeAAAA, dns.RcodeSuccess,
			[]string{"gamma.example.org. 5 AAAA " + lanAddr(lan, true, 40).String()}, false},
		{"NXDOMAIN without fallthrough", "nosuch.example.net", dns.TypeA, dns.RcodeNameError, nil, true},
		{"unknown falls through", "nosuch.example.org", dns.TypeA, dns.RcodeSuccess,
			[]string{"nosuch.example.org. 60 A " + publicAnswer}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := exchange(t, server, c.qname, c.qtype)
			if r.Rcode != c.rcode {
				t.Errorf("rcode = %s; want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode])
			}
			if got := sorted(answers(r)...); !slices.Equal(got, c.want) {
				t.Errorf("answers = %q; want %q", got, c.want)
			}
			if hasSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA; hasSOA != c.soa {
				t.Errorf("SOA in authority = %v; want %v (%v)", hasSOA, c.soa, r.Ns)
			}
		})
	}

	t.Run("first and cached lookups against avahi", func(t *testing.T) {
		var first, cached []time.Duration
		for i := range 20 {
			name := fmt.Sprintf("host%d.example.org", i)
			for _, list := range []*[]time.Duration{&first, &cached} {
				start := time.Now()
				r := exchange(t, server, name, dns.TypeA)
				*list = append(*list, time.Since(start))
				if !hasA(r, lanAddr(lan, false, 100+i)) {
					t.Fatalf("%s: %v; want %s", name, answers(r), lanAddr(lan, false, 100+i))
				}
			}
		}
		slices.Sort(first)
		slices.Sort(cached)
		t.Logf("first lookup over UDP against avahi: median %s, max %s; cached: median %s, max %s (20 names)",
			first[10], first[19], cached[10], cached[19])
	})

	t.Run("refreshed while asked for, gone at TTL once the responder is", func(t *testing.T) {
		ask := func() *dns.Msg { return exchange(t, server, "gamma.example.org", dns.TypeA) }
		refreshes := metric(t, "coredns_mdns_lookups_total", "reason", "refresh")
		for end := time.Now().Add(7 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			if r := ask(); !hasA(r, lanAddr(lan, false, 40)) {
				t.Fatalf("gamma while its responder runs: %v; want its address", answers(r))
			}
		}
		if got := metric(t, "coredns_mdns_lookups_total", "reason", "refresh") - refreshes; got < 1 {
			t.Errorf("refresh lookups = %v; want at least 1 in 7s of queries with a 5s TTL", got)
		}
		responder.Stop() // hashicorp/mdns sends no goodbye
		took := waitFor(t, 10*time.Second, "gamma expires", ask, fellThrough)
		t.Logf("gamma fell through %s after its responder stopped", took)
	})

	t.Run("goodbye", func(t *testing.T) {
		ask := func() *dns.Msg { return exchange(t, server, "beta.example.org", dns.TypeA) }
		if r := ask(); !hasA(r, lanAddr(lan, false, 20)) {
			t.Fatalf("beta: %v; want its address", answers(r))
		}
		avahi.Stop() // avahi-daemon says goodbye as it exits
		took := waitFor(t, 4*time.Second, "beta's goodbye", ask, fellThrough)
		t.Logf("beta fell through %s after avahi said goodbye", took)
	})
}

// TestMDNSBrowse: with services, a host offering a service type is looked
// up before anyone asks for it, so its first query is answered from memory.
func TestMDNSBrowse(t *testing.T) {
	lan := lantest.Start(t)
	h := lan.AddHost(t)
	h.RunResponder(t, lantest.ResponderArgs{Iface: h.Iface, Host: "gamma",
		Addrs: []netip.Addr{lanAddr(lan, false, 40)}, Service: "_workstation._tcp"})
	browsed := metric(t, "coredns_mdns_lookups_total", "reason", "browse")
	answered := metric(t, "coredns_mdns_lookup_duration_seconds", "answered", "true")
	_, server := startCoreDNS(t, mdnsCorefile(lan.Bridge, "services _workstation._tcp"))
	waitListening(t, lan.Bridge)
	for deadline := time.Now().Add(10 * time.Second); metric(t, "coredns_mdns_lookups_total", "reason", "browse") == browsed; {
		if time.Now().After(deadline) {
			t.Fatal("no host looked up from the browse within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for deadline := time.Now().Add(5 * time.Second); metric(t, "coredns_mdns_lookup_duration_seconds", "answered", "true") == answered; {
		if time.Now().After(deadline) {
			t.Fatal("the browsed host did not answer its lookup within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	misses := metric(t, "coredns_mdns_lookups_total", "reason", "miss")
	if r := exchange(t, server, "gamma.example.org", dns.TypeA); !hasA(r, lanAddr(lan, false, 40)) {
		t.Fatalf("gamma: %v; want its address", answers(r))
	}
	if got := metric(t, "coredns_mdns_lookups_total", "reason", "miss") - misses; got != 0 {
		t.Errorf("lookups for the first query of a browsed host = %v; want 0", got)
	}
}

// TestMDNSSpoof: an announcement that arrives with IP TTL 254 (an on-link
// source forged behind a router), or for a host nobody asked for, does not
// get in; an announcement to the group for a host that was asked for does,
// from the host's LAN address or from a secondary address of its
// interface (RFC 6762 §11).
func TestMDNSSpoof(t *testing.T) {
	lan := lantest.Start(t)
	h := lan.AddHost(t)
	secondary := netip.MustParseAddr("198.51.100.7")
	h.IP(t, "addr", "add", secondary.String()+"/32", "dev", h.Iface)
	_, server := startCoreDNS(t, mdnsCorefile(lan.Bridge))
	waitListening(t, lan.Bridge)
	evil := lanAddr(lan, false, 66).String()
	ask := func(name string) *dns.Msg { return exchange(t, server, name+".example.net", dns.TypeA) }
	spoof := func(t *testing.T, src netip.Addr, ttl int, host, reason string) {
		before := metric(t, "coredns_mdns_rejected_total", "reason", reason)
		h.Spoof(t, lantest.SpoofArgs{Iface: h.Iface, Src: src, Count: 5, TTL: ttl,
			Records: []string{host + ".local. 120 IN A " + evil}})
		if reason == "" {
			time.Sleep(100 * time.Millisecond)
			return
		}
		for deadline := time.Now().Add(5 * time.Second); metric(t, "coredns_mdns_rejected_total", "reason", reason)-before < 5; {
			if time.Now().After(deadline) {
				t.Fatalf("rejected{reason=%s} grew by %v; want 5", reason, metric(t, "coredns_mdns_rejected_total", "reason", reason)-before)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	t.Run("forged behind a router: TTL 254", func(t *testing.T) {
		ask("victim") // asked for: its answers are welcome, from the link
		spoof(t, h.IPv4, 254, "victim", "ttl")
		if r := ask("victim"); r.Rcode != dns.RcodeNameError {
			t.Errorf("victim: %s %v; want NXDOMAIN", dns.RcodeToString[r.Rcode], answers(r))
		}
	})
	t.Run("unsolicited host", func(t *testing.T) {
		spoof(t, h.IPv4, 0, "intruder", "unasked")
		if r := ask("intruder"); r.Rcode != dns.RcodeNameError {
			t.Errorf("intruder: %s %v; want NXDOMAIN", dns.RcodeToString[r.Rcode], answers(r))
		}
	})
	t.Run("on-link announcement of an asked host", func(t *testing.T) {
		ask("late") // nobody answers: a negative entry
		spoof(t, h.IPv4, 0, "late", "")
		if r := ask("late"); !hasA(r, lanAddr(lan, false, 66)) {
			t.Errorf("late: %s %v; want the announced %s", dns.RcodeToString[r.Rcode], answers(r), evil)
		}
	})
	t.Run("announcement from a secondary address", func(t *testing.T) {
		ask("second")
		spoof(t, secondary, 0, "second", "")
		if r := ask("second"); !hasA(r, lanAddr(lan, false, 66)) {
			t.Errorf("second: %s %v; want the announced %s", dns.RcodeToString[r.Rcode], answers(r), evil)
		}
	})
}

// TestChain: tailnet first, then the LAN, then the public answer. A peer
// that leaves the tailnet but is on the LAN gets its LAN address.
func TestChain(t *testing.T) {
	tn := tailnettest.Start(t)
	hub, beta := tn.AddNode(t, "hub"), tn.AddNode(t, "beta")
	api := hub.ServeLocalAPI(t)
	lan := lantest.Start(t)
	lan.AddHost(t).RunAvahi(t, map[string][]netip.Addr{"beta": {lanAddr(lan, false, 20)}})
	_, server := startCoreDNS(t, fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    tailnet example.org {
        socket %s
        fallthrough
    }
    mdns example.org {
        interface %s
        fallthrough
    }
    template IN A example.org {
        answer "{{ .Name }} 60 IN A %s"
    }
}
`, api.Path, lan.Bridge, publicAnswer))
	ask := func() *dns.Msg { return exchange(t, server, "beta.example.org", dns.TypeA) }
	waitFor(t, 20*time.Second, "beta on the tailnet", ask, func(r *dns.Msg) bool { return hasA(r, beta.IPv4) })

	beta.Close()
	took := waitFor(t, 10*time.Second, "beta on the LAN", ask, func(r *dns.Msg) bool { return hasA(r, lanAddr(lan, false, 20)) })
	t.Logf("beta answered with its LAN address %s after it left the tailnet", took)
	if r := exchange(t, server, "nosuch.example.org", dns.TypeA); !fellThrough(r) {
		t.Errorf("nosuch: %v; want the public %s", answers(r), publicAnswer)
	}
}
