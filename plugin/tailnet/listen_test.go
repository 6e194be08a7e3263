package tailnet

import (
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/plugin/whoami"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/listen"
	"github.com/tailhorizon/tailhorizon/test/fixture"
)

// TestListenFollowsAddresses: the listen group serves the block on this
// node's addresses and moves when they change. Loopback addresses stand in
// for tailnet ones.
func TestListenFollowsAddresses(t *testing.T) {
	port := strconv.Itoa(fixture.Port(t))
	c := caddy.NewTestController("dns", "whoami")
	cfg := dnsserver.GetConfig(c)
	cfg.Zone, cfg.Port = ".", port
	setup, err := caddy.DirectiveAction("dns", "whoami")
	if err != nil {
		t.Fatal(err)
	}
	if err := setup(c); err != nil {
		t.Fatal(err)
	}
	tn := newTestTailnet(nil, nil)
	tn.listen = listen.Join(c)
	member := &listen.Member{Addrs: tn.selfAddrs}
	if err := tn.listen.Start(member); err != nil {
		t.Fatal(err)
	}
	defer tn.listen.Stop(member)

	selfAt := func(addr string) {
		s := testSnapshot()
		s.Nodes[0] = testNode(1, "self.ts.net.", true, []string{addr})
		s.Nodes[0].Self = true
		tn.update(s)
	}
	answers := func(addr string) bool {
		c := &dns.Client{Timeout: 200 * time.Millisecond}
		r, _, err := c.Exchange(new(dns.Msg).SetQuestion("example.org.", dns.TypeA), net.JoinHostPort(addr, port))
		return err == nil && r.Rcode == dns.RcodeSuccess
	}
	steps := []struct {
		self      string
		want, not string
	}{
		{"127.0.0.2", "127.0.0.2", "127.0.0.3"},
		{"127.0.0.3", "127.0.0.3", "127.0.0.2"},
	}
	for _, s := range steps {
		selfAt(s.self)
		fixture.Eventually(t, "answering on "+s.self, func() bool { return answers(s.want) })
		fixture.Eventually(t, "not answering on "+s.not, func() bool { return !answers(s.not) })
	}
	if got := tn.selfAddrs(); len(got) != 1 || got[0] != netip.MustParseAddr("127.0.0.3") {
		t.Errorf("addrs = %v; want [127.0.0.3]", got)
	}
}
