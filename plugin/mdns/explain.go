package mdns

import (
	"net"
	"time"

	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/trace"
	"github.com/tailhorizon/tailhorizon/plugin/mdns/internal/lan"
)

// Explain says what a query for qname (lowercase, with a trailing dot) of
// qtype would get from m, when the policy allows the sources in allowed:
// from the cache, without asking the LAN and without touching the cache.
// The status plugin of the server block calls it.
func (m *MDNS) Explain(qname string, qtype uint16, allowed policy.Source) trace.Step {
	st, done := trace.Begin(name, m.Zones, qname, allowed, policy.LAN, "the LAN")
	if done {
		return st
	}
	z := st.Zone
	state := request.Request{W: nil, Req: new(dns.Msg).SetQuestion(qname, qtype), Zone: z}
	if qname == z {
		st.Knows = "the apex: SOA and NS are the LAN zone's"
		return m.explained(st, qname, m.apex(state), policy.Unknown)
	}
	res := m.res.Load()
	if res == nil || !res.Listening() {
		st.Knows = "no multicast interface to ask on"
		return m.explained(st, qname, nil, policy.LANDown)
	}
	host := m.host(qname, z)
	if host == "" {
		st.Knows = "not a LAN host name"
		return m.explained(st, qname, nil, policy.Unknown)
	}
	recs := res.Peek(host)
	switch {
	case recs != nil && recs.Negative:
		st.Knows = host + ".local did not answer; cached until " + time.Unix(0, recs.Until()).UTC().Format(time.RFC3339)
		return m.explained(st, qname, nil, policy.LANTimeout)
	case recs != nil && (!recs.Pending || recs.Has(qtype)):
		st.Knows = host + ".local is in the cache"
		rrs := m.addresses(state, recs, res.Now())
		if rrs == nil {
			rrs = []dns.RR{} // NODATA: the host answered
		}
		return m.explained(st, qname, rrs, policy.Unset)
	case recs == nil && !m.mayAsk(host):
		st.Knows = host + " is not a host the tailnet or the Corefile names: the LAN is not asked"
		return m.explained(st, qname, nil, policy.Unlisted)
	}
	st.Verdict = trace.Ask
	st.Knows = host + ".local is not in the cache: a query asks the LAN and waits up to " + m.timeout.String()
	return st
}

// explained sets st's verdict: an answer with rrs (NODATA when empty but
// not nil), or, for nil rrs, the name passed on for why, or NXDOMAIN
// without fallthrough.
func (m *MDNS) explained(st trace.Step, qname string, rrs []dns.RR, why policy.Reason) trace.Step {
	var records []string
	for _, rr := range rrs {
		records = append(records, rr.String())
	}
	st.Decide(rrs != nil, records, m.Fall.Through(qname), why)
	return st
}

// maxStatusEntries bounds the LAN cache entries the status page lists.
const maxStatusEntries = 500

// LANStatus is what m serves from, for the status page: the hosts of the
// cache, most recently used first.
func (m *MDNS) LANStatus() trace.LAN {
	out := trace.LAN{Zones: m.Zones, Entries: []trace.LANEntry{}}
	res := m.res.Load()
	if res == nil {
		return out
	}
	out.Listening = res.Listening()
	for _, e := range res.Entries(maxStatusEntries) {
		le := trace.LANEntry{Host: e.Host, Negative: e.Recs.Negative, Expires: time.Unix(0, e.Recs.Until()).UTC(), Addrs: []string{}}
		for _, a := range append(append([]lan.AddrRec(nil), e.Recs.V4...), e.Recs.V6...) {
			le.Addrs = append(le.Addrs, net.IP(a.IP).String())
		}
		out.Entries = append(out.Entries, le)
	}
	return out
}
