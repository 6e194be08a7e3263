package lan

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// receive learns from one packet what passes inspect, and counts the rest.
func (r *Resolver) receive(l *listener, pkt []byte, ifIndex int, src netip.Addr) {
	hosts, rejects := r.inspect(l, pkt, ifIndex, src)
	for _, why := range rejects {
		rejected.WithLabelValues(r.key, why).Inc()
	}
	for host, recs := range hosts {
		r.Learn(host, recs)
	}
}

// inspect checks one packet that arrived on interface ifIndex from src,
// and returns the address records it may teach, by host, and the reasons
// for what it ignored. Only responses that arrive on a listened interface,
// from a source on that link, count; of them, only A and AAAA records of
// HOST.local for a host that was asked for (in flight or in the cache),
// with a usable address. TTLs are capped at max_ttl.
func (r *Resolver) inspect(l *listener, pkt []byte, ifIndex int, src netip.Addr) (map[string][]Record, []string) {
	ifc := l.ifaces[ifIndex]
	switch {
	case ifc == nil:
		return nil, []string{rejectInterface}
	case !ifc.onLink(src):
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
		var addr netip.Addr
		switch rr := rr.(type) {
		case *dns.A:
			addr, _ = netip.AddrFromSlice(rr.A.To4())
		case *dns.AAAA:
			addr, _ = netip.AddrFromSlice(rr.AAAA)
			if addr.Is4In6() {
				addr = netip.Addr{}
			}
		default:
			continue
		}
		if !addr.IsGlobalUnicast() || isTailnet(addr) {
			rejects = append(rejects, rejectAddress)
			continue
		}
		if hosts[host] == nil {
			if ok, _ := r.wanted(host); !ok {
				rejects = append(rejects, rejectUnasked)
				continue
			}
			if hosts == nil {
				hosts = map[string][]Record{}
			}
		}
		hosts[host] = append(hosts[host], Record{Addr: addr, TTL: min(h.Ttl, maxTTL), Flush: h.Class&0x8000 != 0})
	}
	return hosts, rejects
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
