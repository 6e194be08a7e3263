package fallback

import (
	"context"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/trace"
)

// TestSwitches: the timeline records a name's first source and each
// change, newest first, and nothing while its source stays.
func TestSwitches(t *testing.T) {
	up := newUpstream(t)
	var next policyHandler
	f := newTestFallback(t, up.Addr, &next, func(f *Fallback) { f.rules.Add("registry", []string{"tailnet"}) })
	if got := f.Switches(); len(got) != 0 {
		t.Fatalf("switches %v before RecordSwitches; want none", got)
	}
	f.RecordSwitches()
	steps := []struct {
		qname string
		h     policyHandler
	}{
		{"hub.example.org.", policyHandler{by: policy.Tailnet}},
		{"hub.example.org.", policyHandler{by: policy.Tailnet}}, // no change
		{"hub.example.org.", policyHandler{why: policy.Offline, by: policy.LAN}},
		{"hub.example.org.", policyHandler{why: policy.Offline, rcode: dns.RcodeNameError}},
		{"registry.example.org.", policyHandler{why: policy.Offline, rcode: dns.RcodeNameError}},
	}
	for _, s := range steps {
		next = s.h
		f.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), new(dns.Msg).SetQuestion(s.qname, dns.TypeA))
	}
	want := []trace.Switch{
		{Name: "registry.example.org.", To: "blocked", Why: "tailnet: node offline"},
		{Name: "hub.example.org.", From: "lan", To: "upstreams", Why: "tailnet: node offline"},
		{Name: "hub.example.org.", From: "tailnet", To: "lan", Why: "tailnet: node offline"},
		{Name: "hub.example.org.", To: "tailnet"},
	}
	got := f.Switches()
	if len(got) != len(want) {
		t.Fatalf("switches %+v; want %+v", got, want)
	}
	for i := range want {
		got[i].At = want[i].At
		if got[i] != want[i] {
			t.Errorf("switch %d: %+v; want %+v", i, got[i], want[i])
		}
	}
}

// policyHandler stands in for the chain: it leaves why for the tailnet
// and answers as by, or with rcode for the public part.
type policyHandler struct {
	why   policy.Reason
	by    policy.Source
	rcode int
}

func (h *policyHandler) Name() string { return "chain" }
func (h *policyHandler) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if h.why != policy.Unset {
		policy.FromContext(ctx).Passed(policy.Tailnet, h.why)
	}
	return chain(h.rcode, h.by, true).ServeDNS(ctx, w, r)
}

func TestExplainPolicy(t *testing.T) {
	f := New()
	f.Zones = []string{"example.org."}
	f.rules.Add("registry", []string{"tailnet", "lan"})
	f.rules.Add("w*", []string{"public"})
	cases := []struct {
		qname   string
		allowed policy.Source
		rule    string
		verdict trace.Verdict
		knows   string
	}{
		{"hub.example.org.", policy.All, "", trace.Pass, "no policy rule: every source may answer"},
		{"x.registry.example.org.", policy.Tailnet | policy.LAN, "registry", trace.Pass, "policy registry: tailnet lan"},
		{"www.example.org.", policy.Public, "w*", trace.Public, "policy w*: public"},
		{"_acme-challenge.hub.example.org.", policy.Public, "", trace.Public, "an _acme-challenge name: always the upstreams"},
		{"example.org.", policy.All, "", trace.Pass, "no policy rule: every source may answer"},
		{"hub.example.net.", policy.All, "", trace.Skip, "not in its zones"},
	}
	for _, c := range cases {
		allowed, rule, st := f.ExplainPolicy(c.qname)
		if allowed != c.allowed || rule != c.rule || st.Verdict != c.verdict || st.Knows != c.knows {
			t.Errorf("%s: %v %q %s %q; want %v %q %s %q", c.qname, allowed, rule, st.Verdict, st.Knows, c.allowed, c.rule, c.verdict, c.knows)
		}
	}
}

func TestAskUpstreams(t *testing.T) {
	up := newUpstream(t)
	f := newTestFallback(t, up.Addr, nil, nil)
	st := f.AskUpstreams(context.Background(), "hub.example.org.", dns.TypeA)
	if st.Verdict != trace.Answer || len(st.Records) != 1 || !strings.Contains(st.Records[0], publicIP) {
		t.Errorf("step %+v; want the upstream's answer", st)
	}
	if got := up.names(); len(got) != 1 {
		t.Errorf("the upstream was asked %v; want once", got)
	}
}
