package table

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnsutil"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/trace"
	"github.com/tailhorizon/tailhorizon/internal/zone"
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
	e := Explanation{Knows: t.knows(q, ns)}
	if t.Stale() {
		e.Knows += "; the table is stale: tailscaled lost " + t.StaleFor(now).Round(time.Second).String() + " ago"
	}
	a := t.peek(q, ns)
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
	if t == nil {
		return out
	}
	s := t.snap
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
		Probe: probeResult(n, now), Expired: n.KeyExpired(now)}
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

// peek is Answer without telling the probe: what a query would get, for
// the trace, which must change nothing.
func (t *Table) peek(q Question, now int64) Answer {
	c := *t
	c.cfg.Probe = false
	return c.Answer(q, now)
}

// knows says in a few words what t has for q's name at now: the extra
// records, or the host, service or tag group and the state of its nodes.
func (t *Table) knows(q Question, now int64) string {
	e := t.names[zone.HostLabel(q.Name, q.Zone)]
	if rs := t.recordsOf(q.Name, e); rs != nil {
		return fmt.Sprintf("%d extra records from control", len(rs.rrs))
	}
	if e == nil {
		return "no host, service, extra record, alias or tag of that name"
	}
	var what string
	switch {
	case e.service:
		what = "Tailscale Service"
	case e.host == "":
		what = "tag group"
	case e.alias:
		what = "alias of host " + e.host
	default:
		what = "host " + e.host
	}
	var nodes []string
	for _, n := range e.nodes {
		nodes = append(nodes, nodeState(n, now))
	}
	if len(nodes) == 0 {
		return what + " with no host"
	}
	return what + ": " + strings.Join(nodes, "; ")
}

// nodeState says how n stands at now: "hub.tail.ts.net. reachable (online,
// probe ok in 2ms)".
func nodeState(n *watch.Node, now int64) string {
	state := "reachable"
	if why := n.Why(now); why != policy.Unset {
		state = why.String()
	}
	var facts []string
	if n.Self {
		facts = append(facts, "this node")
	} else if n.Online {
		facts = append(facts, "online")
	} else {
		facts = append(facts, "offline")
	}
	facts = append(facts, "probe "+probeResult(n, now))
	if n.KeyExpiry != 0 {
		facts = append(facts, "key expires "+time.Unix(0, n.KeyExpiry).UTC().Format(time.RFC3339))
	}
	return n.FQDN + " " + state + " (" + strings.Join(facts, ", ") + ")"
}

// probeResult says what the probe's verdict on n is at now: "ok in 2ms",
// "failed", "none" (never probed, or its verdict has lapsed).
func probeResult(n *watch.Node, now int64) string {
	alive, until := n.Health.Verdict()
	switch {
	case until <= now:
		return "none"
	case !alive:
		return "failed"
	case n.Health.RTT() > 0:
		return "ok in " + n.Health.RTT().Round(100*time.Microsecond).String()
	}
	return "ok"
}
