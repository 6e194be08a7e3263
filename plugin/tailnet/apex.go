package tailnet

import (
	"context"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnsutil"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/zone"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/table"
)

// serveApex answers a query for the zone's apex. The tailnet owns only
// the SOA and NS there; every other type (the website's A and HTTPS, the
// MX, TXT, CAA) is the public zone's, so with fallthrough it goes to the
// next plugin, and without it is NODATA.
func (t *Tailnet) serveApex(ctx context.Context, state request.Request, tbl *table.Table) (int, error) {
	rrs := t.apex(state, tbl)
	if rrs != nil {
		return t.answer(ctx, state, rrs, nil, resultAnswer)
	}
	if t.Fall.Through(state.Name()) {
		t.count(ctx, resultFallthrough)
		return plugin.NextOrFailure(t.Name(), t.Next, ctx, state.W, state.Req)
	}
	return t.answer(ctx, state, nil, nil, resultNoData)
}

// apex returns the records for a query of the zone's apex: SOA and NS,
// both for ANY (RFC 8482 §4.1: a subset, the RRsets that are ours, as a
// host's ANY gets its addresses), and nil for other types.
func (t *Tailnet) apex(state request.Request, tbl *table.Table) []dns.RR {
	soa := func() dns.RR { return t.soa(state.Zone, tbl, t.ttl) }
	ns := func() dns.RR { return &dns.NS{Hdr: t.hdr(state.Zone, dns.TypeNS), Ns: t.nameserver(state.Zone, tbl)} }
	switch state.QType() {
	case dns.TypeSOA:
		return []dns.RR{soa()}
	case dns.TypeNS:
		return []dns.RR{ns()}
	case dns.TypeANY:
		return []dns.RR{soa(), ns()}
	}
	return nil
}

// soa is the zone's SOA record. Its serial changes with the tailnet, and
// its minimum is the answers' TTL, which bounds negative caching.
func (t *Tailnet) soa(z string, tbl *table.Table, ttl uint32) *dns.SOA {
	return zone.SOA(z, t.nameserver(z, tbl), tbl.Serial(), ttl)
}

// nameserver names this node as the nameserver of z, a name that resolves
// to its own tailnet address: the right target when it is the tailnet's
// split-DNS nameserver. In a forward zone it is SELF.ZONE; in a reverse
// zone, where SELF.ZONE is no name at all, it is SELF.FORWARDZONE, with
// the block's first forward zone (or the MagicDNS name without one).
// Before the first table, SELF is "ns".
func (t *Tailnet) nameserver(z string, tbl *table.Table) string {
	self := tbl.Self()
	if dnsutil.IsReverse(z) > 0 {
		if fz := t.forwardZone(); fz != "" {
			z = fz
		} else if self != nil && self.FQDN != "" {
			return self.FQDN
		}
	}
	if self == nil || self.Host == "" {
		return "ns." + z
	}
	return self.Host + "." + z
}
