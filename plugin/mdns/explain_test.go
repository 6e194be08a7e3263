package mdns

import (
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/fall"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/trace"
)

// TestExplain gives the trace step of each verdict, and checks that it
// asks nobody on the LAN.
func TestExplain(t *testing.T) {
	fake := newFakeLAN()
	m := newTestMDNS(fake, func(m *MDNS) {
		m.Fall = fall.Root
		m.hosts["office-printer"] = true
		m.tailnet = fakeTailnet{loaded: true, known: map[string]bool{"beta": true, "nosuch": true}}
	})
	serve(t, m, new(dns.Msg).SetQuestion("beta.example.org.", dns.TypeA))   // in the cache
	serve(t, m, new(dns.Msg).SetQuestion("nosuch.example.org.", dns.TypeA)) // did not answer
	before := fake.lookups("office-printer")
	cases := []struct {
		name, qname string
		allowed     policy.Source
		want        trace.Verdict
		reason      string
		knows       string
	}{
		{"cached host", "beta.example.org.", policy.All, trace.Answer, "", "beta.local is in the cache"},
		{"a host that did not answer", "nosuch.example.org.", policy.All, trace.Pass, "no answer on the LAN", "nosuch.local did not answer"},
		{"not cached: a query would ask", "printer.example.org.", policy.All, trace.Ask, "", "office-printer.local is not in the cache"},
		{"a host nobody names", "blog.example.org.", policy.All, trace.Pass, "not a LAN host", "the LAN is not asked"},
		{"policy leaves it out", "beta.example.org.", policy.Tailnet, trace.Skip, "", "the policy leaves the LAN out"},
		{"not its zone", "beta.example.net.", policy.All, trace.Skip, "", "not in its zones"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := m.Explain(c.qname, dns.TypeA, c.allowed)
			if st.Verdict != c.want || st.Reason != c.reason || !strings.Contains(st.Knows, c.knows) {
				t.Errorf("got %s %q %q; want %s %q, knowing %q", st.Verdict, st.Reason, st.Knows, c.want, c.reason, c.knows)
			}
		})
	}
	if got := fake.lookups("office-printer"); got != before {
		t.Errorf("the trace sent %d lookups; want none", got-before)
	}
	st := m.LANStatus()
	if len(st.Entries) != 2 {
		t.Errorf("LAN status %+v; want beta and nosuch", st.Entries)
	}
}

func TestExplainNoResolver(t *testing.T) {
	st := newTestMDNS(nil, func(m *MDNS) { m.Fall = fall.Zero }).Explain("beta.example.org.", dns.TypeA, policy.All)
	if st.Verdict != trace.NXDomain || st.Reason != "no multicast interface" {
		t.Errorf("got %s %q; want nxdomain for no multicast interface", st.Verdict, st.Reason)
	}
}
