package test

import (
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// publicAnswer is what the next plugin, standing in for the public zone,
// answers for every name: a query that gets it fell through.
const publicAnswer = "203.0.113.10"

// tailnetCorefile serves the tailnet zones from the LocalAPI at socket and
// passes what tailnet does not answer to a template standing in for the
// public zone. Its ttl is 10, apart from the stale table's 5, so that the
// tests tell live answers from stale ones.
func tailnetCorefile(socket string, stale time.Duration, extra ...string) string {
	return fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    tailnet example.org example.net 100.64.0.0/10 fd7a:115c:a1e0::/48 {
        socket %s
        ttl 10
        alias registry hub
        stale %s
        fallthrough example.org
        %s
    }
    template IN A example.org {
        answer "{{ .Name }} 60 IN A %s"
    }
}
`, socket, stale, strings.Join(extra, "\n        "), publicAnswer)
}

// tailnetWorld is a running tailnet with coredns watching hub's LocalAPI.
type tailnetWorld struct {
	net                   *tailnettest.Tailnet
	hub, alpha, box, beta *tailnettest.Node
	api                   *tailnettest.LocalAPI
	coredns               *caddy.Instance
	dns                   string // coredns's UDP address
}

func startWorld(t *testing.T, stale time.Duration, extra ...string) *tailnetWorld {
	w := &tailnetWorld{net: tailnettest.Start(t)}
	w.hub = w.net.AddNode(t, "hub")
	w.alpha = w.net.AddNode(t, "alpha", "tag:web")
	w.box = w.net.AddNode(t, "registry-box", "tag:web")
	w.beta = w.net.AddNode(t, "Beta")
	w.api = w.hub.ServeLocalAPI(t)
	w.coredns, w.dns = startCoreDNS(t, tailnetCorefile(w.api.Path, stale, extra...))
	// Ready once every peer is known and online.
	waitFor(t, 20*time.Second, "all peers answered", func() *dns.Msg {
		return exchange(t, w.dns, "beta.example.org", dns.TypeA)
	}, func(r *dns.Msg) bool { return hasA(r, w.beta.IPv4) })
	return w
}

func hasA(r *dns.Msg, want netip.Addr) bool {
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok && a.A.String() == want.String() {
			return true
		}
	}
	return false
}

func fellThrough(r *dns.Msg) bool {
	return len(r.Answer) == 1 && strings.HasSuffix(r.Answer[0].String(), publicAnswer)
}

func TestTailnet(t *testing.T) {
	w := startWorld(t, time.Minute)
	ttl := "10"
	cases := []struct {
		name  string
		qname string
		qtype uint16
		rcode int
		want  []string // answers, sorted
		soa   bool     // an SOA in the authority section
	}{
		{"host", "hub.example.org", dns.TypeA, dns.RcodeSuccess,
			[]string{"hub.example.org. " + ttl + " A " + w.hub.IPv4.String()}, false},
		{"deep wildcard", "a.grafana.hub.example.org", dns.TypeA, dns.RcodeSuccess,
			[]string{"a.grafana.hub.example.org. " + ttl + " A " + w.hub.IPv4.String()}, false},
		{"alias", "registry.example.org", dns.TypeA, dns.RcodeSuccess,
			[]string{"registry.example.org. " + ttl + " A " + w.hub.IPv4.String()}, false},
		{"tag alias with two peers", "web.example.org", dns.TypeA, dns.RcodeSuccess, sorted(
			"web.example.org. "+ttl+" A "+w.alpha.IPv4.String(),
			"web.example.org. "+ttl+" A "+w.box.IPv4.String()), false},
		{"AAAA", "registry-box.example.org", dns.TypeAAAA, dns.RcodeSuccess,
			[]string{"registry-box.example.org. " + ttl + " AAAA " + w.box.IPv6.String()}, false},
		{"mixed case", "Grafana.HUB.Example.org", dns.TypeA, dns.RcodeSuccess,
			[]string{"Grafana.HUB.Example.org. " + ttl + " A " + w.hub.IPv4.String()}, false},
		{"self", "hub.example.org", dns.TypeAAAA, dns.RcodeSuccess,
			[]string{"hub.example.org. " + ttl + " AAAA " + w.hub.IPv6.String()}, false},
		{"NODATA", "hub.example.org", dns.TypeMX, dns.RcodeSuccess, nil, true},
		{"NXDOMAIN with SOA", "nosuch.example.net", dns.TypeA, dns.RcodeNameError, nil, true},
		{"NXDOMAIN for PTR", "9.9.64.100.in-addr.arpa", dns.TypePTR, dns.RcodeNameError, nil, true},
		{"second zone", "hub.example.net", dns.TypeA, dns.RcodeSuccess,
			[]string{"hub.example.net. " + ttl + " A " + w.hub.IPv4.String()}, false},
		{"PTR v4", reverse(w.alpha.IPv4), dns.TypePTR, dns.RcodeSuccess,
			[]string{reverse(w.alpha.IPv4) + ". " + ttl + " PTR alpha.example.org."}, false},
		{"PTR v6", reverse(w.box.IPv6), dns.TypePTR, dns.RcodeSuccess,
			[]string{reverse(w.box.IPv6) + ". " + ttl + " PTR registry-box.example.org."}, false},
		{"apex SOA", "example.org", dns.TypeSOA, dns.RcodeSuccess, nil, false},
		{"reverse zone NS names this node in the forward zone", "64.100.in-addr.arpa", dns.TypeNS, dns.RcodeSuccess,
			[]string{"64.100.in-addr.arpa. " + ttl + " NS hub.example.org."}, false},
		{"its nameserver resolves", "hub.example.org", dns.TypeA, dns.RcodeSuccess,
			[]string{"hub.example.org. " + ttl + " A " + w.hub.IPv4.String()}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := exchange(t, w.dns, c.qname, c.qtype)
			if r.Rcode != c.rcode {
				t.Errorf("rcode = %s; want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[c.rcode])
			}
			if !r.Authoritative {
				t.Error("not authoritative")
			}
			got := sorted(answers(r)...)
			if c.qtype == dns.TypeSOA {
				if len(r.Answer) != 1 || r.Answer[0].Header().Rrtype != dns.TypeSOA {
					t.Errorf("answers = %v; want one SOA", got)
				}
			} else if !slices.Equal(got, c.want) {
				t.Errorf("answers = %q; want %q", got, c.want)
			}
			if hasSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA; hasSOA != c.soa {
				t.Errorf("SOA in authority = %v; want %v (%v)", hasSOA, c.soa, r.Ns)
			}
		})
	}

	t.Run("unknown name falls through", func(t *testing.T) {
		if r := exchange(t, w.dns, "nosuch.example.org", dns.TypeA); !fellThrough(r) {
			t.Errorf("got %v; want the next plugin's %s", answers(r), publicAnswer)
		}
	})

	t.Run("dig", func(t *testing.T) {
		if _, err := exec.LookPath("dig"); err != nil {
			t.Skip("dig not installed (apt-get install dnsutils)")
		}
		host, port, _ := strings.Cut(w.dns, ":")
		out, err := exec.Command("dig", "@"+host, "-p", port, "+short", "+time=2", "+tries=1", "wiki.hub.example.org", "A").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != w.hub.IPv4.String() {
			t.Errorf("dig = %q, %v; want %s", out, err, w.hub.IPv4)
		}
	})

	// Last: it takes beta off the tailnet.
	t.Run("offline peer falls through within 1s", func(t *testing.T) {
		w.beta.Close()
		took := waitFor(t, 10*time.Second, "beta falls through", func() *dns.Msg {
			return exchange(t, w.dns, "beta.example.org", dns.TypeA)
		}, fellThrough)
		t.Logf("beta fell through %s after it left", took)
		if took > time.Second {
			t.Errorf("fell through after %s; want within 1s", took)
		}
	})
}

func TestTailscaledGone(t *testing.T) {
	const stale = 2 * time.Second
	w := startWorld(t, stale)
	ask := func() *dns.Msg { return exchange(t, w.dns, "hub.example.org", dns.TypeA) }

	w.api.Stop()
	lost := time.Now()
	waitFor(t, time.Second, "the stale answer, with TTL <= 5", ask, func(r *dns.Msg) bool {
		return hasA(r, w.hub.IPv4) && r.Answer[0].Header().Ttl <= 5
	})
	waitFor(t, stale+5*time.Second, "stale table expires", ask, fellThrough)
	if since := time.Since(lost); since < stale {
		t.Errorf("fell through after %s; want the stale table served for %s", since, stale)
	}

	if err := w.api.Start(); err != nil {
		t.Fatal(err)
	}
	took := waitFor(t, 10*time.Second, "live answers return", ask, func(r *dns.Msg) bool {
		return hasA(r, w.hub.IPv4) && r.Answer[0].Header().Ttl == 10
	})
	t.Logf("live answers returned %s after tailscaled came back", took)
	if took > 2*time.Second {
		t.Errorf("live again after %s; want within 2s", took)
	}
}

// TestProbe: a peer that control still reports online but that no longer
// answers pings falls through once the probe has pinged it.
func TestProbe(t *testing.T) {
	w := startWorld(t, time.Minute, "probe 200ms")
	ask := func() *dns.Msg { return exchange(t, w.dns, "beta.example.org", dns.TypeA) }
	if r := ask(); !hasA(r, w.beta.IPv4) {
		t.Fatalf("beta: %v; want its tailnet address", answers(r))
	}
	w.net.PinOnline(w.beta)
	w.beta.Close()
	took := waitFor(t, 15*time.Second, "beta fails its probe and falls through", ask, fellThrough)
	t.Logf("beta fell through %s after it went silent", took)
	if r := exchange(t, w.dns, "alpha.example.org", dns.TypeA); !hasA(r, w.alpha.IPv4) {
		t.Errorf("alpha: %v; want its tailnet address, it answers pings", answers(r))
	}
}

// TestProbeOutvotesControl: a peer that control reports offline while it
// still answers pings keeps its tailnet answer, as when control restarts;
// with probing off, control's word is all.
func TestProbeOutvotesControl(t *testing.T) {
	w := startWorld(t, time.Minute)
	ask := func() *dns.Msg { return exchange(t, w.dns, "beta.example.org", dns.TypeA) }
	waitFor(t, 5*time.Second, "beta answered, and so probed", ask, func(r *dns.Msg) bool { return hasA(r, w.beta.IPv4) })
	time.Sleep(time.Second) // a probe round or two: beta answered its pings
	w.net.SetOnline(w.beta, false)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if r := ask(); !hasA(r, w.beta.IPv4) {
			t.Fatalf("beta, offline at control but answering pings: %v; want its tailnet address", answers(r))
		}
	}
	w.net.SetOnline(w.beta, true)
}

// TestReload: a reloaded Corefile takes effect at once and keeps the
// shared watch of tailscaled, so answers never stop.
func TestReload(t *testing.T) {
	w := startWorld(t, time.Minute)
	next, err := w.coredns.Restart(caddy.CaddyfileInput{
		Contents:       []byte(strings.Replace(tailnetCorefile(w.api.Path, time.Minute), "alias registry hub", "alias registry alpha", 1)),
		Filepath:       "Corefile",
		ServerTypeName: "dns",
	})
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	t.Cleanup(func() { next.Stop(); next.ShutdownCallbacks() })
	addr := next.Servers()[0].LocalAddr().String()
	if r := exchange(t, addr, "registry.example.org", dns.TypeA); !hasA(r, w.alpha.IPv4) {
		t.Errorf("registry after reload: %v; want alpha's %s at once", answers(r), w.alpha.IPv4)
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

func reverse(a netip.Addr) string {
	r, _ := dns.ReverseAddr(a.String())
	return strings.TrimSuffix(r, ".")
}
