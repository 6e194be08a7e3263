// Package ede builds the Extended DNS Errors (RFC 8914) with which
// fallback's explain says why an answer is not the first source's.
package ede

import (
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
)

// Chain returns the Extended DNS Error that explains an answer of the
// chain, and whether there is one: EDE 3 (Stale Answer) for a tailnet
// answer from the view of a lost tailscaled, with its age; code 0 (Other)
// naming the source that answered and why the ones before it did not. A
// plain answer from the first source that knows the name has none.
func Chain(d *policy.Decision) (uint16, string, bool) {
	if d.AnsweredBy == policy.Tailnet && d.StaleFor > 0 {
		age := strconv.FormatInt(int64((d.StaleFor+time.Second/2)/time.Second), 10)
		return dns.ExtendedErrorCodeStaleAnswer, "tailnet: stale answer, tailscaled lost " + age + "s ago", true
	}
	why := Passed(d)
	if why == "" {
		return 0, "", false
	}
	by := d.AnsweredBy.String()
	if d.AnsweredBy == 0 {
		by = "public"
	}
	return dns.ExtendedErrorCodeOther, "answered by " + by + " (" + why + ")", true
}

// Passed says why the sources before the answer passed the name on,
// "tailnet: node offline; lan: no answer on the LAN", for the sources
// that knew the name but could not answer it; "" if none.
func Passed(d *policy.Decision) string {
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

// Blocked explains the NXDOMAIN of a private name: the policy rule that
// keeps it private, and why its sources did not answer.
func Blocked(rule string, d *policy.Decision) string {
	text := "policy " + rule + ": " + d.Allowed.String() + " only"
	if why := Passed(d); why != "" {
		text += " (" + why + ")"
	}
	return text
}

// Add adds an Extended DNS Error to m, the reply to req, when the client
// asked with EDNS (RFC 8914 §3: only then).
func Add(m, req *dns.Msg, code uint16, text string) {
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
