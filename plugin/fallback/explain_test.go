package fallback

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
)

// sources stands in for tailnet and mdns: they leave their reasons in
// the decision, then the chain answers with rcode as by (0 for the
// public part of the chain), or stale for stale.
func sources(tailnet, lan policy.Reason, stale time.Duration, by policy.Source, rcode int) plugin.Handler {
	return plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		d := policy.FromContext(ctx)
		if tailnet != policy.Unset {
			d.Passed(policy.Tailnet, tailnet)
		}
		if lan != policy.Unset {
			d.Passed(policy.LAN, lan)
		}
		d.StaleFor = stale
		return chain(rcode, by, true).ServeDNS(ctx, w, r)
	})
}

// TestExplain gives every Extended DNS Error that explains an answer, and
// who gets it.
func TestExplain(t *testing.T) {
	up := newUpstream(t)
	private := func(f *Fallback) { f.rules.Add("registry", []string{"tailnet"}) }
	cases := []struct {
		name      string
		next      plugin.Handler
		configure func(*Fallback) // after explain is turned on
		qname     string
		client    string
		wantCode  uint16
		wantText  string // "" for no EDE
	}{
		{"plain first-source answer", sources(policy.Unset, policy.Unset, 0, policy.Tailnet, dns.RcodeSuccess), nil,
			"hub.example.org.", "100.64.0.1", 0, ""},
		{"stale table", sources(policy.Unset, policy.Unset, 42*time.Second, policy.Tailnet, dns.RcodeSuccess), nil,
			"hub.example.org.", "100.64.0.1", dns.ExtendedErrorCodeStaleAnswer, "tailnet: stale answer, tailscaled lost 42s ago"},
		{"the LAN answers an offline node", sources(policy.Offline, policy.Unset, 0, policy.LAN, dns.RcodeSuccess), nil,
			"hub.example.org.", "100.64.0.1", dns.ExtendedErrorCodeOther, "answered by lan (tailnet: node offline)"},
		{"the public chain answers after both", sources(policy.ProbeFailed, policy.LANTimeout, 0, 0, dns.RcodeSuccess), nil,
			"hub.example.org.", "100.64.0.1", dns.ExtendedErrorCodeOther, "answered by public (tailnet: probe failed; lan: no answer on the LAN)"},
		{"the upstreams answer an expired node", sources(policy.KeyExpired, policy.Unlisted, 0, 0, dns.RcodeNameError), nil,
			"hub.example.org.", "100.64.0.1", dns.ExtendedErrorCodeOther, "answered by the fallback upstreams: nxdomain; tailnet: node key expired"},
		{"a name the tailnet does not know is a plain answer", sources(policy.Unknown, policy.Unlisted, 0, 0, dns.RcodeSuccess), nil,
			"www.example.org.", "100.64.0.1", 0, ""},
		{"private name blocked", sources(policy.NotRunning, policy.Unset, 0, 0, dns.RcodeNameError), private,
			"x.registry.example.org.", "100.64.0.1", dns.ExtendedErrorCodeBlocked, "policy registry: tailnet only (tailnet: this node is not Running)"},
		{"public-only name", sources(policy.Unset, policy.Unset, 0, policy.Tailnet, dns.RcodeSuccess),
			func(f *Fallback) { f.rules.Add("w*", []string{"public"}) },
			"www.example.org.", "100.64.0.1", dns.ExtendedErrorCodeOther, "answered by the fallback upstreams: public_only; policy w*"},
		{"a client outside the explain networks", sources(policy.Offline, policy.Unset, 0, policy.LAN, dns.RcodeSuccess),
			func(f *Fallback) { f.explainNets = []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10")} },
			"hub.example.org.", "192.0.2.7", 0, ""},
		{"a client inside them", sources(policy.Offline, policy.Unset, 0, policy.LAN, dns.RcodeSuccess),
			func(f *Fallback) { f.explainNets = []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10")} },
			"hub.example.org.", "100.101.102.103", dns.ExtendedErrorCodeOther, "answered by lan (tailnet: node offline)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newTestFallback(t, up.Addr, c.next, func(f *Fallback) {
				f.explain = true
				if c.configure != nil {
					c.configure(f)
				}
			})
			code, text := ask(t, f, c.qname, c.client)
			if code != c.wantCode || text != c.wantText {
				t.Errorf("EDE = %d %q; want %d %q", code, text, c.wantCode, c.wantText)
			}
		})
	}
}

// TestExplainUpstreamDown: the SERVFAIL of no upstream says why the
// sources before them passed the name on.
func TestExplainUpstreamDown(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	f := newTestFallback(t, dead, sources(policy.Offline, policy.LANTimeout, 0, 0, dns.RcodeNameError), func(f *Fallback) { f.explain = true })
	code, text := ask(t, f, "hub.example.org.", "100.64.0.1")
	if want := "fallback: no upstream answered (nxdomain; tailnet: node offline; lan: no answer on the LAN)"; code != dns.ExtendedErrorCodeNoReachableAuthority || text != want {
		t.Errorf("EDE = %d %q; want %d %q", code, text, dns.ExtendedErrorCodeNoReachableAuthority, want)
	}
}

// TestEDEWithoutExplainNamesNothing: without explain, as on a public
// block, an EDE names no source, host, reason or rule, whatever the
// sources left in the decision; stale and private answers get none.
func TestEDEWithoutExplainNamesNothing(t *testing.T) {
	up := newUpstream(t)
	cases := []struct {
		name  string
		next  plugin.Handler
		qname string
	}{
		{"stale", sources(policy.Unset, policy.Unset, time.Minute, policy.Tailnet, dns.RcodeSuccess), "hub.example.org."},
		{"a later source", sources(policy.Offline, policy.Unset, 0, policy.LAN, dns.RcodeSuccess), "hub.example.org."},
		{"the upstreams", sources(policy.ProbeFailed, policy.LANTimeout, 0, 0, dns.RcodeNameError), "hub.example.org."},
		{"private", sources(policy.KeyExpired, policy.Unset, 0, 0, dns.RcodeNameError), "x.registry.example.org."},
		{"public only", nil, "www.example.org."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newTestFallback(t, up.Addr, c.next, func(f *Fallback) {
				f.ede = true
				f.rules.Add("registry", []string{"tailnet"})
			})
			_, text := ask(t, f, c.qname, "100.64.0.1")
			for _, secret := range []string{"tailnet", "lan", "hub", "registry", "offline", "probe", "expired", "stale", "policy"} {
				if strings.Contains(text, secret) {
					t.Errorf("EDE text %q names %q", text, secret)
				}
			}
		})
	}
}

// ask asks f for qname's A records from client, with EDNS, and returns
// the reply's EDE.
func ask(t *testing.T, f *Fallback, qname, client string) (uint16, string) {
	t.Helper()
	q := new(dns.Msg).SetQuestion(qname, dns.TypeA)
	q.SetEdns0(1232, false)
	rec := dnstest.NewRecorder(&test.ResponseWriter{RemoteIP: client})
	f.ServeDNS(context.Background(), rec, q)
	if rec.Msg == nil {
		t.Fatal("nothing written")
	}
	return replyEDE(rec.Msg)
}
