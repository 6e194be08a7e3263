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

// Reject writes the reply to a message that the plugins do not answer as a
// query for a name of their zones, and reports whether it wrote one; it
// is false, and costs two comparisons, for an ordinary query.
//
//   - An opcode other than QUERY gets NOTIMP. Nothing here is a secondary
//     that takes a NOTIFY, whose NOERROR would say it was accepted
//     (RFC 1996), nor a primary that takes an UPDATE (RFC 2136).
//   - A zone transfer, AXFR or IXFR over UDP or TCP, gets REFUSED: no
//     transfer is ever configured for these zones (RFC 5936 §2.2). That
//     is what stock CoreDNS file says without transfer.
func Reject(w dns.ResponseWriter, r *dns.Msg) bool {
	rcode := dns.RcodeSuccess
	switch {
	case r.Opcode != dns.OpcodeQuery:
		rcode = dns.RcodeNotImplemented
	case len(r.Question) == 1 && (r.Question[0].Qtype == dns.TypeAXFR || r.Question[0].Qtype == dns.TypeIXFR):
		rcode = dns.RcodeRefused
	default:
		return false
	}
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	w.WriteMsg(m)
	return true
}
