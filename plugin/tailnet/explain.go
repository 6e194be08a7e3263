package tailnet

import (
	"time"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/trace"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/table"
)

// Explain says what a query for qname (lowercase, with a trailing dot) of
// qtype would get from t, when the policy allows the sources in allowed:
// from the live table, without telling the probe. The status plugin of
// the server block calls it.
func (t *Tailnet) Explain(qname string, qtype uint16, allowed policy.Source) trace.Step {
	st, done := trace.Begin(name, t.Zones, qname, allowed, policy.Tailnet, "the tailnet")
	if done {
		return st
	}
	e := t.table.Load().Explain(table.Question{Owner: qname, Name: qname, Zone: st.Zone, Type: qtype}, time.Now())
	st.Knows = e.Knows
	st.Decide(e.Answered, e.Records, t.Fall.Through(qname), e.Why)
	return st
}

// TailnetStatus is what t serves from, for the status page.
func (t *Tailnet) TailnetStatus() trace.Tailnet {
	out := t.table.Load().Status(time.Now().UnixNano())
	out.Zones = t.Zones
	return out
}
