package zone

import "github.com/miekg/dns"

// The SOA timers of every zone the plugins serve. No secondary transfers
// these zones, so of the SOA's numbers only the minimum matters: it bounds
// negative caching (RFC 2308 §5). The others are the usual values.
const (
	soaRefresh = 7200
	soaRetry   = 1800
	soaExpire  = 86400
)

// SOA returns the SOA record of zone, naming ns as its primary
// nameserver. ttl is both the record's TTL and its minimum, so that a
// negative answer is kept no longer than a positive one.
func SOA(zone, ns string, serial, ttl uint32) *dns.SOA {
	return &dns.SOA{
		Hdr:     Header(zone, dns.TypeSOA, ttl),
		Ns:      ns,
		Mbox:    "hostmaster." + zone,
		Serial:  serial,
		Refresh: soaRefresh,
		Retry:   soaRetry,
		Expire:  soaExpire,
		Minttl:  ttl,
	}
}

// Header returns the header of a record of class IN; ttl is in seconds.
func Header(owner string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// Reply writes an authoritative reply to req with rcode and answer. A
// reply without records (NXDOMAIN, or NODATA with NOERROR) carries soa in
// its authority section, which tells caches how long to keep it (RFC 2308
// §3); with records, soa is not used and may be nil, which spares the
// query path building it.
func Reply(w dns.ResponseWriter, req *dns.Msg, rcode int, answer []dns.RR, soa *dns.SOA) error {
	m := new(dns.Msg)
	m.SetRcode(req, rcode)
	m.Authoritative = true
	m.Answer = answer
	if len(answer) == 0 {
		m.Ns = []dns.RR{soa}
	}
	return w.WriteMsg(m)
}
