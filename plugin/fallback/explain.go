package fallback

import (
	"net"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/zone"
	"github.com/tailhorizon/tailhorizon/plugin/fallback/internal/ede"
)

// explainTo reports whether the client of w gets the Extended DNS Errors
// that explain an answer: explain is on, and the client is in one of its
// networks, or it names none.
func (f *Fallback) explainTo(w dns.ResponseWriter) bool {
	if !f.explain {
		return false
	}
	if len(f.explainNets) == 0 {
		return true
	}
	ip := remoteIP(w)
	for _, p := range f.explainNets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func remoteIP(w dns.ResponseWriter) netip.Addr {
	var ip net.IP
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// explainReason adds to reason, why the upstreams were asked, the policy
// rule that sent the name there, or why the sources before them passed it.
func (f *Fallback) explainReason(r *dns.Msg, reason string, d *policy.Decision) string {
	if reason == reasonPublicOnly {
		name := dns.CanonicalName(r.Question[0].Name)
		return reason + "; policy " + f.rules.Rule(zone.HostLabel(name, zone.Match(f.Zones, name)))
	}
	if why := ede.Passed(d); why != "" {
		return reason + "; " + why
	}
	return reason
}
