package tailnet

import (
	"time"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/trace"
	"github.com/tailhorizon/tailhorizon/internal/zone"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/table"
)

// Explain says what a query for qname (lowercase, with a trailing dot) of
// qtype would get from t, when the policy allows the sources in allowed:
// from the live table, without telling the probe. The status plugin of
// the server block calls it.
func (t *Tailnet) Explain(qname string, qtype uint16, allowed policy.Source) trace.Step {
	st := trace.Step{Source: name}
	z := zone.Match(t.Zones, qname)
	switch {
	case z == "":
		st.Verdict, st.Knows = trace.Skip, "not in its zones"
		return st
	case allowed&policy.Tailnet == 0:
		st.Zone, st.Verdict, st.Knows = z, trace.Skip, "the policy leaves the tailnet out"
		return st
	}
	st.Zone = z
	e := t.table.Load().Explain(table.Question{Owner: qname, Name: qname, Zone: z, Type: qtype}, time.Now())
	st.Knows = e.Knows
	switch {
	case e.Answered:
		st.Verdict, st.Records = trace.Answer, e.Records
	case t.Fall.Through(qname):
		st.Verdict, st.Reason = trace.Pass, e.Why.String()
	default:
		st.Verdict, st.Reason = trace.NXDomain, e.Why.String()
	}
	return st
}

// TailnetStatus is what t serves from, for the status page.
func (t *Tailnet) TailnetStatus() trace.Tailnet {
	out := t.table.Load().Status(time.Now().UnixNano())
	out.Zones = t.Zones
	return out
}
