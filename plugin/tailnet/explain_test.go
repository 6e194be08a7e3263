package tailnet

import (
	"context"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
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
