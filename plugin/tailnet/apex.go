package tailnet

import (
	"context"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/zone"
)

// serveApex answers a query for the zone's apex. The tailnet owns only
// the SOA and NS there; every other type (the website's A and HTTPS, the
// MX, TXT, CAA) is the public zone's, so with fallthrough it goes to the
// next plugin, and without it is NODATA.
func (t *Tailnet) serveApex(ctx context.Context, state request.Request, tbl *table) (int, error) {
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
// and nil for other types.
func (t *Tailnet) apex(state request.Request, tbl *table) []dns.RR {
	switch state.QType() {
	case dns.TypeSOA:
		return []dns.RR{t.soa(state.Zone, tbl, t.ttl)}
	case dns.TypeNS:
		return []dns.RR{&dns.NS{Hdr: t.hdr(state.Zone, dns.TypeNS), Ns: nameserver(state.Zone, tbl)}}
	}
	return nil
}

// soa is the zone's SOA record. Its serial changes with the tailnet, and
// its minimum is the answers' TTL, which bounds negative caching.
func (t *Tailnet) soa(z string, tbl *table, ttl uint32) *dns.SOA {
	var serial uint32
	if tbl != nil {
		serial = tbl.serial
	}
	return zone.SOA(z, nameserver(z, tbl), serial, ttl)
}

// nameserver names this node inside the zone, which resolves to its own
// tailnet address: the right target when it is the tailnet's split-DNS
// nameserver. Before the first table it is "ns.ZONE".
func nameserver(zone string, tbl *table) string {
	if tbl == nil || tbl.selfNode == nil || tbl.selfNode.Host == "" {
		return "ns." + zone
	}
	return tbl.selfNode.Host + "." + zone
}
