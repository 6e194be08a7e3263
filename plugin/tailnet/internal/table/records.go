package table

import (
	"net"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/zone"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
)

// RecordMode is which of control's extra records an instance serves.
type RecordMode int

const (
	RecordsOn       RecordMode = iota // those named in the zones
	RecordsOff                        // none
	RecordsMagicDNS                   // also those under the MagicDNS suffix, moved into the zones
)

// recordSet is what one name has of control's extra records.
type recordSet struct {
	rrs []record // empty for a name that only has records below it
}

// record is one extra record. Its owner name and TTL are set per answer.
type record struct {
	rr dns.RR
	// gated: an A or AAAA record of a node's tailnet address, or of a
	// service's VIP, is answered only while one of gate is reachable, as
	// the node or service itself is; gate may then be empty (a service
	// with no host), and it is never answered.
	gated bool
	gate  []*watch.Node
}

// addRecords indexes the extra records of s that fall in cfg's zones,
// under the names no host or service has.
func (t *Table) addRecords(s *watch.Snapshot, cfg Config, services map[string]*entry) {
	if cfg.Records == RecordsOff || len(s.Records) == 0 {
		return
	}
	vips := map[netip.Addr]*entry{}
	for _, e := range services {
		for _, ips := range [][]net.IP{e.vip4, e.vip6} {
			for _, ip := range ips {
				a, _ := netip.AddrFromSlice(ip)
				vips[a.Unmap()] = e
			}
		}
	}
	t.records = map[string]*recordSet{}
	for _, rec := range s.Records {
		for _, p := range t.recordNames(rec.Name, s.Suffix, cfg) {
			r := record{rr: rec.RR}
			if a, ok := recordAddr(rec.RR); ok {
				if n := t.ptr[a]; n != nil {
					r.gated, r.gate = true, []*watch.Node{n}
				} else if e := vips[a]; e != nil {
					r.gated, r.gate = true, e.nodes
				}
			}
			t.addRecord(p.name, p.zone, r)
		}
	}
}

// placed is a name an extra record is served under, and its zone.
type placed struct{ name, zone string }

// recordNames returns the names in cfg's zones that an extra record of
// name is served under: itself, if it is in one, and with RecordsMagicDNS
// a name under the MagicDNS suffix moved into each zone. It leaves out a
// zone's apex and the names of hosts and services, which win.
func (t *Table) recordNames(name, suffix string, cfg Config) []placed {
	var out []placed
	for _, z := range cfg.Zones {
		n := name
		if rel, ok := strings.CutSuffix(name, "."+suffix+"."); ok && cfg.Records == RecordsMagicDNS && suffix != "" {
			n = rel + "." + z
		}
		if n == z || !dns.IsSubDomain(z, n) {
			continue
		}
		if e := t.names[zone.HostLabel(n, z)]; e != nil && !e.alias {
			continue
		}
		out = append(out, placed{n, z})
	}
	return out
}

// addRecord stores r under name, and makes the names between it and its
// zone z exist (empty non-terminals answer NODATA, not NXDOMAIN).
func (t *Table) addRecord(name, z string, r record) {
	rs := t.records[name]
	if rs == nil {
		rs = &recordSet{}
		t.records[name] = rs
	}
	rs.rrs = append(rs.rrs, r)
	for i, end := dns.NextLabel(name, 0); !end && len(name)-i > len(z); i, end = dns.NextLabel(name, i) {
		if t.records[name[i:]] == nil {
			t.records[name[i:]] = &recordSet{}
		}
	}
}

// recordAddr returns the address of an A or AAAA record.
func recordAddr(rr dns.RR) (netip.Addr, bool) {
	switch rr := rr.(type) {
	case *dns.A:
		a, ok := netip.AddrFromSlice(rr.A)
		return a.Unmap(), ok
	case *dns.AAAA:
		return netip.AddrFromSlice(rr.AAAA)
	}
	return netip.Addr{}, false
}

// recordAnswer answers q from the extra records of its name: those of
// its type, or its CNAME. A name whose records of the type all point at
// unreachable nodes is not Reachable, as the nodes' own names are not.
func (t *Table) recordAnswer(q Question, rs *recordSet, now int64) Answer {
	var rrs []dns.RR
	skipped := false // a record of the type whose nodes are all unreachable
	for _, r := range rs.rrs {
		if typ := r.rr.Header().Rrtype; typ != q.Type && typ != dns.TypeCNAME {
			continue
		}
		if r.gated && !t.anyReachable(r.gate, now) {
			skipped = true
			continue
		}
		rr := dns.Copy(r.rr)
		*rr.Header() = t.hdr(q.Owner, rr.Header().Rrtype)
		rrs = append(rrs, rr)
	}
	if len(rrs) == 0 && skipped {
		return Answer{Kind: Record}
	}
	if len(rrs) == 1 && q.Type != dns.TypeCNAME {
		if cname, ok := rrs[0].(*dns.CNAME); ok {
			rrs = t.chase(rrs, q.Zone, cname.Target, q.Type, now)
		}
	}
	return Answer{RRs: rrs, Kind: Record, Reachable: true}
}

// chase appends the records of qtype of a CNAME's target, if it is in z
// and this table answers it, as the resolver after the CNAME would: a stub
// resolver asking this server gets the addresses in one answer. One step
// only; a target that answers nothing (unknown, unreachable) leaves the
// CNAME alone, for the resolver to follow.
func (t *Table) chase(rrs []dns.RR, z string, target string, qtype uint16, now int64) []dns.RR {
	target = dns.CanonicalName(target)
	if target == z || !dns.IsSubDomain(z, target) {
		return rrs
	}
	e := t.names[zone.HostLabel(target, z)]
	if rs := t.recordsOf(target, e); rs != nil {
		for _, r := range rs.rrs {
			if r.rr.Header().Rrtype == qtype && (!r.gated || t.anyReachable(r.gate, now)) {
				rr := dns.Copy(r.rr)
				*rr.Header() = t.hdr(target, qtype)
				rrs = append(rrs, rr)
			}
		}
		return rrs
	}
	if e != nil {
		rrs, _ = t.nodeAddresses(rrs, target, qtype, e, now)
	}
	return rrs
}

// anyReachable reports whether one of nodes is reachable at now, and asks
// the probe about all of them.
func (t *Table) anyReachable(nodes []*watch.Node, now int64) bool {
	up := false
	for _, n := range nodes {
		if t.cfg.Probe {
			n.Health.Ask(now) // unreachable ones too: they may come back
		}
		up = up || n.Reachable(now)
	}
	return up
}

// recordsOf returns the extra records of name, if they are what answers
// it: a host or service label e wins over them, and they win over an
// alias or tag group, but for a name that only has records below it.
func (t *Table) recordsOf(name string, e *entry) *recordSet {
	rs := t.records[name]
	if rs == nil || (e != nil && (!e.alias || len(rs.rrs) == 0)) {
		return nil
	}
	return rs
}
