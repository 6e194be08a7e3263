// Package fallback implements a plugin that asks public upstreams when the
// rest of the chain could not answer (NXDOMAIN, SERVFAIL, REFUSED, or no
// plugin at all), and that enforces, per name, which sources may answer.
package fallback

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/coredns/coredns/plugin/pkg/nonwriter"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/zone"
	"github.com/tailhorizon/tailhorizon/plugin/fallback/internal/ede"
	"github.com/tailhorizon/tailhorizon/plugin/fallback/internal/rules"
	"github.com/tailhorizon/tailhorizon/plugin/fallback/internal/timeline"
	"github.com/tailhorizon/tailhorizon/plugin/fallback/internal/upstream"
)

const name = "fallback"

var log = clog.NewWithPlugin(name)

// privateNegTTL bounds, in seconds, how long a cache keeps the NXDOMAIN of
// a private name that no source of ours passed on with its SOA: as short
// as tailnet's answers, so the name is back as soon as its host is.
const privateNegTTL = 1

// Fallback is the plugin handler.
type Fallback struct {
	Next  plugin.Handler
	Zones []string

	rcodes   []int // chain rcodes that send the query to the upstreams
	original bool  // ask the upstreams the question as it reached this plugin
	ede      bool  // mark answers from the upstreams with an Extended DNS Error
	// explain adds Extended DNS Errors that say why an answer is not the
	// first source's (stale, a later source, a private name blocked) to
	// the clients in explainNets, or to all when it is empty.
	explain     bool
	explainNets []netip.Prefix
	maxTTL      uint32 // cap on the TTLs of the upstreams' answers, seconds; 0 for none
	rules       rules.Set
	up          upstream.Servers
	timeline    atomic.Pointer[timeline.Timeline] // nil unless RecordSwitches
}

// New returns a Fallback with the defaults of the Corefile syntax.
func New() *Fallback {
	return &Fallback{rcodes: []int{dns.RcodeNameError, dns.RcodeServerFailure, dns.RcodeRefused}}
}

// Name implements the plugin.Handler interface.
func (f *Fallback) Name() string { return name }

// ServeDNS implements the plugin.Handler interface.
func (f *Fallback) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	z := zone.Match(f.Zones, state.Name())
	if z == "" {
		return plugin.NextOrFailure(f.Name(), f.Next, ctx, w, r)
	}
	if zone.Reject(w, r) {
		return dns.RcodeSuccess, nil // never asks the upstreams: they are not the zone's primary
	}
	if strings.HasPrefix(state.Name(), "_acme-challenge.") {
		return f.upstream(ctx, w, r, reasonACME, nil)
	}
	d := &policy.Decision{Allowed: policy.All}
	if state.Name() != z {
		d.Allowed = f.rules.Lookup(zone.HostLabel(state.Name(), z))
	}
	if d.Allowed == policy.Public {
		return f.upstream(ctx, w, r, reasonPublicOnly, d)
	}
	asked := r
	if f.original {
		asked = r.Copy()
	}
	nw := nonwriter.New(w)
	rcode, _ := plugin.NextOrFailure(f.Name(), f.Next, policy.NewContext(ctx, d), nw, r)
	reply := nw.Msg
	if reply != nil && !slices.Contains(f.rcodes, reply.Rcode) && (d.AnsweredBy != 0 || d.Allows(policy.Public)) {
		f.writeChain(w, r, reply, d)
		return dns.RcodeSuccess, nil
	}
	if !d.Allows(policy.Public) {
		return f.private(ctx, state, z, reply, d)
	}
	return f.upstream(ctx, w, asked, reasonOf(reply, rcode), d)
}

// writeChain writes the chain's reply, explained when it is not a plain
// first-source answer and the client gets explanations.
func (f *Fallback) writeChain(w dns.ResponseWriter, r, reply *dns.Msg, d *policy.Decision) {
	if f.explainTo(w) {
		if code, text, ok := ede.Chain(d); ok {
			ede.Add(reply, r, code, text)
		}
	}
	w.WriteMsg(reply)
	f.noteSource(r, answeredBy(d), d)
}

// private answers a name of zone z that must never get the public answer:
// with what an allowed source said, or else NXDOMAIN. The NXDOMAIN carries
// an SOA, so that caches keep it (RFC 2308 §3): that of the source of ours
// that passed the name on, else the chain's, else one made for z.
func (f *Fallback) private(ctx context.Context, state request.Request, z string, reply *dns.Msg, d *policy.Decision) (int, error) {
	if reply != nil && d.AnsweredBy != 0 {
		f.writeChain(state.W, state.Req, reply, d)
		return dns.RcodeSuccess, nil
	}
	m := new(dns.Msg)
	m.SetRcode(state.Req, dns.RcodeNameError)
	m.Authoritative = true
	m.Ns = []dns.RR{privateSOA(z, reply, d)}
	if f.explainTo(state.W) {
		rule := f.rules.Rule(zone.HostLabel(state.Name(), z))
		ede.Add(m, state.Req, dns.ExtendedErrorCodeBlocked, ede.Blocked(rule, d))
	}
	state.W.WriteMsg(m)
	f.noteSource(state.Req, sourceBlocked, d)
	privateBlocked.WithLabelValues(metrics.WithServer(ctx), metrics.WithView(ctx)).Inc()
	return dns.RcodeSuccess, nil
}

// privateSOA is the SOA for the NXDOMAIN of a private name of zone z.
func privateSOA(z string, reply *dns.Msg, d *policy.Decision) dns.RR {
	if d.SOA != nil {
		return d.SOA
	}
	if reply != nil {
		for _, rr := range reply.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				return soa
			}
		}
	}
	return zone.SOA(z, z, 0, privateNegTTL)
}

// upstream asks the public upstreams and writes their answer, or SERVFAIL
// with the reason when none answers. d is the query's policy, nil for a
// name that skips the chain.
func (f *Fallback) upstream(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, reason string, d *policy.Decision) (int, error) {
	server, view := metrics.WithServer(ctx), metrics.WithView(ctx)
	requests.WithLabelValues(server, view, reason).Inc()
	ew := &edeWriter{ResponseWriter: w, req: r, maxTTL: f.maxTTL}
	explain := f.explainTo(w)
	if explain {
		reason = f.explainReason(r, reason, d)
	}
	if f.ede || explain {
		ew.code, ew.text = dns.ExtendedErrorCodeOther, "answered by the fallback upstreams: "+reason
	}
	rcode, err := f.up.Ask(ctx, ew, r)
	f.noteSource(r, sourceUpstreams, d)
	if plugin.ClientWrite(rcode) && err == nil {
		return rcode, nil
	}
	upstreamErrors.WithLabelValues(server, view).Inc()
	log.Debugf("upstreams failed for %s: %v", r.Question[0].Name, err)
	m := new(dns.Msg)
	m.SetRcode(r, dns.RcodeServerFailure)
	ew.code, ew.text = dns.ExtendedErrorCodeNoReachableAuthority, "fallback: no upstream answered ("+reason+")"
	ew.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// reasonOf names why the chain's result went to the upstreams: the rcode
// it wrote, or returned without writing, or that it fell off its end.
func reasonOf(reply *dns.Msg, rcode int) string {
	switch {
	case reply != nil:
		rcode = reply.Rcode
	case rcode == dns.RcodeSuccess, rcode == dns.RcodeServerFailure:
		return reasonFellOff // NextOrFailure's "no next plugin" is a SERVFAIL too
	}
	return strings.ToLower(dns.RcodeToString[rcode])
}

// edeWriter adds an Extended DNS Error (RFC 8914) to the reply when the
// client asked with EDNS and a code is set, and caps the reply's TTLs.
type edeWriter struct {
	dns.ResponseWriter
	req    *dns.Msg
	code   uint16
	text   string // "" for no EDE
	maxTTL uint32 // 0 for no cap
}

func (w *edeWriter) WriteMsg(m *dns.Msg) error {
	if w.maxTTL > 0 {
		for _, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
			for _, rr := range rrs {
				if h := rr.Header(); h.Rrtype != dns.TypeOPT && h.Ttl > w.maxTTL {
					h.Ttl = w.maxTTL
				}
			}
		}
	}
	if w.text != "" {
		ede.Add(m, w.req, w.code, w.text)
	}
	return w.ResponseWriter.WriteMsg(m)
}
