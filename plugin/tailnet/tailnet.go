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
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/table"
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
	watch     watch.Options    // probe interval and stale period
	listenOn  bool             // also serve the block on this node's tailnet addresses
	node      *embedded.Config // run an embedded node instead of asking tailscaled; nil to ask
	tableConf table.Config     // the Corefile's part; update adds the zones, TTL and probe

	listen   *listen.Group               // with the listen option; nil without
	table    atomic.Pointer[table.Table] // nil until the first snapshot
	hosts    atomic.Pointer[table.Table] // the last table built while Running, for HostKnown; nil before
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
		tableConf: table.Config{Tags: true, Services: true},
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
	if !tbl.Serving() {
		return t.pass(ctx, state, resultDown, tbl.Down())
	}
	if dnsutil.IsReverse(z) > 0 {
		return t.servePTR(ctx, state, tbl)
	}
	// The owner as asked, case kept; state.QName() would re-escape it.
	q := table.Question{Owner: r.Question[0].Name, Name: state.Name(), Zone: z, Type: state.QType()}
	now := time.Now().UnixNano()
	a := tbl.Answer(q, now)
	switch {
	case a.Kind == table.Missing:
		return t.notFound(ctx, state)
	case !a.Reachable:
		return t.pass(ctx, state, resultOf(a, tbl), tbl.Why(q, now))
	}
	return t.answer(ctx, state, a.RRs, tbl, resultOf(a, tbl))
}

// pass hands a name this plugin cannot answer honestly to the next plugin,
// leaving why in the query's policy, or says NXDOMAIN when fallthrough is
// off for it.
func (t *Tailnet) pass(ctx context.Context, state request.Request, result result, why policy.Reason) (int, error) {
	if t.Fall.Through(state.Name()) {
		t.count(ctx, result)
		d := policy.FromContext(ctx)
		d.Passed(policy.Tailnet, why)
		if d.WantsSOA() {
			d.SOA = t.soa(state.Zone, t.table.Load(), t.ttl)
		}
		return plugin.NextOrFailure(t.Name(), t.Next, ctx, state.W, state.Req)
	}
	return t.reply(ctx, state, dns.RcodeNameError, nil, t.ttl, resultNXDomain)
}

// notFound answers a name that no node, alias or tag has.
func (t *Tailnet) notFound(ctx context.Context, state request.Request) (int, error) {
	return t.pass(ctx, state, resultFallthrough, policy.Unknown)
}

// answer writes an authoritative NOERROR reply; with no records it is NODATA.
func (t *Tailnet) answer(ctx context.Context, state request.Request, rrs []dns.RR, tbl *table.Table, result result) (int, error) {
	ttl := t.ttl
	if tbl.Stale() {
		ttl = min(ttl, staleTTL)
		for _, rr := range rrs {
			rr.Header().Ttl = ttl
		}
		if d := policy.FromContext(ctx); d != nil {
			d.StaleFor = tbl.StaleFor(time.Now())
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

// servePTR answers the reverse names of tailnet addresses.
func (t *Tailnet) servePTR(ctx context.Context, state request.Request, tbl *table.Table) (int, error) {
	addr, err := netip.ParseAddr(dnsutil.ExtractAddressFromReverse(state.Name()))
	if err != nil {
		return t.notFound(ctx, state)
	}
	n := tbl.Node(addr)
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
