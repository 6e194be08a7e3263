package test

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/fixture"
	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// TestListenOnTailnetAddress: with `listen`, the server starts while
// tailscaled is down, serves its other listeners meanwhile, and answers on
// this node's tailnet addresses within a second of tailscaled reporting
// them. The addresses are put on lo, as tailscaled puts them on its
// interface; the plugin binds them with IP_FREEBIND either way.
func TestListenOnTailnetAddress(t *testing.T) {
	tn := tailnettest.Start(t)
	hub := tn.AddNode(t, "hub")
	api := hub.ServeLocalAPI(t)
	api.Stop() // tailscaled is not up yet
	for _, a := range []netip.Addr{hub.IPv4, hub.IPv6} {
		addLoopbackAddr(t, a)
	}

	port := fixture.Port(t)
	inst, _ := startCoreDNS(t, fmt.Sprintf(`example.org:%d {
    bind 127.0.0.1
    tailnet {
        socket %s
        listen
        fallthrough
    }
    template IN A example.org {
        answer "{{ .Name }} 60 IN A %s"
    }
}
`, port, api.Path, publicAnswer))
	onLoopback := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	onTailnet := func(a netip.Addr) string { return net.JoinHostPort(a.String(), strconv.Itoa(port)) }

	if r := exchange(t, onLoopback, "hub.example.org", dns.TypeA); !fellThrough(r) {
		t.Errorf("with tailscaled down, on 127.0.0.1: %v; want the next plugin's answer", answers(r))
	}
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	if _, _, err := c.Exchange(new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA), onTailnet(hub.IPv4)); err == nil {
		t.Error("answered on the tailnet address before tailscaled reported it")
	}

	if err := api.Start(); err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{hub.IPv4, hub.IPv6} {
		took := waitFor(t, 10*time.Second, "answers on "+a.String(), func() *dns.Msg {
			r, _, err := c.Exchange(new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA), onTailnet(a))
			if err != nil {
				return new(dns.Msg)
			}
			return r
		}, func(r *dns.Msg) bool { return hasA(r, hub.IPv4) })
		t.Logf("answering on %s %s after tailscaled came up", onTailnet(a), took)
		if took > time.Second {
			t.Errorf("listening on %s after %s; want within 1s", a, took)
		}
	}
	tcp := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
	if r, _, err := tcp.Exchange(new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA), onTailnet(hub.IPv4)); err != nil || !hasA(r, hub.IPv4) {
		t.Errorf("over TCP on the tailnet address: %v, %v; want hub's address", r, err)
	}

	// A reload hands the tailnet listener over without a gap: the new
	// instance binds next to the old one (SO_REUSEPORT) before it goes.
	corefile := inst.Caddyfile()
	next, err := inst.Restart(corefile)
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	t.Cleanup(func() { next.Stop(); next.ShutdownCallbacks() })
	if r, _, err := c.Exchange(new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA), onTailnet(hub.IPv4)); err != nil || !hasA(r, hub.IPv4) {
		t.Errorf("right after a reload, on the tailnet address: %v, %v; want hub's address", r, err)
	}
}
