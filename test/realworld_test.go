package test

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailhorizon/tailhorizon/test/realnet"
)

// failoverBound is how long a client of the shipped device Corefile may
// still get a dead peer's tailnet address, cache and TTL included.
const failoverBound = 3 * time.Second

// TestRealWorld runs the shipped device Corefile against real headscale and
// real tailscaled (test/realnet), once with each supported tailscaled on
// the device, and does to the tailnet what users do: kill a peer, cut its
// power, take it down, restart and stop control, expire a key, join,
// rename and delete nodes, and take the device itself down and back. The
// peers run the current tailscaled.
func TestRealWorld(t *testing.T) {
	for _, version := range []string{realnet.TailscaleNew, realnet.TailscaleOld} {
		t.Run("device "+version, func(t *testing.T) { realWorld(t, version) })
	}
}

func realWorld(t *testing.T, version string) {
	rn := realnet.Start(t)
	device := rn.AddNode(t, "device", version)
	hub := rn.AddNode(t, "hub", realnet.TailscaleNew)
	laptop := rn.AddNode(t, "laptop", realnet.TailscaleNew)
	rn.WaitPeer(t, device, hub, realnet.Online)
	rn.WaitPeer(t, device, laptop, realnet.Online)

	started := time.Now()
	srv := deployment(t, "device.Corefile", device.Socket(), startAuthority(t))
	ask := func(name string, qtype uint16) func() *dns.Msg {
		return func() *dns.Msg { return exchange(t, srv, name, qtype) }
	}
	hubA := ask("hub.example.org", dns.TypeA)
	is := func(a netip.Addr) func(*dns.Msg) bool { return func(r *dns.Msg) bool { return hasA(r, a) } }
	public := func(r *dns.Msg) bool { return hasA(r, netip.MustParseAddr(vpsIPv4)) }
	nxdomain := func(r *dns.Msg) bool { return r.Rcode == dns.RcodeNameError && len(r.Answer) == 0 }
	// failover waits for the public answer of name after a fault, and
	// fails t past failoverBound.
	failover := func(what, name string) time.Duration {
		t.Helper()
		took := waitFor(t, 10*time.Second, name+" public after "+what, ask(name, dns.TypeA), public)
		t.Logf("failover after %s: %s", what, ms(took))
		if took > failoverBound {
			t.Errorf("%s: %s kept its tailnet address for %s; want at most %s", what, name, ms(took), failoverBound)
		}
		return took
	}
	back := func(what, name string, want netip.Addr) {
		t.Helper()
		took := waitFor(t, 60*time.Second, name+" back after "+what+" undone", ask(name, dns.TypeA), is(want))
		t.Logf("back after %s undone: %s", what, ms(took))
	}

	below := newNamesBelow(t, srv)

	// A full table from the first message of the bus, on every version:
	// no peer waits for a change.
	for _, n := range []*realnet.Node{hub, laptop, device} {
		waitFor(t, 10*time.Second, n.Name+" answered", below(n.Name), is(n.IPv4()))
	}
	t.Logf("every peer answered %s after coredns started", ms(time.Since(started)))

	t.Run("names", func(t *testing.T) {
		cases := []struct {
			name  string
			qtype uint16
			want  netip.Addr
		}{
			{"hub.example.org", dns.TypeA, hub.IPv4()},
			{"grafana.hub.example.org", dns.TypeA, hub.IPv4()},
			{"a.b.Hub.Example.org", dns.TypeA, hub.IPv4()},
			{"registry.example.org", dns.TypeA, hub.IPv4()}, // alias registry hub
			{"laptop.example.org", dns.TypeA, laptop.IPv4()},
			{"device.example.org", dns.TypeA, device.IPv4()}, // this node
			{"hub.example.org", dns.TypeAAAA, hub.IPv6()},
		}
		for _, c := range cases {
			r := exchange(t, srv, c.name, c.qtype)
			if !hasAddr(r, c.want) {
				t.Errorf("%s %s: %v; want %s", c.name, dns.TypeToString[c.qtype], answers(r), c.want)
			}
		}
	})

	// The reverse zones, which the device Corefile leaves out, from the
	// same tailscaled.
	t.Run("PTR", func(t *testing.T) {
		_, rev := startCoreDNS(t, fmt.Sprintf(".:0 {\n    bind 127.0.0.1\n    tailnet example.org 100.64.0.0/10 fd7a:115c:a1e0::/48 {\n        socket %s\n    }\n}\n", device.Socket()))
		for a, want := range map[netip.Addr]string{hub.IPv4(): "hub.example.org.", hub.IPv6(): "hub.example.org.", laptop.IPv4(): "laptop.example.org."} {
			waitFor(t, 10*time.Second, "PTR of "+a.String(), func() *dns.Msg { return exchange(t, rev, reverse(a), dns.TypePTR) }, func(r *dns.Msg) bool {
				ptr, ok := firstRR(r).(*dns.PTR)
				return ok && ptr.Ptr == want
			})
		}
	})

	// Each fault, then its undoing: the peer's tailnet address must go
	// within failoverBound, and come back.
	for i, f := range peerFaults(hub) {
		t.Run(f.name, func(t *testing.T) {
			waitFor(t, 10*time.Second, "hub answered", hubA, is(hub.IPv4()))
			if i == 0 {
				// In use for a while, so that the probe has heard from hub:
				// the first pings after a start may time out.
				for range 50 {
					exchange(t, srv, "hub.example.org", dns.TypeA)
					time.Sleep(40 * time.Millisecond)
				}
			}
			f.fault(t)
			failover(f.name, "hub.example.org")
			if r := exchange(t, srv, "registry.example.org", dns.TypeA); !nxdomain(r) {
				t.Errorf("registry (policy tailnet lan) with hub away: %v; want NXDOMAIN", answers(r))
			}
			f.mend(t)
			back(f.name, "hub.example.org", hub.IPv4())
		})
	}

	// A restarted headscale reports every node offline until it
	// reconnects; a peer that answers pings throughout must not flap.
	t.Run("control restart", func(t *testing.T) {
		waitFor(t, 10*time.Second, "hub answered", hubA, is(hub.IPv4()))
		for i := range 2 {
			p := pollAnswers(t, srv, "hub.example.org", hub.IPv4())
			rn.RestartControl(t)
			for _, n := range []*realnet.Node{device, hub, laptop} {
				rn.WaitControl(t, n, true)
			}
			time.Sleep(2 * time.Second) // and the map pushes that follow
			asked, other := p.stop()
			if other > 0 {
				t.Errorf("restart %d: %d of %d answers for hub were not its tailnet address", i, other, asked)
			}
		}
	})

	t.Run("control down", func(t *testing.T) {
		p := pollAnswers(t, srv, "hub.example.org", hub.IPv4())
		rn.StopControl(t)
		time.Sleep(3 * time.Second)
		rn.StartControl(t)
		if asked, other := p.stop(); other > 0 {
			t.Errorf("with control down: %d of %d answers for hub were not its tailnet address", other, asked)
		}
		rn.WaitControl(t, device, true)
	})

	// This device's tailscaled killed: the last table is served, stale,
	// and the watch picks up again once it is back.
	t.Run("this device killed", func(t *testing.T) {
		waitFor(t, 30*time.Second, "hub answered", hubA, is(hub.IPv4()))
		p := pollAnswers(t, srv, "hub.example.org", hub.IPv4())
		device.Kill(t)
		time.Sleep(2 * time.Second)
		// A query in flight as tailscaled dies may go unanswered (seen once
		// in about ten runs, under -race); a wrong answer may not.
		if asked, other := p.stop(); other-p.lost > 0 || p.lost > 1 {
			t.Errorf("while the device's tailscaled was gone: %d of %d answers for hub were not its tailnet address (%d unanswered); tailnet's results: %v", other, asked, p.lost, tailnetResults(t))
		}
		// Back: one query in the first seconds after the restart may still
		// fall through (docs/operations.md, "This node's tailscaled"), so
		// the plugin is asked with new names, which no cache holds.
		device.Restart(t)
		took := waitFor(t, 10*time.Second, "hub answered after the device's restart", below("hub"), is(hub.IPv4()))
		t.Logf("the device's restart -> tailnet: %s", ms(took))
		rn.WaitPeer(t, device, laptop, realnet.Online)
		// Live again: a change shows.
		rn.Rename(t, laptop, "notebook")
		took = waitFor(t, 10*time.Second, "the renamed laptop", below("notebook"), is(laptop.IPv4()))
		t.Logf("rename after the device's restart: %s", ms(took))
		if r := exchange(t, srv, "laptop.example.org", dns.TypeA); !public(r) {
			t.Errorf("laptop, renamed away: %v; want the public answer", answers(r))
		}
	})

	// This device's own tailscale down and up: every tailnet name falls
	// through while it is down.
	t.Run("this device down", func(t *testing.T) {
		device.Down(t)
		took := waitFor(t, 10*time.Second, "hub public with the device down", hubA, public)
		t.Logf("device down -> public: %s", ms(took))
		device.Up(t)
		took = waitFor(t, 30*time.Second, "hub back with the device up", hubA, is(hub.IPv4()))
		t.Logf("device up -> tailnet: %s", ms(took))
	})

	t.Run("join and delete", func(t *testing.T) {
		joined := time.Now()
		newbie := rn.AddNode(t, "newbie", realnet.TailscaleNew)
		took := waitFor(t, 30*time.Second, "newbie answered", below("newbie"), is(newbie.IPv4()))
		t.Logf("join: answered %s after it was up, %s after tailscale up began", ms(took), ms(time.Since(joined)))
		rn.Delete(t, newbie)
		took = waitFor(t, 10*time.Second, "newbie public once deleted", ask("newbie.example.org", dns.TypeA), public)
		t.Logf("delete: public %s after", ms(took))
	})

	// Last: an expired node must log in again.
	t.Run("expired", func(t *testing.T) {
		waitFor(t, 10*time.Second, "notebook answered", ask("notebook.example.org", dns.TypeA), is(laptop.IPv4()))
		rn.Expire(t, laptop)
		failover("key expired", "notebook.example.org")
	})
}

// peerFault is something that happens to a peer, and its undoing.
type peerFault struct {
	name        string
	fault, mend func(testing.TB)
}

// peerFaults are what takes a peer away without telling control at once:
// a crash, a power cut (no FIN), and a deliberate tailscale down.
func peerFaults(n *realnet.Node) []peerFault {
	return []peerFault{
		{"tailscaled killed", n.Kill, n.Restart},
		{"power cut", n.PowerOff, n.PowerOn},
		{"tailscale down", n.Down, n.Up},
	}
}

// newNamesBelow returns below, where below(host) asks srv for a new name
// under host each time: where a change is awaited, a public answer given
// before it would be cached for fallback's max_ttl.
func newNamesBelow(t *testing.T, srv string) func(host string) func() *dns.Msg {
	n := 0
	return func(host string) func() *dns.Msg {
		return func() *dns.Msg {
			n++
			return exchange(t, srv, fmt.Sprintf("w%d.%s.example.org", n, host), dns.TypeA)
		}
	}
}

// firstRR returns the first answer of r, or nil.
func firstRR(r *dns.Msg) dns.RR {
	if len(r.Answer) == 0 {
		return nil
	}
	return r.Answer[0]
}

// hasAddr reports whether r answers with a.
func hasAddr(r *dns.Msg, a netip.Addr) bool {
	for _, rr := range r.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			if ip, ok := netip.AddrFromSlice(rr.A); ok && ip.Unmap() == a {
				return true
			}
		case *dns.AAAA:
			if ip, ok := netip.AddrFromSlice(rr.AAAA); ok && ip == a {
				return true
			}
		}
	}
	return false
}

// poller asks for one name every 20 ms until stopped, and counts the
// answers that are not want. A query that gets no answer at all counts
// too: the server must answer throughout.
type poller struct {
	done         chan struct{}
	wg           sync.WaitGroup
	asked, other int
	lost         int // of other: no answer at all
}

func pollAnswers(t *testing.T, srv, name string, want netip.Addr) *poller {
	p := &poller{done: make(chan struct{})}
	c := &dns.Client{Timeout: 2 * time.Second}
	m := new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.TypeA)
	p.wg.Go(func() {
		for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); {
			select {
			case <-p.done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			r, _, err := c.Exchange(m, srv)
			p.asked++
			switch {
			case err != nil:
				p.other++
				p.lost++
				t.Logf("%s: %v", name, err)
			case !hasA(r, want):
				p.other++
				t.Logf("%s: %v", name, answers(r))
			}
		}
	})
	t.Cleanup(func() { p.stop() })
	return p
}

// stop stops the poller and returns how many queries it made and how many
// got something else than the wanted address. It is safe to call twice.
func (p *poller) stop() (asked, other int) {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	p.wg.Wait()
	return p.asked, p.other
}

// tailnetResults sums coredns_tailnet_requests_total by result, for a
// failure message that says which path the queries took.
func tailnetResults(t *testing.T) map[string]float64 {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "coredns_tailnet_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					got[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return got
}
