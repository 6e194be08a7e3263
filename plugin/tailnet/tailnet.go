// Package tailnet implements a plugin that answers HOST.ZONE, and every name
// below it, with the tailnet addresses of the peer called HOST, from a live
// watch of tailscaled's LocalAPI.
package tailnet

import (
	"context"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/dnsutil"
	"github.com/coredns/coredns/plugin/pkg/fall"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/counters"
	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/zone"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/embedded"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/listen"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
)

const name = "tailnet"

var log = clog.NewWithPlugin(name)

// defaultTTL is the TTL of answers unless the Corefile says otherwise: one
// second, so that a client holds a dead peer's address for at most a second
// after the probe knows (docs/operations.md, "How fast a dead peer goes").
const defaultTTL = 1

// defaultProbe is the probe interval unless the Corefile says otherwise.
// With the ping timeout of the same length, a peer that dies is known dead
// after 0.5–1 s, 0.75 s in the median; see docs/benchmarks.md.
const defaultProbe = 500 * time.Millisecond

// staleTTL caps the TTL of answers served while tailscaled is unreachable,
// so that clients ask again soon after it is back.
const staleTTL = 5

// Tailnet is the plugin handler. Configure it before OnStartup; afterwards
// only its table changes.
type Tailnet struct {
	Next  plugin.Handler
	Fall  fall.F
	Zones []string // normalized; forward zones and reverse (arpa) zones

	socket    string           // LocalAPI socket; "" means the platform default
	ttl       uint32           // seconds
	cname     bool             // answer a CNAME to HOST.ZONE before the addresses
	watch     watch.Options    // probe interval and stale period
	listenOn  bool             // also serve the block on this node's tailnet addresses
	node      *embedded.Config // run an embedded node instead of asking tailscaled; nil to ask
	tableConf tableConfig

	listen   *listen.Group         // with the listen option; nil without
	table    atomic.Pointer[table] // nil until the first snapshot
	hosts    atomic.Pointer[table] // the last table built while Running, for HostKnown; nil before
	counters counters.Cache

	// Set between OnStartup and OnShutdown.
	embedded *embedded.Node      // the running embedded node; nil without
	member   *listen.Member      // in listen; nil without
	sub      *watch.Subscription // the watch of the LocalAPI
}

// New returns a Tailnet with the defaults of the Corefile syntax.
func New() *Tailnet {
	return &Tailnet{
		ttl:       defaultTTL,
		watch:     watch.Options{Probe: defaultProbe, Stale: 5 * time.Minute},
		tableConf: tableConfig{tags: true, services: true},
		counters:  counters.Cache{Vec: requests, Results: resultNames[:]},
	}
}

// Name implements the plugin.Handler interface.
func (t *Tailnet) Name() string { return name }

// ServeDNS implements the plugin.Handler interface.
func (t *Tailnet) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	z := zone.Match(t.Zones, state.Name())
	if z == "" {
		return plugin.NextOrFailure(t.Name(), t.Next, ctx, w, r)
	}
	if zone.Reject(w, r) {
		return dns.RcodeSuccess, nil
	}
	state.Zone = z
	if !policy.FromContext(ctx).Allows(policy.Tailnet) {
		return plugin.NextOrFailure(t.Name(), t.Next, ctx, w, r)
	}
	tbl := t.table.Load()
	if state.Name() == z {
		return t.serveApex(ctx, state, tbl)
	}
	if !tbl.serving() {
		return t.pass(ctx, state, resultDown)
	}
	if dnsutil.IsReverse(z) > 0 {
		return t.servePTR(ctx, state, tbl)
	}
	e := tbl.names[zone.HostLabel(state.Name(), z)]
	if rs := tbl.recordsOf(state.Name(), e); rs != nil {
		return t.serveRecords(ctx, state, tbl, rs)
	}
	if e == nil {
		return t.notFound(ctx, state)
	}
	rrs, anyReachable := t.addresses(state, e)
	if !anyReachable {
		return t.pass(ctx, state, e.offline())
	}
	result := e.answered()
	if tbl.stale() {
		result = resultStale
	}
	if len(rrs) == 0 {
		result = resultNoData
	}
	return t.answer(ctx, state, rrs, tbl, result)
}

// pass hands a name this plugin cannot answer honestly to the next plugin,
// or says NXDOMAIN when fallthrough is off for it.
func (t *Tailnet) pass(ctx context.Context, state request.Request, result result) (int, error) {
	if t.Fall.Through(state.Name()) {
		t.count(ctx, result)
		if d := policy.FromContext(ctx); d.WantsSOA() {
			d.SOA = t.soa(state.Zone, t.table.Load(), t.ttl)
		}
		return plugin.NextOrFailure(t.Name(), t.Next, ctx, state.W, state.Req)
	}
	return t.reply(ctx, state, dns.RcodeNameError, nil, t.ttl, resultNXDomain)
}

// notFound answers a name that no node, alias or tag has.
func (t *Tailnet) notFound(ctx context.Context, state request.Request) (int, error) {
	return t.pass(ctx, state, resultFallthrough)
}

// answer writes an authoritative NOERROR reply; with no records it is NODATA.
func (t *Tailnet) answer(ctx context.Context, state request.Request, rrs []dns.RR, tbl *table, result result) (int, error) {
	ttl := t.ttl
	if tbl != nil && tbl.stale() {
		ttl = min(ttl, staleTTL)
		for _, rr := range rrs {
			rr.Header().Ttl = ttl
		}
	}
	return t.reply(ctx, state, dns.RcodeSuccess, rrs, ttl, result)
}

func (t *Tailnet) reply(ctx context.Context, state request.Request, rcode int, rrs []dns.RR, ttl uint32, result result) (int, error) {
	var soa *dns.SOA
	if len(rrs) == 0 {
		soa = t.soa(state.Zone, t.table.Load(), ttl)
	}
	zone.Reply(state.W, state.Req, rcode, rrs, soa)
	policy.FromContext(ctx).Answered(policy.Tailnet)
	t.count(ctx, result)
	return dns.RcodeSuccess, nil
}

func (t *Tailnet) count(ctx context.Context, r result) {
	t.counters.Get(metrics.WithServer(ctx), metrics.WithView(ctx))[r].Inc()
}

// addresses returns the records of e for the query, and reports whether
// any of e's nodes is reachable at all.
func (t *Tailnet) addresses(state request.Request, e *entry) ([]dns.RR, bool) {
	qtype := state.QType()
	owner := state.Req.Question[0].Name // as asked, case kept; QName() would re-escape it
	var rrs []dns.RR
	if t.cname && e.host != "" && (qtype == dns.TypeA || qtype == dns.TypeAAAA || qtype == dns.TypeANY) {
		target := e.host + "." + state.Zone
		if !equalFold(owner, target) {
			rrs = append(rrs, &dns.CNAME{Hdr: t.hdr(owner, dns.TypeCNAME), Target: target})
			owner = target
		}
	}
	rrs, anyReachable := t.nodeAddresses(rrs, owner, qtype, e, time.Now().UnixNano())
	if len(rrs) == 1 && rrs[0].Header().Rrtype == dns.TypeCNAME {
		rrs = nil // a CNAME to a name with no record of the type is NODATA here
	}
	return rrs, anyReachable
}

// nodeAddresses appends to rrs e's addresses of qtype under owner (a
// service's VIPs, or its nodes' own), and reports whether any of e's nodes
// is reachable at now (unix nanoseconds).
func (t *Tailnet) nodeAddresses(rrs []dns.RR, owner string, qtype uint16, e *entry, now int64) ([]dns.RR, bool) {
	if e.service {
		return t.serviceAddresses(rrs, owner, qtype, e, now)
	}
	anyReachable := false
	for _, n := range e.nodes {
		if t.watch.Probe > 0 {
			n.Health.Ask(now) // unreachable ones too: they may come back
		}
		if !n.Reachable(now) {
			continue
		}
		anyReachable = true
		// ANY gets the A and AAAA records (RFC 8482 §4.1 lets a responder
		// answer with a subset): they are all a name here owns, two small
		// RRsets, and what the clients that still ask ANY want.
		if qtype == dns.TypeA || qtype == dns.TypeANY {
			for _, ip := range n.IP4 {
				rrs = append(rrs, &dns.A{Hdr: t.hdr(owner, dns.TypeA), A: ip})
			}
		}
		if qtype == dns.TypeAAAA || qtype == dns.TypeANY {
			for _, ip := range n.IP6 {
				rrs = append(rrs, &dns.AAAA{Hdr: t.hdr(owner, dns.TypeAAAA), AAAA: ip})
			}
		}
	}
	return rrs, anyReachable
}

// servePTR answers the reverse names of tailnet addresses.
func (t *Tailnet) servePTR(ctx context.Context, state request.Request, tbl *table) (int, error) {
	addr, err := netip.ParseAddr(dnsutil.ExtractAddressFromReverse(state.Name()))
	if err != nil {
		return t.notFound(ctx, state)
	}
	n := tbl.ptr[addr]
	if n == nil {
		return t.notFound(ctx, state)
	}
	if state.QType() != dns.TypePTR {
		return t.answer(ctx, state, nil, tbl, resultNoData)
	}
	target := n.FQDN
	if fz := t.forwardZone(); fz != "" && n.Host != "" {
		target = n.Host + "." + fz
	}
	ptr := &dns.PTR{Hdr: t.hdr(state.Req.Question[0].Name, dns.TypePTR), Ptr: target}
	return t.answer(ctx, state, []dns.RR{ptr}, tbl, resultAnswer)
}

// forwardZone is the first zone that is not a reverse zone, the zone PTR
// records point into.
func (t *Tailnet) forwardZone() string {
	for _, z := range t.Zones {
		if dnsutil.IsReverse(z) == 0 {
			return z
		}
	}
	return ""
}

func (t *Tailnet) hdr(owner string, rrtype uint16) dns.RR_Header {
	return zone.Header(owner, rrtype, t.ttl)
}

func equalFold(a, b string) bool {
	return len(a) == len(b) && dns.CanonicalName(a) == dns.CanonicalName(b)
}
