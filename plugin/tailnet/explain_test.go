package tailnet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/trace"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
)

// TestPassLeavesReason: a name passed on carries why in the query's
// policy, and a stale answer its age, for the fallback's Extended DNS
// Errors.
func TestPassLeavesReason(t *testing.T) {
	with := func(change func(*watch.Snapshot)) func() *watch.Snapshot {
		return func() *watch.Snapshot {
			s := testSnapshot()
			change(s)
			return s
		}
	}
	cases := []struct {
		name  string
		snap  func() *watch.Snapshot // nil for no table yet
		qname string
		want  policy.Reason
	}{
		{"answered", testSnapshot, "hub.example.org.", policy.Unset},
		{"no such name", testSnapshot, "nosuch.example.org.", policy.Unknown},
		{"offline in control", testSnapshot, "alpha.example.org.", policy.Offline},
		{"probe failed", with(func(s *watch.Snapshot) { s.Nodes[1].Health.Record(false, time.Now().Add(time.Hour).UnixNano()) }),
			"hub.example.org.", policy.ProbeFailed},
		{"key expired", with(func(s *watch.Snapshot) { s.Nodes[1].Expired = true }), "hub.example.org.", policy.KeyExpired},
		{"key expiry passed", with(func(s *watch.Snapshot) { s.Nodes[1].KeyExpiry = time.Now().Add(-time.Second).UnixNano() }),
			"x.hub.example.org.", policy.KeyExpired},
		{"a tag group with none reachable", with(func(s *watch.Snapshot) { s.Nodes[2].Online, s.Nodes[4].Online = false, false }),
			"web.example.org.", policy.Offline},
		{"this node not Running", with(func(s *watch.Snapshot) { s.Running = false }), "hub.example.org.", policy.NotRunning},
		{"tailscaled gone past the stale period", with(func(s *watch.Snapshot) { s.State = watch.Down }), "hub.example.org.", policy.Unreachable},
		{"before the first table", nil, "hub.example.org.", policy.Unreachable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s *watch.Snapshot
			if c.snap != nil {
				s = c.snap()
			}
			tn := newTestTailnet(s, func(tn *Tailnet) { tn.Fall = fall.Root })
			d := &policy.Decision{Allowed: policy.All}
			tn.ServeDNS(policy.NewContext(context.Background(), d), dnstest.NewRecorder(&test.ResponseWriter{}), new(dns.Msg).SetQuestion(c.qname, dns.TypeA))
			if got := d.Why(policy.Tailnet); got != c.want {
				t.Errorf("Why(tailnet) = %q; want %q", got, c.want)
			}
		})
	}
}

func TestStaleAnswerLeavesAge(t *testing.T) {
	s := testSnapshot()
	s.State, s.LostAt, s.StaleUntil = watch.Stale, time.Now().Add(-42*time.Second), time.Now().Add(time.Minute).UnixNano()
	tn := newTestTailnet(s, nil)
	d := &policy.Decision{Allowed: policy.All}
	tn.ServeDNS(policy.NewContext(context.Background(), d), dnstest.NewRecorder(&test.ResponseWriter{}), new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA))
	if d.AnsweredBy != policy.Tailnet || d.StaleFor < 42*time.Second || d.StaleFor > 10*time.Minute {
		t.Errorf("answered by %v, stale for %v; want the tailnet, about 42s", d.AnsweredBy, d.StaleFor)
	}
	d = &policy.Decision{Allowed: policy.All}
	newTestTailnet(testSnapshot(), nil).ServeDNS(policy.NewContext(context.Background(), d), dnstest.NewRecorder(&test.ResponseWriter{}), new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA))
	if d.StaleFor != 0 {
		t.Errorf("a live answer left stale for %v; want 0", d.StaleFor)
	}
}

// TestExplain gives the trace step of each verdict, and checks that it
// does not tell the probe.
func TestExplain(t *testing.T) {
	cases := []struct {
		name    string
		fall    fall.F
		qname   string
		allowed policy.Source
		want    trace.Verdict
		reason  string
		knows   string
	}{
		{"reachable host", fall.Root, "grafana.hub.example.org.", policy.All, trace.Answer, "", "host hub: hub.tail-scale.ts.net. reachable (online, probe none)"},
		{"alias", fall.Root, "registry.example.org.", policy.All, trace.Answer, "", "alias of host hub"},
		{"offline host", fall.Root, "alpha.example.org.", policy.All, trace.Pass, "node offline", "host alpha: alpha.tail-scale.ts.net. node offline (offline, probe none)"},
		{"offline host without fallthrough", fall.Zero, "alpha.example.org.", policy.All, trace.NXDomain, "node offline", "host alpha"},
		{"unknown name", fall.Root, "nosuch.example.org.", policy.All, trace.Pass, "no such name", "no host"},
		{"tag group", fall.Root, "web.example.org.", policy.All, trace.Answer, "", "tag group"},
		{"policy leaves it out", fall.Root, "hub.example.org.", policy.LAN, trace.Skip, "", "the policy leaves the tailnet out"},
		{"not its zone", fall.Root, "hub.example.net.", policy.All, trace.Skip, "", "not in its zones"},
		{"apex SOA", fall.Root, "example.org.", policy.All, trace.Answer, "", "the apex"},
		{"PTR", fall.Root, "2.0.64.100.in-addr.arpa.", policy.All, trace.Answer, "", "the address of hub.tail-scale.ts.net."},
	}
	s := testSnapshot()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tn := newTestTailnet(s, func(tn *Tailnet) { tn.Fall = c.fall; tn.watch.Probe = time.Second; tn.tableConf.Probe = true })
			qtype := dns.TypeA
			if c.name == "apex SOA" {
				qtype = dns.TypeSOA
			}
			st := tn.Explain(c.qname, qtype, c.allowed)
			if st.Verdict != c.want || st.Reason != c.reason || !strings.Contains(st.Knows, c.knows) {
				t.Errorf("got %s %q %q; want %s %q, knowing %q", st.Verdict, st.Reason, st.Knows, c.want, c.reason, c.knows)
			}
			if c.want == trace.Answer && c.name == "reachable host" && (len(st.Records) != 1 || !strings.Contains(st.Records[0], "100.64.0.2")) {
				t.Errorf("records %v; want hub's A", st.Records)
			}
		})
	}
	for _, n := range s.Nodes {
		if n.Health.Asked() != 0 {
			t.Errorf("%s was marked asked for: the trace told the probe", n.FQDN)
		}
	}
}

func TestTailnetStatus(t *testing.T) {
	s := testSnapshot()
	s.Nodes[1].Health.Record(false, time.Now().Add(time.Hour).UnixNano())
	st := newTestTailnet(s, nil).TailnetStatus()
	if st.State != "live" || !st.Running || len(st.Peers) != len(s.Nodes) {
		t.Fatalf("status %+v; want live, Running, every node", st)
	}
	for _, p := range st.Peers {
		if p.FQDN == "hub.tail-scale.ts.net." && (p.Reachable || p.Probe != "failed" || p.Why != "probe failed") {
			t.Errorf("hub %+v; want unreachable, its probe failed", p)
		}
		if p.FQDN == "alpha.tail-scale.ts.net." && (p.Online || p.Why != "node offline") {
			t.Errorf("alpha %+v; want offline", p)
		}
	}
	if st := newTestTailnet(nil, nil).TailnetStatus(); st.State != "" || st.Peers == nil {
		t.Errorf("before the first table: %+v; want no state and an empty peer list", st)
	}
}
