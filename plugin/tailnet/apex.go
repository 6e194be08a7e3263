package tailnet

import (
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/zone"
)

// apex returns the records for a query of the zone's apex: SOA and NS,
// and nothing (NODATA) for other types.
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
