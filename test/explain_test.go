package test

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/fixture"
	"github.com/tailhorizon/tailhorizon/test/lantest"
	"github.com/tailhorizon/tailhorizon/test/realnet"
	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// explainCorefile is the split horizon of docs/corefiles/split-dns.Corefile
// on loopback: the private view (the client 127.0.0.1, standing in for
// the tailnet) gets fallback's explanations, the public one (everybody
// else) only the EDE of ede, though it runs the same tailnet.
func explainCorefile(port int, socket, upstream string) string {
	block := func(view, options string) string {
		return fmt.Sprintf(`example.org:%d {
    bind 127.0.0.1 127.0.0.2
    %s
    fallback {
        to %s
        policy registry tailnet
        policy www public
        %s
    }
    tailnet {
        socket %s
        ttl 10
        stale 1m
        probe 200ms
        alias registry beta
        fallthrough
    }
}
`, port, view, upstream, options, socket)
	}
	return block("view private {\n        expr client_ip() == '127.0.0.1'\n    }", "explain 127.0.0.1") + block("", "ede")
}

// edeLine matches dig's rendering of an Extended DNS Error (RFC 8914).
var edeLine = regexp.MustCompile(`(?m)^; EDE: (\d+) \([^)]*\)(?:: \((.*)\))?$`)

// digEDE asks server, from the source address from, for name's A records
// with dig, and returns the rcode and the Extended DNS Error dig shows:
// code -1 and "" for none.
func digEDE(t *testing.T, from, server, name string) (string, int, string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(server)
	out, err := exec.Command("dig", "@"+host, "-p", port, "-b", from, "+tries=1", "+time=2", name, "A").CombinedOutput()
	if err != nil {
		t.Fatalf("dig %s: %v: %s", name, err, out)
	}
	status := regexp.MustCompile(`status: ([A-Z]+)`).FindSubmatch(out)
	if status == nil {
		t.Fatalf("dig %s: no status in\n%s", name, out)
	}
	m := edeLine.FindSubmatch(out)
	if m == nil {
		return string(status[1]), -1, ""
	}
	code, _ := strconv.Atoi(string(m[1]))
	return string(status[1]), code, string(m[2])
}

// TestExplain: dig shows why an answer is not the first source's, to the
// clients of the private view, and the public view's EDE text names no
// host, source, reason or rule.
func TestExplain(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		tailnettest.SkipOrFail(t, "needs dig (apt-get install dnsutils)")
	}
	tn := tailnettest.Start(t)
	hub := tn.AddNode(t, "hub")
	beta := tn.AddNode(t, "beta")
	gamma := tn.AddNode(t, "gamma")
	api := hub.ServeLocalAPI(t)
	port := fixture.Port(t)
	startCoreDNS(t, explainCorefile(port, api.Path, startAuthority(t)))
	srv := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitFor(t, 20*time.Second, "every peer answered", func() *dns.Msg { return exchange(t, srv, "gamma.example.org", dns.TypeA) },
		func(r *dns.Msg) bool { return hasA(r, gamma.IPv4) })

	type want struct {
		status string
		code   int
		text   string
	}
	check := func(t *testing.T, name string, private, public want) {
		t.Helper()
		if s, c, x := digEDE(t, "127.0.0.1", srv, name); s != private.status || c != private.code || x != private.text {
			t.Errorf("private view, %s: %s EDE %d %q; want %s EDE %d %q", name, s, c, x, private.status, private.code, private.text)
		}
		s, c, x := digEDE(t, "127.0.0.2", srv, name)
		if s != public.status || c != public.code || x != public.text {
			t.Errorf("public view, %s: %s EDE %d %q; want %s EDE %d %q", name, s, c, x, public.status, public.code, public.text)
		}
		for _, secret := range []string{"tailnet", "lan", "hub", "beta", "gamma", "registry", "offline", "probe", "stale", "policy", "100."} {
			if strings.Contains(x, secret) {
				t.Errorf("public view, %s: EDE text %q names %q", name, x, secret)
			}
		}
	}
	noEDE := func(status string) want { return want{status, -1, ""} }
	upstreams := want{"NOERROR", 0, "answered by the fallback upstreams: fell_off"}

	t.Run("plain answers", func(t *testing.T) {
		check(t, "hub.example.org", noEDE("NOERROR"), noEDE("NOERROR"))
		check(t, "blog.example.org", upstreams, upstreams) // not a tailnet name: no reason to give
		check(t, "www.example.org", want{"NOERROR", 0, "answered by the fallback upstreams: public_only; policy www"},
			want{"NOERROR", 0, "answered by the fallback upstreams: public_only"})
	})
	t.Run("offline", func(t *testing.T) {
		beta.Close()
		waitFor(t, 10*time.Second, "beta public", func() *dns.Msg { return exchange(t, srv, "beta.example.org", dns.TypeA) },
			func(r *dns.Msg) bool { return answerData(r) == vpsIPv4 })
		check(t, "beta.example.org", want{"NOERROR", 0, "answered by the fallback upstreams: fell_off; tailnet: node offline"}, upstreams)
		check(t, "registry.example.org", want{"NXDOMAIN", int(dns.ExtendedErrorCodeBlocked), "policy registry: tailnet only (tailnet: node offline)"},
			noEDE("NXDOMAIN"))
	})
	t.Run("probe failed", func(t *testing.T) {
		exchange(t, srv, "gamma.example.org", dns.TypeA) // asked for: the probe pings it
		tn.PinOnline(gamma)
		gamma.Close()
		waitFor(t, 15*time.Second, "gamma fails its probe", func() *dns.Msg { return exchange(t, srv, "gamma.example.org", dns.TypeA) },
			func(r *dns.Msg) bool { return answerData(r) == vpsIPv4 })
		check(t, "gamma.example.org", want{"NOERROR", 0, "answered by the fallback upstreams: fell_off; tailnet: probe failed"}, upstreams)
	})
	t.Run("stale", func(t *testing.T) {
		api.Stop()
		waitFor(t, 5*time.Second, "the stale answer, with TTL <= 5", func() *dns.Msg { return exchange(t, srv, "hub.example.org", dns.TypeA) },
			func(r *dns.Msg) bool { return hasA(r, hub.IPv4) && r.Answer[0].Header().Ttl <= 5 })
		s, c, x := digEDE(t, "127.0.0.1", srv, "hub.example.org")
		if s != "NOERROR" || c != int(dns.ExtendedErrorCodeStaleAnswer) || !regexp.MustCompile(`^tailnet: stale answer, tailscaled lost \d+s ago$`).MatchString(x) {
			t.Errorf("private view, stale hub: %s EDE %d %q; want NOERROR EDE 3 with the table's age", s, c, x)
		}
		check(t, "x.hub.example.org", want{"NOERROR", int(dns.ExtendedErrorCodeStaleAnswer), x}, noEDE("NOERROR"))
	})
}

// TestExplainChain: with the LAN after the tailnet, the EDE names the
// source that answered and why each before it did not.
func TestExplainChain(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		tailnettest.SkipOrFail(t, "needs dig (apt-get install dnsutils)")
	}
	tn := tailnettest.Start(t)
	hub, beta, gamma := tn.AddNode(t, "hub"), tn.AddNode(t, "beta"), tn.AddNode(t, "gamma")
	api := hub.ServeLocalAPI(t)
	lan := lantest.Start(t)
	lan.AddHost(t).RunAvahi(t, map[string][]netip.Addr{"beta": {lanAddr(lan, false, 20)}})
	_, srv := startCoreDNS(t, fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    fallback example.org {
        to 127.0.0.1:1
        explain
    }
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
	ask := func(name string) func() *dns.Msg { return func() *dns.Msg { return exchange(t, srv, name, dns.TypeA) } }
	waitFor(t, 20*time.Second, "gamma on the tailnet", ask("gamma.example.org"), func(r *dns.Msg) bool { return hasA(r, gamma.IPv4) })

	beta.Close()
	gamma.Close()
	waitFor(t, 10*time.Second, "beta on the LAN", ask("beta.example.org"), func(r *dns.Msg) bool { return hasA(r, lanAddr(lan, false, 20)) })
	waitFor(t, 10*time.Second, "gamma public", ask("gamma.example.org"), fellThrough)
	cases := []struct {
		name, status string
		code         int
		text         string
	}{
		{"hub.example.org", "NOERROR", -1, ""},
		{"beta.example.org", "NOERROR", 0, "answered by lan (tailnet: node offline)"},
		{"x.gamma.example.org", "NOERROR", 0, "answered by public (tailnet: node offline; lan: no answer on the LAN)"},
		{"nosuch.example.org", "NOERROR", -1, ""}, // neither knows it: the public answer is the first choice
	}
	for _, c := range cases {
		if s, code, text := digEDE(t, "127.0.0.1", srv, c.name); s != c.status || code != c.code || text != c.text {
			t.Errorf("%s: %s EDE %d %q; want %s EDE %d %q", c.name, s, code, text, c.status, c.code, c.text)
		}
	}
}

// TestExplainRealnet: on real headscale and tailscaled, dig shows why
// the tailnet passed a name on: an expired key, this node not Running,
// a stale table and its age, and tailscaled unreachable after it. With no
// upstream reachable, the SERVFAIL carries EDE 22 and the reasons in the
// private view, and no host or tailnet detail in the public one.
func TestExplainRealnet(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		tailnettest.SkipOrFail(t, "needs dig (apt-get install dnsutils)")
	}
	rn := realnet.Start(t)
	device := rn.AddNode(t, "device", realnet.TailscaleNew)
	hub := rn.AddNode(t, "hub", realnet.TailscaleNew)
	laptop := rn.AddNode(t, "laptop", realnet.TailscaleNew)
	rn.WaitPeer(t, device, hub, realnet.Online)
	rn.WaitPeer(t, device, laptop, realnet.Online)
	_, srv := startCoreDNS(t, fmt.Sprintf(`example.org:0 {
    bind 127.0.0.1
    fallback {
        to %s
        policy registry tailnet
        explain 127.0.0.1
    }
    tailnet {
        socket %s
        alias registry hub
        stale 3s
        fallthrough
    }
}
`, startAuthority(t), device.Socket()))
	ask := func(name string) func() *dns.Msg { return func() *dns.Msg { return exchange(t, srv, name, dns.TypeA) } }
	public := func(r *dns.Msg) bool { return answerData(r) == vpsIPv4 }
	waitFor(t, 20*time.Second, "laptop answered", ask("laptop.example.org"), func(r *dns.Msg) bool { return hasA(r, laptop.IPv4()) })
	want := func(name, status string, code int, text *regexp.Regexp) {
		t.Helper()
		s, c, x := digEDE(t, "127.0.0.1", srv, name)
		if s != status || c != code || (text == nil) != (x == "") || (text != nil && !text.MatchString(x)) {
			t.Errorf("%s: %s EDE %d %q; want %s EDE %d %v", name, s, c, x, status, code, text)
		}
	}
	exactly := func(s string) *regexp.Regexp { return regexp.MustCompile("^" + regexp.QuoteMeta(s) + "$") }

	// The split views of explainCorefile on the same tailscaled, with an
	// upstream on a loopback port nobody serves.
	unreachable := fixture.Port(t)
	startCoreDNS(t, explainCorefile(unreachable, device.Socket(), net.JoinHostPort("127.0.0.1", strconv.Itoa(fixture.Port(t)))))
	dark := net.JoinHostPort("127.0.0.1", strconv.Itoa(unreachable))
	waitFor(t, 20*time.Second, "laptop answered with no upstream", func() *dns.Msg { return exchange(t, dark, "laptop.example.org", dns.TypeA) },
		func(r *dns.Msg) bool { return hasA(r, laptop.IPv4()) })
	noAuthority := func(t *testing.T, name, private, public string) {
		t.Helper()
		for _, v := range []struct{ from, text string }{{"127.0.0.1", private}, {"127.0.0.2", public}} {
			s, c, x := digEDE(t, v.from, dark, name)
			if s != "SERVFAIL" || c != int(dns.ExtendedErrorCodeNoReachableAuthority) || x != v.text {
				t.Errorf("from %s, %s: %s EDE %d %q; want SERVFAIL EDE 22 %q", v.from, name, s, c, x, v.text)
			}
		}
		_, _, x := digEDE(t, "127.0.0.2", dark, name)
		for _, secret := range []string{"tailnet", "hub", "laptop", "device", "registry", "expired", "offline", "policy", "100.", "fd7a:"} {
			if strings.Contains(x, secret) {
				t.Errorf("public view, %s: EDE text %q names %q", name, x, secret)
			}
		}
	}

	want("hub.example.org", "NOERROR", -1, nil)
	t.Run("no upstream reachable", func(t *testing.T) {
		for _, from := range []string{"127.0.0.1", "127.0.0.2"} {
			if s, c, x := digEDE(t, from, dark, "hub.example.org"); s != "NOERROR" || c != -1 {
				t.Errorf("from %s, hub: %s EDE %d %q; want the tailnet's plain answer", from, s, c, x)
			}
		}
		noAuthority(t, "blog.example.org", "fallback: no upstream answered (fell_off)", "fallback: no upstream answered (fell_off)")
		noAuthority(t, "www.example.org", "fallback: no upstream answered (public_only; policy www)", "fallback: no upstream answered (public_only)")
	})
	t.Run("key expired", func(t *testing.T) {
		rn.Expire(t, laptop)
		waitFor(t, 10*time.Second, "laptop public", ask("laptop.example.org"), public)
		want("laptop.example.org", "NOERROR", 0, exactly("answered by the fallback upstreams: fell_off; tailnet: node key expired"))
		waitFor(t, 10*time.Second, "laptop passed on with no upstream", func() *dns.Msg { return exchange(t, dark, "laptop.example.org", dns.TypeA) },
			func(r *dns.Msg) bool { return r.Rcode == dns.RcodeServerFailure })
		noAuthority(t, "laptop.example.org", "fallback: no upstream answered (fell_off; tailnet: node key expired)", "fallback: no upstream answered (fell_off)")
	})
	t.Run("this node not Running", func(t *testing.T) {
		device.Down(t)
		waitFor(t, 10*time.Second, "hub public", ask("hub.example.org"), public)
		want("hub.example.org", "NOERROR", 0, exactly("answered by the fallback upstreams: fell_off; tailnet: this node is not Running"))
		want("registry.example.org", "NXDOMAIN", int(dns.ExtendedErrorCodeBlocked), exactly("policy registry: tailnet only (tailnet: this node is not Running)"))
		device.Up(t)
		waitFor(t, 30*time.Second, "hub back", ask("hub.example.org"), func(r *dns.Msg) bool { return hasA(r, hub.IPv4()) })
	})
	t.Run("tailscaled killed", func(t *testing.T) {
		device.Kill(t)
		waitFor(t, 5*time.Second, "a stale answer", ask("hub.example.org"), func(r *dns.Msg) bool {
			_, c, _ := digEDE(t, "127.0.0.1", srv, "hub.example.org")
			return hasA(r, hub.IPv4()) && c == int(dns.ExtendedErrorCodeStaleAnswer)
		})
		want("hub.example.org", "NOERROR", int(dns.ExtendedErrorCodeStaleAnswer), regexp.MustCompile(`^tailnet: stale answer, tailscaled lost [0-3]s ago$`))
		waitFor(t, 10*time.Second, "hub public past the stale period", ask("hub.example.org"), public)
		want("hub.example.org", "NOERROR", 0, exactly("answered by the fallback upstreams: fell_off; tailnet: tailscaled unreachable"))
		device.Restart(t)
	})
}

// TestExplainLANDown: an mdns whose interface is not in this namespace
// has no multicast interface to ask on; it passes every name on, and the
// EDE says so, after the upstreams' answer and after no upstream answered,
// in the private view only.
func TestExplainLANDown(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		tailnettest.SkipOrFail(t, "needs dig (apt-get install dnsutils)")
	}
	if _, err := net.InterfaceByName(noSuchInterface); err == nil {
		t.Fatalf("interface %s exists in the test's namespace", noSuchInterface)
	}
	corefile := func(port int, upstream string) string {
		block := func(view, options string) string {
			return fmt.Sprintf(`example.org:%d {
    bind 127.0.0.1 127.0.0.2
    %s
    fallback {
        to %s
        %s
    }
    mdns {
        interface %s
        ask all
        timeout 100ms
        fallthrough
    }
}
`, port, view, upstream, options, noSuchInterface)
		}
		return block("view private {\n        expr client_ip() == '127.0.0.1'\n    }", "explain 127.0.0.1") + block("", "ede")
	}
	answered, dark := fixture.Port(t), fixture.Port(t)
	startCoreDNS(t, corefile(answered, startAuthority(t)))
	startCoreDNS(t, corefile(dark, net.JoinHostPort("127.0.0.1", strconv.Itoa(fixture.Port(t)))))
	srv := net.JoinHostPort("127.0.0.1", strconv.Itoa(answered))
	waitFor(t, 10*time.Second, "printer passed on to the upstreams", func() *dns.Msg { return exchange(t, srv, "printer.example.org", dns.TypeA) },
		func(r *dns.Msg) bool { return answerData(r) == vpsIPv4 })

	cases := []struct {
		server, from, status string
		code                 int
		text                 string
	}{
		{srv, "127.0.0.1", "NOERROR", 0, "answered by the fallback upstreams: fell_off; lan: no multicast interface"},
		{srv, "127.0.0.2", "NOERROR", 0, "answered by the fallback upstreams: fell_off"},
		{net.JoinHostPort("127.0.0.1", strconv.Itoa(dark)), "127.0.0.1", "SERVFAIL", int(dns.ExtendedErrorCodeNoReachableAuthority), "fallback: no upstream answered (fell_off; lan: no multicast interface)"},
		{net.JoinHostPort("127.0.0.1", strconv.Itoa(dark)), "127.0.0.2", "SERVFAIL", int(dns.ExtendedErrorCodeNoReachableAuthority), "fallback: no upstream answered (fell_off)"},
	}
	for _, c := range cases {
		if s, code, text := digEDE(t, c.from, c.server, "printer.example.org"); s != c.status || code != c.code || text != c.text {
			t.Errorf("%s from %s: %s EDE %d %q; want %s EDE %d %q", c.server, c.from, s, code, text, c.status, c.code, c.text)
		}
	}
}

// noSuchInterface names an interface no test namespace has.
const noSuchInterface = "th-nosuch0"

// maxLANFlights is how many LAN lookups one mdns resolver keeps in flight
// (lan.MaxFlights, which this package cannot import); a lookup beyond them
// is not sent and the name is passed on as busy.
const maxLANFlights = 256

// TestExplainLANBusy: with every lookup slot of mdns taken by names
// nobody on the LAN answers, the next name is passed on at once, and the
// EDE says the LAN was busy. A round fills the slots with new names and
// asks once they are all in flight; a round whose lookups ended first
// (the 5 s window passed) is tried again, at most three times.
func TestExplainLANBusy(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		tailnettest.SkipOrFail(t, "needs dig (apt-get install dnsutils)")
	}
	lan := lantest.Start(t) // nobody answers on it
	_, srv := startCoreDNS(t, fmt.Sprintf(`example.org:0 {
    bind 127.0.0.1
    fallback {
        to %s
        explain
    }
    mdns {
        interface %s
        ask all
        timeout 5s
        fallthrough
    }
}
`, startAuthority(t), lan.Bridge))
	waitListening(t, lan.Bridge)

	const busy = "answered by the fallback upstreams: fell_off; lan: too many LAN lookups in flight"
	var got string
	for round := 0; round < 3 && got != busy; round++ {
		sent := metric(t, "coredns_mdns_lookups_total", "interfaces", lan.Bridge, "reason", "miss")
		var wg sync.WaitGroup
		for i := range maxLANFlights {
			wg.Go(func() {
				c := &dns.Client{Timeout: 10 * time.Second}
				m := new(dns.Msg).SetQuestion(fmt.Sprintf("r%d-host%d.example.org.", round, i), dns.TypeA)
				c.Exchange(m, srv) // answered by the upstreams once its lookup ends
			})
		}
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if metric(t, "coredns_mdns_lookups_total", "interfaces", lan.Bridge, "reason", "miss")-sent >= maxLANFlights {
				break
			}
		}
		var s string
		var code int
		s, code, got = digEDE(t, "127.0.0.1", srv, fmt.Sprintf("r%d-one-more.example.org", round))
		if got == busy && (s != "NOERROR" || code != 0) {
			t.Errorf("busy: %s EDE %d; want NOERROR EDE 0", s, code)
		}
		wg.Wait()
	}
	if got != busy {
		t.Errorf("with every lookup in flight: EDE text %q; want %q", got, busy)
	}
}
