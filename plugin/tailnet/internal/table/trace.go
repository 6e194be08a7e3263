package table

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnsutil"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/trace"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
)

// Explanation is what a query would get from a table, for the trace.
type Explanation struct {
	Knows    string        // what the table has for the name, in a few words
	Answered bool          // the name is answered: with Records, or by the apex
	Records  []string      // the answer's records, in presentation format; nil if none
	Why      policy.Reason // why the name is passed on; Unset when Answered
}

// Explain says what a query q would get from t at now, without telling
// the probe. q.Zone is the zone q.Name matched. A nil t has no table to
// answer from.
func (t *Table) Explain(q Question, now time.Time) Explanation {
	ns := now.UnixNano()
	switch {
	case q.Name == q.Zone:
		e := Explanation{Knows: "the apex: SOA and NS are the tailnet's", Why: policy.Unknown}
		if q.Type == dns.TypeSOA || q.Type == dns.TypeNS || q.Type == dns.TypeANY {
			e.Answered, e.Why = true, policy.Unset
		}
		return e
	case !t.Serving():
		return Explanation{Knows: "no table it may answer from", Why: t.Down()}
	case dnsutil.IsReverse(q.Zone) > 0:
		addr, err := netip.ParseAddr(dnsutil.ExtractAddressFromReverse(q.Name))
		if n := t.Node(addr); err == nil && n != nil {
			return Explanation{Knows: "the address of " + n.FQDN, Answered: true}
		}
		return Explanation{Knows: "no node has that address", Why: policy.Unknown}
	}
	e := Explanation{Knows: t.Knows(q, ns)}
	if t.Stale() {
		e.Knows += "; the table is stale: tailscaled lost " + t.StaleFor(now).Round(time.Second).String() + " ago"
	}
	a := t.Peek(q, ns)
	switch {
	case a.Kind == Missing:
		e.Why = policy.Unknown
	case !a.Reachable:
		e.Why = t.Why(q, ns)
	default:
		e.Answered = true
		for _, rr := range a.RRs {
			e.Records = append(e.Records, rr.String())
		}
	}
	return e
}

// Status is what t serves from at now (unix nanoseconds), for the status
// page: the snapshot's state, its peers sorted by name, its services and
// control's extra records; Zones is left to the caller. The lists are
// empty, not nil, for a nil t.
func (t *Table) Status(now int64) trace.Tailnet {
	out := trace.Tailnet{Peers: []trace.Peer{}, Services: []trace.Service{}, Records: []string{}}
	s := t.Snapshot()
	if s == nil {
		return out
	}
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
		Probe: ProbeResult(n, now), Expired: n.KeyExpired(now)}
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
