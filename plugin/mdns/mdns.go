// Package mdns implements a plugin that answers HOST.ZONE, and every name
// below it, with the LAN addresses of HOST.local, found with direct
// multicast DNS questions (RFC 6762) and kept in a bounded cache that
// announcements and answers on the LAN keep fresh.
package mdns

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/counters"
	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/zone"
	"github.com/tailhorizon/tailhorizon/plugin/mdns/internal/lan"
)

const name = "mdns"

// MDNS is the plugin handler. Configure it before OnStartup; afterwards
// only its resolver changes.
type MDNS struct {
	Next  plugin.Handler
	Fall  fall.F
	Zones []string // normalized

	ttl     uint32            // seconds; answers and negative entries
	timeout time.Duration     // the longest a query waits for a lookup
	aliases map[string]string // alias label -> host label, both lowercase
	// hosts are the hosts asked for whatever the tailnet knows: those of
	// the hosts option and the aliases' targets; lowercase labels.
	hosts  map[string]bool
	listed bool // the hosts option was given
	askAll bool // ask all: every name is asked for
	// tailnet is the tailnet handler of the server block, found at
	// startup, before res is stored; nil without one.
	tailnet tailnetHosts
	// opts is what this instance brings to the shared resolver, and, by
	// its address, its identity there. Its Window and NegTTL are timeout
	// and ttl.
	opts lan.Options

	res      atomic.Pointer[lan.Resolver] // nil outside OnStartup..OnShutdown
	counters counters.Cache
}

// tailnetHosts is what mdns needs of the tailnet plugin's handler in its
// server block, found by name at startup (as k8s_external finds
// kubernetes): plugins never import each other.
type tailnetHosts interface {
	// HostKnown reports whether label, a lowercase label, names a host
	// the tailnet knows, in any state, or one of its aliases; loaded is
	// false until the tailnet has had a table.
	HostKnown(label string) (known, loaded bool)
}

// New returns an MDNS with the defaults of the Corefile syntax.
func New() *MDNS {
	m := &MDNS{
		ttl:      10,
		timeout:  300 * time.Millisecond,
		hosts:    map[string]bool{},
		opts:     lan.Options{Size: 10000, MaxTTL: 2 * time.Minute},
		counters: counters.Cache{Vec: requests, Results: resultNames[:]},
	}
	m.sync()
	return m
}

// sync copies timeout and ttl into the shared resolver's options.
func (m *MDNS) sync() {
	m.opts.Window, m.opts.NegTTL = m.timeout, time.Duration(m.ttl)*time.Second
}

// Name implements the plugin.Handler interface.
func (m *MDNS) Name() string { return name }

// ServeDNS implements the plugin.Handler interface.
func (m *MDNS) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	z := zone.Match(m.Zones, state.Name())
	if z == "" || !policy.FromContext(ctx).Allows(policy.LAN) {
		return plugin.NextOrFailure(m.Name(), m.Next, ctx, w, r)
	}
	if zone.Reject(w, r) {
		return dns.RcodeSuccess, nil
	}
	state.Zone = z
	if state.Name() == z {
		return m.serveApex(ctx, state)
	}
	res := m.res.Load()
	if res == nil || !res.Listening() {
		return m.pass(ctx, state, resultDown)
	}
	host := m.host(state.Name(), z)
	if host == "" {
		return m.passFor(ctx, state, resultFallthrough, policy.Unknown)
	}
	recs, result := m.resolve(ctx, res, host, state.QType())
	switch {
	case result == resultBusy, result == resultUnlisted:
		return m.pass(ctx, state, result)
	case recs == nil || recs.Negative:
		return m.notFound(ctx, state)
	}
	rrs := m.addresses(state, recs, res.Now())
	if len(rrs) == 0 {
		result = resultNoData
	}
	return m.reply(ctx, state, dns.RcodeSuccess, rrs, result)
}

// resolve returns what the cache knows of host, after one bounded wait on
// the lookup of host when the cache knows nothing (or its first lookup is
// still waiting for the asked type): a query joins the lookup in flight
// for the name, or starts it, and waits for an answer of its type, the end
// of the lookup, or its timeout. A host that cannot be on the LAN is not
// asked for.
func (m *MDNS) resolve(ctx context.Context, res *lan.Resolver, host string, qtype uint16) (*lan.HostRecs, result) {
	recs := res.Cached(host)
	switch {
	case recs != nil && (!recs.Pending || recs.Has(qtype)):
		return recs, resultAnswer
	case recs == nil && !m.mayAsk(host):
		return nil, resultUnlisted
	}
	f := res.Lookup(host)
	if f == nil {
		return nil, resultBusy
	}
	timer := time.NewTimer(m.timeout)
	select {
	case <-f.Wait(qtype):
	case <-f.Done():
	case <-timer.C:
	case <-ctx.Done():
	}
	timer.Stop()
	return res.Cached(host), resultLookup
}

// mayAsk reports whether host may be asked for on the LAN: with ask all,
// every host; otherwise a host of the Corefile (hosts, alias), and one the
// tailnet of the server block knows, or every host while that tailnet has
// had no table yet. Without a tailnet in the block, every host, unless the
// hosts option lists them.
func (m *MDNS) mayAsk(host string) bool {
	switch {
	case m.askAll || m.hosts[host]:
		return true
	case m.tailnet != nil:
		known, loaded := m.tailnet.HostKnown(host)
		return known || !loaded
	}
	return !m.listed
}

// host returns the mDNS host that qname below zone names, aliases applied,
// or "" when the label cannot be an mDNS host name.
func (m *MDNS) host(qname, z string) string {
	h := zone.HostLabel(qname, z)
	if a, ok := m.aliases[h]; ok {
		return a
	}
	if !lan.IsHost(h) {
		return ""
	}
	return h
}

// pass hands a name this plugin cannot answer now to the next plugin, or
// says NXDOMAIN when fallthrough is off for it.
func (m *MDNS) pass(ctx context.Context, state request.Request, r result) (int, error) {
	return m.passFor(ctx, state, r, passReasons[r])
}

// passReasons say, for the fallback's explanation, why a result passed
// the name on.
var passReasons = [numResults]policy.Reason{
	resultFallthrough: policy.LANTimeout,
	resultBusy:        policy.LANBusy,
	resultDown:        policy.LANDown,
	resultUnlisted:    policy.Unlisted,
}

// passFor is pass, leaving why in the query's policy decision.
func (m *MDNS) passFor(ctx context.Context, state request.Request, r result, why policy.Reason) (int, error) {
	if m.Fall.Through(state.Name()) {
		m.count(ctx, r)
		d := policy.FromContext(ctx)
		d.Passed(policy.LAN, why)
		if d.WantsSOA() {
			d.SOA = m.soa(state.Zone)
		}
		return plugin.NextOrFailure(m.Name(), m.Next, ctx, state.W, state.Req)
	}
	return m.reply(ctx, state, dns.RcodeNameError, nil, resultNXDomain)
}

// notFound answers a host that did not answer on the LAN.
func (m *MDNS) notFound(ctx context.Context, state request.Request) (int, error) {
	return m.pass(ctx, state, resultFallthrough)
}

// reply writes an authoritative reply; with no records it carries the SOA.
func (m *MDNS) reply(ctx context.Context, state request.Request, rcode int, rrs []dns.RR, r result) (int, error) {
	var soa *dns.SOA
	if len(rrs) == 0 {
		soa = m.soa(state.Zone)
	}
	zone.Reply(state.W, state.Req, rcode, rrs, soa)
	policy.FromContext(ctx).Answered(policy.LAN)
	m.count(ctx, r)
	return dns.RcodeSuccess, nil
}

func (m *MDNS) count(ctx context.Context, r result) {
	m.counters.Get(metrics.WithServer(ctx), metrics.WithView(ctx))[r].Inc()
}

// addresses returns the records of recs of the asked type that are still
// valid at now. Their TTL is the smaller of ttl and what is left of theirs.
func (m *MDNS) addresses(state request.Request, recs *lan.HostRecs, now int64) []dns.RR {
	owner := state.Req.Question[0].Name // as asked, case kept; QName() would re-escape it
	var rrs []dns.RR
	qtype := state.QType()
	// ANY gets the A and AAAA records, as in tailnet (RFC 8482 §4.1).
	if qtype == dns.TypeA || qtype == dns.TypeANY {
		for _, a := range recs.V4 {
			if ttl, ok := m.ttlAt(a, now); ok {
				rrs = append(rrs, &dns.A{Hdr: zone.Header(owner, dns.TypeA, ttl), A: a.IP})
			}
		}
	}
	if qtype == dns.TypeAAAA || qtype == dns.TypeANY {
		for _, a := range recs.V6 {
			if ttl, ok := m.ttlAt(a, now); ok {
				rrs = append(rrs, &dns.AAAA{Hdr: zone.Header(owner, dns.TypeAAAA, ttl), AAAA: a.IP})
			}
		}
	}
	return rrs
}

// ttlAt returns the TTL to answer a with at now, and whether a is valid.
func (m *MDNS) ttlAt(a lan.AddrRec, now int64) (uint32, bool) {
	left := a.Expires - now
	if left <= 0 {
		return 0, false
	}
	return min(m.ttl, uint32((left+int64(time.Second)-1)/int64(time.Second))), true
}

// serveApex answers a query for the zone's apex, as tailnet does: SOA
// and NS are the plugin's; every other type is the public zone's, passed
// on with fallthrough and NODATA without.
func (m *MDNS) serveApex(ctx context.Context, state request.Request) (int, error) {
	rrs := m.apex(state)
	if rrs == nil && m.Fall.Through(state.Name()) {
		m.count(ctx, resultFallthrough)
		return plugin.NextOrFailure(m.Name(), m.Next, ctx, state.W, state.Req)
	}
	r := resultAnswer
	if rrs == nil {
		r = resultNoData
	}
	return m.reply(ctx, state, dns.RcodeSuccess, rrs, r)
}

// apex returns the records for a query of the zone's apex: SOA and NS,
// both for ANY, and nil for other types.
func (m *MDNS) apex(state request.Request) []dns.RR {
	ns := func() dns.RR { return &dns.NS{Hdr: zone.Header(state.Zone, dns.TypeNS, m.ttl), Ns: "ns." + state.Zone} }
	switch state.QType() {
	case dns.TypeSOA:
		return []dns.RR{m.soa(state.Zone)}
	case dns.TypeNS:
		return []dns.RR{ns()}
	case dns.TypeANY: // both, as in tailnet (RFC 8482 §4.1)
		return []dns.RR{m.soa(state.Zone), ns()}
	}
	return nil
}

// soa is the zone's SOA record, naming ns.ZONE. Its minimum is the
// answers' TTL, which bounds negative caching.
func (m *MDNS) soa(z string) *dns.SOA { return zone.SOA(z, "ns."+z, serial, m.ttl) }

// serial is the SOA serial: when this process started. The zone has no
// versions; what changes is learned continuously.
var serial = uint32(time.Now().Unix())
