package lan

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// packet is what a socket says about one packet it received.
type packet struct {
	ifIndex  int        // the interface it arrived on
	src, dst netip.Addr // dst is invalid where the socket does not say
	hops     int        // its IP TTL or hop limit; 0 where the socket does not say
}

// receive learns from one packet what passes inspect, and counts the rest.
func (r *Resolver) receive(l *listener, pkt []byte, p packet) {
	hosts, rejects := r.inspect(l, pkt, p)
	for _, why := range rejects {
		rejected.WithLabelValues(r.key, why).Inc()
	}
	for host, recs := range hosts {
		r.Learn(host, recs)
	}
}

// inspect checks one packet, and returns the records it may teach, by
// host, and the reasons for what it ignored. A response counts only if it
// arrived on a listened interface with an IP TTL (hop limit) of 255, which
// no router forwards (RFC 6762 §11), and, unless it was sent to the mDNS
// group, from a source on that link: §11 deems every packet to the group
// on-link, so a host answering from a secondary address is heard. Of a
// response, only the A, AAAA and NSEC records of HOST.local count, for a
// host that was asked for (in flight or in the cache), and only addresses
// inside a prefix of the interface: a host's docker bridge or VPN address
// is of no use to the LAN. TTLs are capped at max_ttl.
func (r *Resolver) inspect(l *listener, pkt []byte, p packet) (map[string][]Record, []string) {
	ifc := l.ifaces[p.ifIndex]
	switch {
	case ifc == nil:
		return nil, []string{rejectInterface}
	case p.hops != 0 && p.hops != 255:
		return nil, []string{rejectTTL}
	case !toGroup(p.dst) && !ifc.onLink(p.src):
		return nil, []string{rejectOffLink}
	}
	var m dns.Msg
	if err := m.Unpack(pkt); err != nil {
		return nil, []string{rejectMalformed}
	}
	if !m.Response {
		return nil, nil // a question: someone else's, or ours looped back
	}
	if m.Opcode != dns.OpcodeQuery || m.Rcode != dns.RcodeSuccess {
		return nil, []string{rejectMalformed} // RFC 6762 §18.3, §18.11
	}
	r.mu.Lock()
	maxTTL := uint32(r.maxTTL.Seconds())
	r.mu.Unlock()
	var hosts map[string][]Record
	var rejects []string
	for _, rr := range append(m.Answer, m.Extra...) {
		h := rr.Header()
		host, ok := localHost(h.Name)
		if !ok || h.Class&0x7fff != dns.ClassINET {
			continue
		}
		rec, why := record(rr, ifc)
		switch {
		case why != "":
			rejects = append(rejects, why)
			continue
		case !rec.Addr.IsValid() && !rec.NoA && !rec.NoAAAA:
			continue // an NSEC that denies no address, or another type
		}
		if hosts[host] == nil {
			if !r.wanted(host) {
				rejects = append(rejects, rejectUnasked)
				continue
			}
			if hosts == nil {
				hosts = map[string][]Record{}
			}
		}
		rec.TTL, rec.Flush = min(h.Ttl, maxTTL), h.Class&0x8000 != 0
		hosts[host] = append(hosts[host], rec)
	}
	return hosts, rejects
}

// The mDNS groups as destination addresses.
var (
	groupAddr4 = netip.AddrFrom4([4]byte{224, 0, 0, 251})
	groupAddr6 = netip.MustParseAddr("ff02::fb")
)

// toGroup reports whether dst is an mDNS group.
func toGroup(dst netip.Addr) bool {
	dst = dst.WithZone("")
	return dst == groupAddr4 || dst == groupAddr6
}

// record returns what rr, a record of HOST.local heard on ifc, teaches:
// an address, or what an NSEC denies; or why it is ignored. Other types
// return the zero Record.
func record(rr dns.RR, ifc *iface) (Record, string) {
	var addr netip.Addr
	switch rr := rr.(type) {
	case *dns.A:
		addr, _ = netip.AddrFromSlice(rr.A.To4())
	case *dns.AAAA:
		addr, _ = netip.AddrFromSlice(rr.AAAA)
		if addr.Is4In6() {
			addr = netip.Addr{}
		}
	case *dns.NSEC:
		return NSEC(!slices.Contains(rr.TypeBitMap, dns.TypeA), !slices.Contains(rr.TypeBitMap, dns.TypeAAAA)), ""
	default:
		return Record{}, ""
	}
	switch {
	case !addr.IsGlobalUnicast() || isTailnet(addr):
		return Record{}, rejectAddress
	case !ifc.covers(addr):
		return Record{}, rejectOffLinkAddress
	}
	return Record{Addr: addr}, ""
}

// localHost returns the lowercase host of a name HOST.local., and whether
// name is one.
func localHost(name string) (string, bool) {
	host, ok := strings.CutSuffix(strings.ToLower(name), ".local.")
	return host, ok && IsHost(host)
}

// IsHost reports whether label can be asked as label.local: one label,
// without escapes.
func IsHost(label string) bool {
	return label != "" && len(label) <= 63 && !strings.ContainsAny(label, `\.`)
}
