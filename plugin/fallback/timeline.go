package fallback

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/trace"
	"github.com/tailhorizon/tailhorizon/internal/zone"
)

// The sources a timeline names, besides policy's: the public part of the
// chain is "public".
const (
	sourceUpstreams = "upstreams" // the fallback upstreams answered, or none did (SERVFAIL)
	sourceBlocked   = "blocked"   // the NXDOMAIN of a private name
)

// timelineLen is how many source switches a timeline keeps.
const timelineLen = 100

// timelineNames bounds the names whose last source a timeline remembers:
// names come from clients, so past it new names are not followed.
const timelineNames = 10000

// timeline remembers the last source that answered each name, and the
// last timelineLen changes of it. It is safe for concurrent use; a query
// whose name keeps its source takes no lock.
type timeline struct {
	last  sync.Map // name -> string, the source that last answered it
	names atomic.Int64

	mu sync.Mutex
	// mu guards the following fields.
	ring [timelineLen]trace.Switch
	n    int // switches recorded so far; the newest is ring[(n-1)%timelineLen]
}

// note records that source answered name, and why the sources before it
// passed it on, if that changes its source.
func (tl *timeline) note(name, source string, d *policy.Decision) {
	if v, ok := tl.last.Load(name); ok {
		if v.(string) == source {
			return
		}
		tl.last.Store(name, source)
		tl.add(trace.Switch{At: time.Now(), Name: name, From: v.(string), To: source, Why: passedText(d)})
		return
	}
	if tl.names.Add(1) > timelineNames {
		tl.names.Add(-1)
		return
	}
	if _, loaded := tl.last.LoadOrStore(name, source); !loaded {
		tl.add(trace.Switch{At: time.Now(), Name: name, To: source, Why: passedText(d)})
	}
}

func (tl *timeline) add(s trace.Switch) {
	tl.mu.Lock()
	tl.ring[tl.n%timelineLen] = s
	tl.n++
	tl.mu.Unlock()
}

// switches returns the recorded switches, newest first.
func (tl *timeline) switches() []trace.Switch {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := make([]trace.Switch, 0, min(tl.n, timelineLen))
	for i := tl.n - 1; i >= 0 && i >= tl.n-timelineLen; i-- {
		out = append(out, tl.ring[i%timelineLen])
	}
	return out
}

// RecordSwitches makes f remember which source answers each name, for
// Switches. The status plugin of the server block turns it on at
// startup; without it a query does no such work.
func (f *Fallback) RecordSwitches() {
	f.timeline.CompareAndSwap(nil, new(timeline))
}

// Switches returns the last changes of the source that answered a name,
// newest first; none unless RecordSwitches was called.
func (f *Fallback) Switches() []trace.Switch {
	if tl := f.timeline.Load(); tl != nil {
		return tl.switches()
	}
	return []trace.Switch{}
}

// noteSource records, when switches are recorded, that source answered
// the name of r.
func (f *Fallback) noteSource(r *dns.Msg, source string, d *policy.Decision) {
	if tl := f.timeline.Load(); tl != nil {
		tl.note(dns.CanonicalName(r.Question[0].Name), source, d)
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
		allowed, rule = f.rules.lookup(host), f.rules.rule(host)
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
