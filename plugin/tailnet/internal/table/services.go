package table

import (
	"net"
	"slices"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
)

// addServices adds a name for each Tailscale Service of s whose name no
// host has, with the nodes that host it: those whose routes hold one of
// its VIPs. It returns every service's entry by name, taken or not, for
// the aliases and the extra records that point at one.
func (t *Table) addServices(s *watch.Snapshot, cfg Config) map[string]*entry {
	if !cfg.Services || len(s.Services) == 0 {
		return nil
	}
	all := make(map[string]*entry, len(s.Services))
	for _, svc := range s.Services {
		e := &entry{service: true}
		for _, a := range svc.Addrs {
			if a.Is4() {
				e.vip4 = append(e.vip4, net.IP(a.AsSlice()))
			} else {
				e.vip6 = append(e.vip6, net.IP(a.AsSlice()))
			}
		}
		for _, n := range s.Nodes {
			if hosts(n, svc) {
				e.nodes = append(e.nodes, n)
			}
		}
		all[svc.Name] = e
		if _, taken := t.names[svc.Name]; !taken {
			t.names[svc.Name] = e
		}
	}
	return all
}

// hosts reports whether n hosts svc: control gives a host each VIP as a
// route of its own (a /32 or /128). A wider route that merely contains
// the VIP (an exit node's 0.0.0.0/0, a subnet router's) does not count.
func hosts(n *watch.Node, svc watch.Service) bool {
	for _, p := range n.Routes {
		if p.IsSingleIP() && slices.Contains(svc.Addrs, p.Addr()) {
			return true
		}
	}
	return false
}

// serviceAddresses appends to rrs the VIPs of service e of qtype under
// owner, while any of its hosts is reachable, and reports whether one is.
func (t *Table) serviceAddresses(rrs []dns.RR, owner string, qtype uint16, e *entry, now int64) ([]dns.RR, bool) {
	if !t.anyReachable(e.nodes, now) {
		return rrs, false
	}
	switch qtype {
	case dns.TypeA:
		for _, ip := range e.vip4 {
			rrs = append(rrs, &dns.A{Hdr: t.hdr(owner, dns.TypeA), A: ip})
		}
	case dns.TypeAAAA:
		for _, ip := range e.vip6 {
			rrs = append(rrs, &dns.AAAA{Hdr: t.hdr(owner, dns.TypeAAAA), AAAA: ip})
		}
	}
	return rrs, true
}
