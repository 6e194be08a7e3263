package status

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/freeport"
	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/trace"
)

// fakeSource is a source whose step is fixed.
type fakeSource struct {
	name string
	step trace.Step
}

func (f fakeSource) Name() string { return f.name }
func (f fakeSource) ServeDNS(context.Context, dns.ResponseWriter, *dns.Msg) (int, error) {
	return 0, nil
}
func (f fakeSource) Explain(string, uint16, policy.Source) trace.Step { return f.step }

// fakePolicy is fallback with one rule.
type fakePolicy struct {
	allowed policy.Source
	rule    string
}

func (f fakePolicy) ExplainPolicy(string) (policy.Source, string, trace.Step) {
	st := trace.Step{Source: "fallback", Verdict: trace.Pass}
	if f.allowed == policy.Public {
		st.Verdict = trace.Public
	}
	return f.allowed, f.rule, st
}
func (fakePolicy) RecordSwitches()          {}
func (fakePolicy) Switches() []trace.Switch { return nil }

// TestTraceVerdict: the source that decides is the first that answers,
// says NXDOMAIN or would ask the LAN; else the public answer, or NXDOMAIN
// for a private name.
func TestTraceVerdict(t *testing.T) {
	answer := trace.Step{Verdict: trace.Answer, Records: []string{"hub.example.org.\t1\tIN\tA\t100.64.0.2"}}
	pass := trace.Step{Verdict: trace.Pass, Reason: "node offline"}
	cases := []struct {
		name        string
		policy      policySource
		tailnet     trace.Step
		lan         trace.Step
		wantVerdict trace.Verdict
		wantSource  string
	}{
		{"the tailnet answers", nil, answer, pass, trace.Answer, "tailnet"},
		{"the LAN answers", nil, pass, answer, trace.Answer, "lan"},
		{"the LAN would be asked", nil, pass, trace.Step{Verdict: trace.Ask}, trace.Ask, "lan"},
		{"NXDOMAIN without fallthrough", nil, trace.Step{Verdict: trace.NXDomain}, answer, trace.NXDomain, "tailnet"},
		{"both pass: the public answer", nil, pass, pass, trace.Public, "public"},
		{"a private name both pass", fakePolicy{policy.Tailnet | policy.LAN, "registry"}, pass, pass, trace.Blocked, "fallback"},
		{"a public-only name", fakePolicy{policy.Public, "www"}, trace.Step{Verdict: trace.Skip}, trace.Step{Verdict: trace.Skip}, trace.Public, "upstreams"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := block{policy: c.policy, sources: []explainer{fakeSource{"tailnet", c.tailnet}, fakeSource{"mdns", c.lan}}}
			tr := b.trace("hub.example.org.", dns.TypeA, time.Now())
			if tr.Verdict != c.wantVerdict || tr.Source != c.wantSource {
				t.Errorf("verdict %s by %s; want %s by %s", tr.Verdict, tr.Source, c.wantVerdict, c.wantSource)
			}
			if want := 2 + btoi(c.policy != nil); len(tr.Steps) != want {
				t.Errorf("%d steps; want %d, every source", len(tr.Steps), want)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestParseQuestion(t *testing.T) {
	cases := []struct {
		name, qtype, wantName string
		wantType              uint16
		ok                    bool
	}{
		{"Hub.Example.org", "", "hub.example.org.", dns.TypeA, true},
		{"hub.example.org.", "aaaa", "hub.example.org.", dns.TypeAAAA, true},
		{"", "", "", 0, false},
		{"hub.example.org", "NOPE", "", 0, false},
		{strings.Repeat("a", 64) + ".example.org", "", "", 0, false},
	}
	for _, c := range cases {
		name, qtype, ok := parseQuestion(c.name, c.qtype)
		if name != c.wantName || qtype != c.wantType || ok != c.ok {
			t.Errorf("parseQuestion(%q, %q) = %q %d %v; want %q %d %v", c.name, c.qtype, name, qtype, ok, c.wantName, c.wantType, c.ok)
		}
	}
}

// TestListener: the endpoints answer, shared by two blocks, and stop
// with the last.
func TestListener(t *testing.T) {
	port, err := freeport.Find()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + itoa(port)
	a := &block{server: "dns://example.org.:53", zones: []string{"example.org."}, sources: []explainer{fakeSource{"tailnet", trace.Step{Source: "tailnet", Verdict: trace.Answer}}}}
	b := &block{server: "dns://example.net.:53", zones: []string{"example.net."}}
	if l := listeners.Acquire(addr, a); l.err != nil {
		t.Fatal(l.err)
	}
	listeners.Acquire(addr, b)
	var traces []trace.Trace
	get(t, "http://"+addr+"/explain?name=hub.example.org", http.StatusOK, &traces)
	if len(traces) != 1 || traces[0].Server != a.server || traces[0].Verdict != trace.Answer {
		t.Errorf("traces %+v; want one, block a's, answered", traces)
	}
	get(t, "http://"+addr+"/explain", http.StatusBadRequest, nil)
	var d pageData
	get(t, "http://"+addr+"/status.json", http.StatusOK, &d)
	if len(d.Blocks) != 2 || !slices.ContainsFunc(d.Blocks, func(bs blockStatus) bool { return bs.Server == b.server }) {
		t.Errorf("status of %d blocks; want both", len(d.Blocks))
	}
	get(t, "http://"+addr+"/", http.StatusOK, nil)
	listeners.Release(addr, a)
	listeners.Release(addr, b)
	if _, err := http.Get("http://" + addr + "/status.json"); err == nil {
		t.Error("the listener still answers after its last block released it")
	}
}

func get(t *testing.T, url string, code int, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != code {
		t.Fatalf("GET %s: %s; want %d", url, resp.Status, code)
	}
	if v != nil {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
