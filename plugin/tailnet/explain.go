package tailnet

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnsutil"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/trace"
	"github.com/tailhorizon/tailhorizon/internal/zone"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/table"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
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
	tbl := t.table.Load()
	now := time.Now().UnixNano()
	q := table.Question{Owner: qname, Name: qname, Zone: z, Type: qtype}
	switch {
	case qname == z:
		st.Knows = "the apex: SOA and NS are the tailnet's"
		if qtype == dns.TypeSOA || qtype == dns.TypeNS || qtype == dns.TypeANY {
			return t.explained(st, qname, dns.RcodeSuccess, nil, policy.Unset)
		}
		return t.explained(st, qname, -1, nil, policy.Unknown)
	case !tbl.Serving():
		st.Knows = "no table it may answer from"
		return t.explained(st, qname, -1, nil, tbl.Down())
	case dnsutil.IsReverse(z) > 0:
		addr, err := netip.ParseAddr(dnsutil.ExtractAddressFromReverse(qname))
		if n := tbl.Node(addr); err == nil && n != nil {
			st.Knows = "the address of " + n.FQDN
			return t.explained(st, qname, dns.RcodeSuccess, nil, policy.Unset)
		}
		st.Knows = "no node has that address"
		return t.explained(st, qname, -1, nil, policy.Unknown)
	}
	st.Knows = tbl.Knows(q, now)
	if tbl.Stale() {
		st.Knows += "; the table is stale: tailscaled lost " + tbl.StaleFor(time.Now()).Round(time.Second).String() + " ago"
	}
	a := tbl.Peek(q, now)
	switch {
	case a.Kind == table.Missing:
		return t.explained(st, qname, -1, nil, policy.Unknown)
	case !a.Reachable:
		return t.explained(st, qname, -1, nil, tbl.Why(q, now))
	}
	return t.explained(st, qname, dns.RcodeSuccess, a.RRs, policy.Unset)
}

// explained sets st's verdict: an answer (rcode NOERROR) with rrs, or,
// for rcode -1, the name passed on for why, or NXDOMAIN without
// fallthrough.
func (t *Tailnet) explained(st trace.Step, qname string, rcode int, rrs []dns.RR, why policy.Reason) trace.Step {
	if rcode == dns.RcodeSuccess {
		st.Verdict = trace.Answer
		for _, rr := range rrs {
			st.Records = append(st.Records, rr.String())
		}
		return st
	}
	st.Reason = why.String()
	if t.Fall.Through(qname) {
		st.Verdict = trace.Pass
	} else {
		st.Verdict = trace.NXDomain
	}
	return st
}

// TailnetStatus is what t serves from, for the status page.
func (t *Tailnet) TailnetStatus() trace.Tailnet {
	out := trace.Tailnet{Zones: t.Zones, Peers: []trace.Peer{}, Services: []trace.Service{}, Records: []string{}}
	s := t.table.Load().Snapshot()
	if s == nil {
		return out
	}
	now := time.Now().UnixNano()
	out.State, out.Running, out.Updated, out.LostAt = s.State.String(), s.Running, s.Updated, s.LostAt
	for _, n := range s.Nodes {
		out.Peers = append(out.Peers, peerOf(n, now))
	}
	slices.SortFunc(out.Peers, func(a, b trace.Peer) int { return strings.Compare(a.FQDN, b.FQDN) })
	for _, svc := range s.Services {
		ts := trace.Service{Name: "svc:" + svc.Name}
		for _, a := range svc.Addrs {
			ts.Addrs = append(ts.Addrs, a.String())
		}
		out.Services = append(out.Services, ts)
	}
	for _, r := range s.Records {
		out.Records = append(out.Records, r.RR.String())
	}
	return out
}

func peerOf(n *watch.Node, now int64) trace.Peer {
	p := trace.Peer{Name: n.Host, FQDN: n.FQDN, Tags: n.Tags, Self: n.Self, Online: n.Online, Reachable: n.Reachable(now),
		Probe: table.ProbeResult(n, now), Expired: n.KeyExpired(now)}
	if why := n.Why(now); why != policy.Unset {
		p.Why = why.String()
	}
	if rtt := n.Health.RTT(); rtt > 0 {
		p.RTT = rtt.Round(100 * time.Microsecond).String()
	}
	if n.KeyExpiry != 0 {
		p.Expiry = time.Unix(0, n.KeyExpiry).UTC()
	}
	for _, a := range append(slices.Clone(n.V4), n.V6...) {
		p.Addrs = append(p.Addrs, a.String())
	}
	return p
}
