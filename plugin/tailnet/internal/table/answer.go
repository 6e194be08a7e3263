package table

import (
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/zone"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
)

// Question is one query for a name below the apex of a forward zone
// (reverse names are looked up with Node).
type Question struct {
	Owner string // the name as asked, case kept: the owner of the records
	Name  string // Owner in lowercase, the key
	Zone  string // the zone of Name, lowercase with a trailing dot
	Type  uint16
}

// Kind is what a name of the table is.
type Kind uint8

const (
	Missing Kind = iota // nothing: no host, service, extra record, alias or tag
	Host                // a host, a Corefile alias of one, or a tag group
	Service             // a Tailscale Service, or an alias of one
	Record              // control's extra records
)

// Answer is what the table has for a Question at one time.
type Answer struct {
	RRs       []dns.RR // owned by the caller; empty for NODATA, nil unless Reachable
	Kind      Kind
	Reachable bool // some node the records stand for is reachable; false for Missing
}

// Answer returns the records that answer q at now (unix nanoseconds): the
// extra records of q.Name, if they are what answers it, else the
// addresses of what its host label names. With Config.Probe it tells the
// probe which nodes were asked for. No I/O, no lock; it allocates only
// the records.
func (t *Table) Answer(q Question, now int64) Answer {
	e := t.names[zone.HostLabel(q.Name, q.Zone)]
	if rs := t.recordsOf(q.Name, e); rs != nil {
		return t.recordAnswer(q, rs, now)
	}
	if e == nil {
		return Answer{}
	}
	kind := Host
	if e.service {
		kind = Service
	}
	rrs, anyReachable := t.addresses(q, e, now)
	if !anyReachable {
		return Answer{Kind: kind}
	}
	return Answer{RRs: rrs, Kind: kind, Reachable: true}
}

// addresses returns the records of e for q, and reports whether any of
// e's nodes is reachable at all.
func (t *Table) addresses(q Question, e *entry, now int64) ([]dns.RR, bool) {
	owner := q.Owner
	var rrs []dns.RR
	if t.cfg.CNAME && e.host != "" && (q.Type == dns.TypeA || q.Type == dns.TypeAAAA || q.Type == dns.TypeANY) {
		target := e.host + "." + q.Zone
		if !equalFold(owner, target) {
			rrs = append(rrs, &dns.CNAME{Hdr: t.hdr(owner, dns.TypeCNAME), Target: target})
			owner = target
		}
	}
	rrs, anyReachable := t.nodeAddresses(rrs, owner, q.Type, e, now)
	if len(rrs) == 1 && rrs[0].Header().Rrtype == dns.TypeCNAME {
		rrs = nil // a CNAME to a name with no record of the type is NODATA here
	}
	return rrs, anyReachable
}

// nodeAddresses appends to rrs e's addresses of qtype under owner (a
// service's VIPs, or its nodes' own), and reports whether any of e's nodes
// is reachable at now (unix nanoseconds).
func (t *Table) nodeAddresses(rrs []dns.RR, owner string, qtype uint16, e *entry, now int64) ([]dns.RR, bool) {
	if e.service {
		return t.serviceAddresses(rrs, owner, qtype, e, now)
	}
	anyReachable := false
	for _, n := range e.nodes {
		if t.cfg.Probe {
			n.Health.Ask(now) // unreachable ones too: they may come back
		}
		if !n.Reachable(now) {
			continue
		}
		anyReachable = true
		// ANY gets the A and AAAA records (RFC 8482 §4.1 lets a responder
		// answer with a subset): they are all a name here owns, two small
		// RRsets, and what the clients that still ask ANY want.
		if qtype == dns.TypeA || qtype == dns.TypeANY {
			for _, ip := range n.IP4 {
				rrs = append(rrs, &dns.A{Hdr: t.hdr(owner, dns.TypeA), A: ip})
			}
		}
		if qtype == dns.TypeAAAA || qtype == dns.TypeANY {
			for _, ip := range n.IP6 {
				rrs = append(rrs, &dns.AAAA{Hdr: t.hdr(owner, dns.TypeAAAA), AAAA: ip})
			}
		}
	}
	return rrs, anyReachable
}

func (t *Table) hdr(owner string, rrtype uint16) dns.RR_Header {
	return zone.Header(owner, rrtype, t.cfg.TTL)
}

func equalFold(a, b string) bool {
	return len(a) == len(b) && dns.CanonicalName(a) == dns.CanonicalName(b)
}

// Why returns why q is not answered at now (unix nanoseconds) by a table
// that serves: Unknown when nothing has the name, else why the first of
// its nodes that is not reachable is not (a service with no host is
// Offline); Unset when one is reachable.
func (t *Table) Why(q Question, now int64) policy.Reason {
	e := t.names[zone.HostLabel(q.Name, q.Zone)]
	if e == nil {
		return policy.Unknown
	}
	why := policy.Offline // a service with no host
	for i, n := range e.nodes {
		switch w := n.Why(now); {
		case w == policy.Unset:
			return policy.Unset
		case i == 0:
			why = w
		}
	}
	return why
}

// Down returns why t serves nothing: NotRunning when this node is not
// Running, Unreachable when tailscaled is gone (or never answered, for a
// nil t), or its stale period is over.
func (t *Table) Down() policy.Reason {
	if t != nil && t.snap.State != watch.Down && !t.snap.Running {
		return policy.NotRunning
	}
	return policy.Unreachable
}

// StaleFor returns, for a stale table, how long tailscaled has been lost
// at now; 0 for a live one.
func (t *Table) StaleFor(now time.Time) time.Duration {
	if !t.Stale() {
		return 0
	}
	return now.Sub(t.snap.LostAt)
}
