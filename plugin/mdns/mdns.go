// Package mdns implements a plugin that answers HOST.ZONE, and every name
// below it, with the LAN addresses of HOST.local, found with direct
// multicast DNS questions (RFC 6762) and kept in a bounded cache that
// announcements and answers on the LAN keep fresh.
package mdns

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/fall"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/counters"
	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/zone"
)

const name = "mdns"

var log = clog.NewWithPlugin(name)

// MDNS is the plugin handler. Configure it before OnStartup; afterwards
// only its resolver changes.
type MDNS struct {
	Next  plugin.Handler
	Fall  fall.F
	Zones []string // normalized

	ttl     uint32            // seconds; answers and negative entries
	timeout time.Duration     // the longest a query waits for a lookup
	aliases map[string]string // alias label -> host label, both lowercase
	conf    config            // what the shared resolver is set up with

	res      atomic.Pointer[resolver] // nil outside OnStartup..OnShutdown
	counters counters.Cache
}

// New returns an MDNS with the defaults of the Corefile syntax.
func New() *MDNS {
	return &MDNS{
		ttl:      10,
		timeout:  300 * time.Millisecond,
		conf:     config{size: 10000, maxTTL: 2 * time.Minute},
		counters: counters.Cache{Vec: requests, Results: resultNames[:]},
	}
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
	state.Zone = z
	if state.Name() == z {
		return m.reply(ctx, state, dns.RcodeSuccess, m.apex(state), resultAnswer)
	}
	res := m.res.Load()
	if res == nil || !res.listening() {
		return m.pass(ctx, state, resultDown)
	}
	host := m.host(state.Name(), z)
	if host == "" {
		return m.notFound(ctx, state)
	}
	recs, result := m.resolve(ctx, res, host, state.QType())
	switch {
	case result == resultBusy:
		return m.pass(ctx, state, resultBusy)
	case recs == nil || recs.negative:
		return m.notFound(ctx, state)
	}
	rrs := m.addresses(state, recs, res.now())
	if len(rrs) == 0 {
		result = resultNoData
	}
	return m.reply(ctx, state, dns.RcodeSuccess, rrs, result)
}

// resolve returns what the cache knows of host, after one bounded wait on
// the lookup of host when the cache knows nothing: a query joins the
// lookup in flight for the name, or starts it, and waits for an answer of
// its type, the end of the lookup, or its timeout.
func (m *MDNS) resolve(ctx context.Context, res *resolver, host string, qtype uint16) (*hostRecs, result) {
	if recs := res.cached(host); recs != nil {
		return recs, resultAnswer
	}
	f := res.lookup(host, reasonMiss)
	if f == nil {
		return nil, resultBusy
	}
	timer := time.NewTimer(m.timeout)
	select {
	case <-f.wait(qtype):
	case <-f.done:
	case <-timer.C:
	case <-ctx.Done():
	}
	timer.Stop()
	return res.cached(host), resultLookup
}

// host returns the mDNS host that qname below zone names, aliases applied,
// or "" when the label cannot be an mDNS host name.
func (m *MDNS) host(qname, z string) string {
	h := zone.HostLabel(qname, z)
	if a, ok := m.aliases[h]; ok {
		return a
	}
	if !isHost(h) {
		return ""
	}
	return h
}

// isHost reports whether label can be asked as label.local: one label,
// without escapes.
func isHost(label string) bool {
	return label != "" && len(label) <= 63 && !strings.ContainsAny(label, `\.`)
}

// pass hands a name this plugin cannot answer now to the next plugin, or
// says NXDOMAIN when fallthrough is off for it.
func (m *MDNS) pass(ctx context.Context, state request.Request, r result) (int, error) {
	if m.Fall.Through(state.Name()) {
		m.count(ctx, r)
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
	msg := new(dns.Msg)
	msg.SetRcode(state.Req, rcode)
	msg.Authoritative = true
	msg.Answer = rrs
	if len(rrs) == 0 {
		msg.Ns = []dns.RR{m.soa(state.Zone)}
	}
	state.W.WriteMsg(msg)
	policy.FromContext(ctx).Answered(policy.LAN)
	m.count(ctx, r)
	return dns.RcodeSuccess, nil
}

func (m *MDNS) count(ctx context.Context, r result) {
	m.counters.Get(metrics.WithServer(ctx), metrics.WithView(ctx))[r].Inc()
}

// addresses returns the records of recs of the asked type that are still
// valid at now. Their TTL is the smaller of ttl and what is left of theirs.
func (m *MDNS) addresses(state request.Request, recs *hostRecs, now int64) []dns.RR {
	owner := state.Req.Question[0].Name // as asked, case kept; QName() would re-escape it
	var rrs []dns.RR
	switch state.QType() {
	case dns.TypeA:
		for _, a := range recs.v4 {
			if ttl, ok := m.ttlAt(a, now); ok {
				rrs = append(rrs, &dns.A{Hdr: hdr(owner, dns.TypeA, ttl), A: a.ip})
			}
		}
	case dns.TypeAAAA:
		for _, a := range recs.v6 {
			if ttl, ok := m.ttlAt(a, now); ok {
				rrs = append(rrs, &dns.AAAA{Hdr: hdr(owner, dns.TypeAAAA, ttl), AAAA: a.ip})
			}
		}
	}
	return rrs
}

// ttlAt returns the TTL to answer a with at now, and whether a is valid.
func (m *MDNS) ttlAt(a addrRec, now int64) (uint32, bool) {
	left := a.expires - now
	if left <= 0 {
		return 0, false
	}
	return min(m.ttl, uint32((left+int64(time.Second)-1)/int64(time.Second))), true
}

// apex returns the records for a query of the zone's apex: SOA and NS,
// and nothing (NODATA) for other types.
func (m *MDNS) apex(state request.Request) []dns.RR {
	switch state.QType() {
	case dns.TypeSOA:
		return []dns.RR{m.soa(state.Zone)}
	case dns.TypeNS:
		return []dns.RR{&dns.NS{Hdr: hdr(state.Zone, dns.TypeNS, m.ttl), Ns: "ns." + state.Zone}}
	}
	return nil
}

// soa is the zone's SOA record. Its minimum is the answers' TTL, which
// bounds negative caching.
func (m *MDNS) soa(z string) *dns.SOA {
	return &dns.SOA{
		Hdr:     hdr(z, dns.TypeSOA, m.ttl),
		Ns:      "ns." + z,
		Mbox:    "hostmaster." + z,
		Serial:  serial,
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  m.ttl,
	}
}

// serial is the SOA serial: when this process started. The zone has no
// versions; what changes is learned continuously.
var serial = uint32(time.Now().Unix())

func hdr(owner string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

// tailnetRanges are Tailscale's address ranges (100.64.0.0/10 and
// fd7a:115c:a1e0::/48): a LAN answer never carries them.
var tailnetRanges = [...]netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fd7a:115c:a1e0::/48"),
}
