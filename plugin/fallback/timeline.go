package fallback

import (
	"strings"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/trace"
	"github.com/tailhorizon/tailhorizon/internal/zone"
	"github.com/tailhorizon/tailhorizon/plugin/fallback/internal/timeline"
)

// The sources a timeline names, besides policy's: the public part of the
// chain is "public".
const (
	sourceUpstreams = "upstreams" // the fallback upstreams answered, or none did (SERVFAIL)
	sourceBlocked   = "blocked"   // the NXDOMAIN of a private name
)

// RecordSwitches makes f remember which source answers each name, for
// Switches. The status plugin of the server block turns it on at
// startup; without it a query does no such work.
func (f *Fallback) RecordSwitches() {
	f.timeline.CompareAndSwap(nil, new(timeline.Timeline))
}

// Switches returns the last changes of the source that answered a name,
// newest first; none unless RecordSwitches was called.
func (f *Fallback) Switches() []trace.Switch {
	if tl := f.timeline.Load(); tl != nil {
		return tl.Switches()
	}
	return []trace.Switch{}
}

// noteSource records, when switches are recorded, that source answered
// the name of r.
func (f *Fallback) noteSource(r *dns.Msg, source string, d *policy.Decision) {
	if tl := f.timeline.Load(); tl != nil {
		tl.Note(dns.CanonicalName(r.Question[0].Name), source, d)
	}
}

// answeredBy names the source of the chain that wrote an answer.
func answeredBy(d *policy.Decision) string {
	if d.AnsweredBy == 0 {
		return "public"
	}
	return d.AnsweredBy.String()
}

// ExplainPolicy says which sources may answer qname (lowercase, with a
// trailing dot), by which rule ("" for none), for the status plugin's
// trace.
func (f *Fallback) ExplainPolicy(qname string) (policy.Source, string, trace.Step) {
	st := trace.Step{Source: name}
	z := zone.Match(f.Zones, qname)
	switch {
	case z == "":
		st.Verdict, st.Knows = trace.Skip, "not in its zones"
		return policy.All, "", st
	case strings.HasPrefix(qname, "_acme-challenge."):
		st.Zone, st.Verdict, st.Knows = z, trace.Public, "an _acme-challenge name: always the upstreams"
		return policy.Public, "", st
	}
	st.Zone = z
	allowed, rule := policy.All, ""
	if qname != z {
		host := zone.HostLabel(qname, z)
		allowed, rule = f.rules.Lookup(host), f.rules.Rule(host)
	}
	switch {
	case rule == "":
		st.Knows = "no policy rule: every source may answer"
	default:
		st.Knows = "policy " + rule + ": " + allowed.String()
	}
	st.Verdict = trace.Pass
	if allowed == policy.Public {
		st.Verdict, st.Reason = trace.Public, reasonPublicOnly
	}
	return allowed, rule, st
}
