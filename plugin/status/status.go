// Package status implements a plugin that serves, on a local HTTP
// listener, the trace of the decision for one name (which source answers
// it, and why the ones before it do not) and a status page of the
// tailnet, the LAN cache and the recent source switches, read from the
// live state of the tailnet, mdns and fallback plugins of its server
// blocks, without side effects.
package status

import (
	"context"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/trace"
	"github.com/tailhorizon/tailhorizon/internal/zone"
)

const name = "status"

// defaultAddr is where the listener is unless the Corefile says: on
// loopback, next to the metrics (9153), for what it shows names hosts.
const defaultAddr = "127.0.0.1:9154"

// What status needs of the other plugins of its server block, found by
// name at startup (as mdns finds tailnet): plugins never import each other.
type (
	// explainer is a source: tailnet, mdns.
	explainer interface {
		plugin.Handler
		Explain(qname string, qtype uint16, allowed policy.Source) trace.Step
	}
	// policySource is fallback.
	policySource interface {
		ExplainPolicy(qname string) (policy.Source, string, trace.Step)
		RecordSwitches()
		Switches() []trace.Switch
	}
	// upstreamAsker is fallback too: the one query a trace may send.
	upstreamAsker interface {
		AskUpstreams(ctx context.Context, qname string, qtype uint16) trace.Step
	}
	tailnetStatus interface{ TailnetStatus() trace.Tailnet }
	lanStatus     interface{ LANStatus() trace.LAN }
)

// block is one server block's plugins, as status reads them.
type block struct {
	server, view string
	zones        []string     // the server block's zones
	policy       policySource // nil without fallback
	sources      []explainer  // in chain order
	tailnets     []tailnetStatus
	lans         []lanStatus
}

// sourceNames are the policy's names of the plugins that are sources.
var sourceNames = map[string]string{"tailnet": "tailnet", "mdns": "lan"}

// trace is the decision for qname (lowercase, with a trailing dot) of
// qtype in b, at now.
func (b *block) trace(qname string, qtype uint16, now time.Time) trace.Trace {
	tr := trace.Trace{Name: qname, Type: dns.TypeToString[qtype], Server: b.server, View: b.view, At: now, Steps: []trace.Step{}, Records: []string{}}
	allowed := policy.All
	if b.policy != nil {
		var st trace.Step
		allowed, tr.Rule, st = b.policy.ExplainPolicy(qname)
		tr.Steps = append(tr.Steps, st)
		if st.Verdict == trace.Public {
			tr.Verdict, tr.Source = trace.Public, "upstreams"
		}
	}
	tr.Allowed = allowed.String()
	for _, s := range b.sources {
		st := s.Explain(qname, qtype, allowed)
		tr.Steps = append(tr.Steps, st)
		if tr.Verdict != "" {
			continue // decided before: shown for what it knows
		}
		switch st.Verdict {
		case trace.Answer, trace.NXDomain, trace.Ask:
			tr.Verdict, tr.Source, tr.Records = st.Verdict, sourceNames[s.Name()], st.Records
		}
	}
	switch {
	case tr.Verdict != "":
	case allowed&policy.Public != 0:
		tr.Verdict, tr.Source = trace.Public, "public"
	default:
		tr.Verdict, tr.Source = trace.Blocked, "fallback"
	}
	if tr.Records == nil {
		tr.Records = []string{}
	}
	return tr
}

// askUpstreams adds to tr, when its verdict is the public answer and b's
// fallback can ask, what the upstreams answer: the trace's reader asked
// for that one query.
func (b *block) askUpstreams(ctx context.Context, tr *trace.Trace, qtype uint16) {
	ua, ok := b.policy.(upstreamAsker)
	if !ok || tr.Verdict != trace.Public {
		return
	}
	st := ua.AskUpstreams(ctx, tr.Name, qtype)
	tr.Steps = append(tr.Steps, st)
	if st.Records != nil {
		tr.Records = st.Records
	}
}

// serves reports whether qname is in b's zones.
func (b *block) serves(qname string) bool { return zone.Match(b.zones, qname) != "" }

// blockStatus is one server block on the status page.
type blockStatus struct {
	Server   string          `json:"server"`
	View     string          `json:"view,omitempty"`
	Tailnet  []trace.Tailnet `json:"tailnet"`
	LAN      []trace.LAN     `json:"lan"`
	Switches []trace.Switch  `json:"switches"`
}

func (b *block) status() blockStatus {
	bs := blockStatus{Server: b.server, View: b.view, Tailnet: []trace.Tailnet{}, LAN: []trace.LAN{}, Switches: []trace.Switch{}}
	for _, t := range b.tailnets {
		bs.Tailnet = append(bs.Tailnet, t.TailnetStatus())
	}
	for _, l := range b.lans {
		bs.LAN = append(bs.LAN, l.LANStatus())
	}
	if b.policy != nil {
		bs.Switches = b.policy.Switches()
	}
	return bs
}

// title names a block: its server and, if any, its view.
func (bs blockStatus) Title() string {
	if bs.View == "" {
		return bs.Server
	}
	return bs.Server + " (view " + bs.View + ")"
}

// parseQuestion returns the lowercase FQDN of name and the type called
// qtype ("" for A).
func parseQuestion(name, qtype string) (string, uint16, bool) {
	if name == "" || len(name) > 253 {
		return "", 0, false
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return "", 0, false
	}
	t := dns.TypeA
	if qtype != "" {
		var ok bool
		if t, ok = dns.StringToType[strings.ToUpper(qtype)]; !ok {
			return "", 0, false
		}
	}
	return dns.CanonicalName(name), t, true
}
