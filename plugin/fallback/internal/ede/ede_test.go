package ede

import (
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
)

// TestChain gives the Extended DNS Error of each kind of chain answer.
func TestChain(t *testing.T) {
	cases := []struct {
		name     string
		d        policy.Decision
		passed   map[policy.Source]policy.Reason
		wantCode uint16
		wantText string
		wantOK   bool
	}{
		{"plain tailnet answer", policy.Decision{AnsweredBy: policy.Tailnet}, nil, 0, "", false},
		{"stale tailnet answer", policy.Decision{AnsweredBy: policy.Tailnet, StaleFor: 41600 * time.Millisecond}, nil,
			dns.ExtendedErrorCodeStaleAnswer, "tailnet: stale answer, tailscaled lost 42s ago", true},
		{"lan after an offline node", policy.Decision{AnsweredBy: policy.LAN}, map[policy.Source]policy.Reason{policy.Tailnet: policy.Offline},
			dns.ExtendedErrorCodeOther, "answered by lan (tailnet: node offline)", true},
		{"public after both", policy.Decision{}, map[policy.Source]policy.Reason{policy.Tailnet: policy.Offline, policy.LAN: policy.LANTimeout},
			dns.ExtendedErrorCodeOther, "answered by public (tailnet: node offline; lan: " + policy.LANTimeout.String() + ")", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := c.d
			for s, r := range c.passed {
				d.Passed(s, r)
			}
			code, text, ok := Chain(&d)
			if code != c.wantCode || text != c.wantText || ok != c.wantOK {
				t.Errorf("got %d %q %v; want %d %q %v", code, text, ok, c.wantCode, c.wantText, c.wantOK)
			}
		})
	}
}

// TestBlocked names the rule and, when there is one, why its sources
// did not answer.
func TestBlocked(t *testing.T) {
	d := &policy.Decision{Allowed: policy.Tailnet}
	if got, want := Blocked("registry", d), "policy registry: tailnet only"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	d.Passed(policy.Tailnet, policy.Offline)
	if got, want := Blocked("registry", d), "policy registry: tailnet only (tailnet: node offline)"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// TestAdd adds an EDE only for a client that asked with EDNS.
func TestAdd(t *testing.T) {
	for _, edns := range []bool{false, true} {
		req := new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA)
		if edns {
			req.SetEdns0(1232, false)
		}
		m := new(dns.Msg).SetReply(req)
		Add(m, req, dns.ExtendedErrorCodeOther, "why")
		got := m.IsEdns0() != nil && len(m.IsEdns0().Option) == 1
		if got != edns {
			t.Errorf("EDNS %v: EDE added %v; want %v", edns, got, edns)
		}
	}
}
