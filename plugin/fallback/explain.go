package fallback

import (
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/zone"
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

// chainEDE returns the Extended DNS Error (RFC 8914) that explains an
// answer of the chain, and whether there is one: EDE 3 (Stale Answer) for
// a tailnet answer from the view of a lost tailscaled, with its age;
// code 0 (Other) naming the source that answered and why the ones before
// it did not. A plain answer from the first source that knows the name
// has none.
func chainEDE(d *policy.Decision) (uint16, string, bool) {
	if d.AnsweredBy == policy.Tailnet && d.StaleFor > 0 {
		age := strconv.FormatInt(int64((d.StaleFor+time.Second/2)/time.Second), 10)
		return dns.ExtendedErrorCodeStaleAnswer, "tailnet: stale answer, tailscaled lost " + age + "s ago", true
	}
	why := passedText(d)
	if why == "" {
		return 0, "", false
	}
	by := d.AnsweredBy.String()
	if d.AnsweredBy == 0 {
		by = "public"
	}
	return dns.ExtendedErrorCodeOther, "answered by " + by + " (" + why + ")", true
}

// passedText says why the sources before the answer passed the name on,
// "tailnet: node offline; lan: no answer on the LAN", for the sources
// that knew the name but could not answer it; "" if none.
func passedText(d *policy.Decision) string {
	var b strings.Builder
	for _, s := range []policy.Source{policy.Tailnet, policy.LAN} {
		if r := d.Why(s); r.Failure() {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(s.String() + ": " + r.String())
		}
	}
	return b.String()
}

// blockedText explains the NXDOMAIN of a private name: the policy rule
// that keeps it private, and why its sources did not answer.
func blockedText(rule string, d *policy.Decision) string {
	text := "policy " + rule + ": " + d.Allowed.String() + " only"
	if why := passedText(d); why != "" {
		text += " (" + why + ")"
	}
	return text
}

// explainReason adds to reason, why the upstreams were asked, the policy
// rule that sent the name there, or why the sources before them passed it.
func (f *Fallback) explainReason(r *dns.Msg, reason string, d *policy.Decision) string {
	if reason == reasonPublicOnly {
		name := dns.CanonicalName(r.Question[0].Name)
		return reason + "; policy " + f.rules.rule(zone.HostLabel(name, zone.Match(f.Zones, name)))
	}
	if why := passedText(d); why != "" {
		return reason + "; " + why
	}
	return reason
}

// rule returns the pattern of the policy rule for host, a lowercase
// label, as lookup finds it; "" when no rule names it.
func (rs *rules) rule(host string) string {
	if _, ok := rs.exact[host]; ok {
		return host
	}
	for _, r := range rs.globs {
		if ok, _ := path.Match(r.pattern, host); ok {
			return r.pattern
		}
	}
	return ""
}

// addEDE adds an Extended DNS Error to m, the reply to req, when the
// client asked with EDNS (RFC 8914 §3: only then).
func addEDE(m, req *dns.Msg, code uint16, text string) {
	ropt := req.IsEdns0()
	if ropt == nil {
		return
	}
	opt := m.IsEdns0()
	if opt == nil {
		m.SetEdns0(ropt.UDPSize(), false)
		opt = m.IsEdns0()
	}
	opt.Option = append(opt.Option, &dns.EDNS0_EDE{InfoCode: code, ExtraText: text})
}
