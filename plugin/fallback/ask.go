package fallback

import (
	"context"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/trace"
)

// AskUpstreams asks f's upstreams for qname of qtype, as the public
// answer would, and returns what they say as a trace step. The status
// plugin calls it only when the trace's reader asks for it: it is the one
// part of a trace that sends a query.
func (f *Fallback) AskUpstreams(ctx context.Context, qname string, qtype uint16) trace.Step {
	st := trace.Step{Source: "upstreams"}
	if !f.up.Started() {
		st.Verdict, st.Knows = trace.Skip, "not started"
		return st
	}
	m, err := f.up.Query(ctx, qname, qtype)
	if err != nil || m == nil {
		st.Verdict, st.Knows = trace.NXDomain, "no upstream answered"
		if err != nil {
			st.Reason = err.Error()
		}
		return st
	}
	st.Knows = "they answered " + dns.RcodeToString[m.Rcode]
	st.Verdict = trace.Answer
	if m.Rcode != dns.RcodeSuccess {
		st.Verdict = trace.NXDomain
	}
	for _, rr := range m.Answer {
		st.Records = append(st.Records, rr.String())
	}
	return st
}
