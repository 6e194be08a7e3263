package tailnet

import (
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"tailscale.com/ipn/ipnstate"
	"tailscale.com/tailcfg"
)

// node is one machine of the tailnet as the watch last saw it: a peer or
// this node itself. A node is immutable once published in a snapshot; only
// its health changes, atomically.
type node struct {
	id        tailcfg.StableNodeID // the key: every tailscaled version reports it
	nodeID    tailcfg.NodeID       // 0 where tailscaled's status omits it (1.86)
	host      string               // first label of the MagicDNS name, lowercase; may be ""
	fqdn      string               // MagicDNS name with a trailing dot, as tailscaled gives it
	v4, v6    []netip.Addr         // tailnet addresses
	ip4       []net.IP             // v4 as the A records want them; never modified
	ip6       []net.IP             // v6 as the AAAA records want them; never modified
	tags      []string             // ACL tags, "tag:" included
	user      string               // login name of the node's user; "" if unknown
	online    bool                 // connected to control; always true for self
	expired   bool                 // control or tailscaled says its node key has expired
	keyExpiry int64                // unix nanoseconds when its node key expires; 0 if never
	self      bool
	health    *health // never nil; shared by every version of the node
}

// health is what the probe learned of a node, read without locks by
// ServeDNS and written by the probe loop.
type health struct {
	askedAt atomic.Int64 // unix nanoseconds of the last query for it; 0 if never
	// verdict is the last probe's result and how long it holds, in unix
	// nanoseconds: +T answered a ping, until T; -T failed one, until T; 0
	// unknown. One word, so that ServeDNS reads it with one load.
	verdict atomic.Int64

	// The following fields are only used by the probe loop.
	probedAt atomic.Int64 // unix nanoseconds of the last ping sent; 0 if never
	inFlight atomic.Bool  // a ping is out
	answered atomic.Bool  // it answered a ping since the watch (re)connected
	firstAt  atomic.Int64 // unix nanoseconds of the first ping since then; 0 if none
}

// reachable reports whether n should be answered with its tailnet address
// at now (unix nanoseconds). An expired key is never reachable: tailscaled
// refuses to send to it. A fresh probe result beats control's online bit,
// which lags a crash or a power cut by seconds and flaps when control
// restarts; without one, control's word stands.
func (n *node) reachable(now int64) bool {
	if n.self {
		return true
	}
	if n.keyExpired(now) {
		return false
	}
	switch v := n.health.verdict.Load(); {
	case v > now:
		return true
	case -v > now:
		return false
	}
	return n.online
}

// snapshot is the watcher's published view of the tailnet. It is immutable
// and safe for concurrent use.
type snapshot struct {
	state   state     // live, stale or down
	running bool      // this node's backend is Running
	nodes   []*node   // every known node, self included
	lostAt  time.Time // when the watch broke; zero while it is live
	// staleUntil is when a stale snapshot stops being served, in unix
	// nanoseconds: a tailscaled that restarted and never reached Running
	// sends nothing that would move it to down.
	staleUntil int64
	updated    time.Time // when the snapshot was made from live data
}

// state is how fresh a snapshot is.
type state int

const (
	stateLive  state = iota // the watch is connected
	stateStale              // the watch broke; the last view is still served
	stateDown               // stale for too long, or never loaded: nothing is answered
)

func (s state) String() string {
	return [...]string{"live", "stale", "down"}[s]
}

// keyExpired reports whether n's node key has expired at now (unix
// nanoseconds).
func (n *node) keyExpired(now int64) bool {
	return n.expired || (n.keyExpiry != 0 && now >= n.keyExpiry)
}

// nodeFromStatus converts a LocalAPI status entry; user is its login name.
func nodeFromStatus(ps *ipnstate.PeerStatus, self bool, h *health, user string) *node {
	n := &node{id: ps.ID, nodeID: ps.NodeID, fqdn: ps.DNSName, online: ps.Online || self, self: self, health: h, user: user}
	n.host = firstLabel(ps.DNSName)
	n.setAddrs(ps.TailscaleIPs)
	if ps.Tags != nil {
		n.tags = ps.Tags.AsSlice()
	}
	n.expired = ps.Expired
	if ps.KeyExpiry != nil {
		n.keyExpiry = ps.KeyExpiry.UnixNano()
	}
	return n
}

// nodeFromTailcfg converts a node from an IPN bus notification; user is
// its login name.
func nodeFromTailcfg(tn *tailcfg.Node, self bool, h *health, user string) *node {
	n := &node{id: tn.StableID, nodeID: tn.ID, fqdn: tn.Name, self: self, health: h, user: user}
	n.online = self || (tn.Online != nil && *tn.Online)
	n.host = firstLabel(tn.Name)
	addrs := make([]netip.Addr, 0, len(tn.Addresses))
	for _, p := range tn.Addresses {
		if p.IsSingleIP() {
			addrs = append(addrs, p.Addr())
		}
	}
	n.setAddrs(addrs)
	n.tags = tn.Tags
	n.expired = tn.Expired
	if !tn.KeyExpiry.IsZero() {
		n.keyExpiry = tn.KeyExpiry.UnixNano()
	}
	return n
}

// setAddrs stores addrs, split by family, in both forms.
func (n *node) setAddrs(addrs []netip.Addr) {
	n.v4, n.v6 = splitAddrs(addrs)
	n.ip4, n.ip6 = toIPs(n.v4), toIPs(n.v6)
}

func toIPs(addrs []netip.Addr) []net.IP {
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.AsSlice()
	}
	return ips
}

func splitAddrs(addrs []netip.Addr) (v4, v6 []netip.Addr) {
	for _, a := range addrs {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	return v4, v6
}

// firstLabel returns the lowercase first label of a DNS name.
func firstLabel(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		name = name[:i]
	}
	return strings.ToLower(name)
}

// entry is what one name of the zone resolves to: one host, or every
// node carrying a tag.
type entry struct {
	host  string  // label of the host for a CNAME target; "" for a tag group
	nodes []*node // never empty
}

// table answers one plugin instance's questions from one snapshot. It is
// immutable and safe for concurrent use.
type table struct {
	names      map[string]*entry    // keys are lowercase labels without dots
	ptr        map[netip.Addr]*node // every tailnet address
	state      state                // as in the snapshot
	staleUntil int64                // as in the snapshot
	running    bool                 // as in the snapshot
	serial     uint32               // SOA serial: when the snapshot was made
	self       string               // label of this node; "" if unknown
	selfNode   *node                // this node; nil if unknown
}

// tableConfig is what a plugin instance adds to a snapshot to make its table.
type tableConfig struct {
	aliases   map[string]string // alias label -> host label, both lowercase
	tags      bool              // answer tag names
	tagPrefix string            // only tags "tag:PREFIX..." count; the name is what follows
}

// buildTable indexes s for cfg. Hosts win over aliases, and Corefile
// aliases over tag names, so that adding a tag never hijacks a host.
func buildTable(s *snapshot, cfg tableConfig) *table {
	t := &table{
		names:      make(map[string]*entry, len(s.nodes)),
		ptr:        make(map[netip.Addr]*node, 2*len(s.nodes)),
		state:      s.state,
		staleUntil: s.staleUntil,
		running:    s.running,
		serial:     uint32(s.updated.Unix()),
	}
	for _, n := range s.nodes {
		if n.self {
			t.selfNode = n
		}
		for _, a := range n.v4 {
			t.ptr[a] = n
		}
		for _, a := range n.v6 {
			t.ptr[a] = n
		}
		if n.host != "" {
			t.names[n.host] = &entry{host: n.host, nodes: []*node{n}}
		}
	}
	for alias, host := range cfg.aliases {
		if _, taken := t.names[alias]; taken {
			continue
		}
		if e, ok := t.names[host]; ok {
			t.names[alias] = e
		}
	}
	if !cfg.tags {
		return t
	}
	groups := map[string]*entry{}
	for _, n := range s.nodes {
		for _, tag := range n.tags {
			name, ok := strings.CutPrefix(tag, "tag:"+cfg.tagPrefix)
			name = strings.ToLower(name)
			if !ok || name == "" || strings.Contains(name, ".") {
				continue
			}
			if _, taken := t.names[name]; taken && groups[name] == nil {
				continue
			}
			if groups[name] == nil {
				groups[name] = &entry{}
				t.names[name] = groups[name]
			}
			groups[name].nodes = append(groups[name].nodes, n)
		}
	}
	return t
}

// serving reports whether t answers names at all: it was loaded, this node
// is Running, and a stale table is within its stale period.
func (t *table) serving() bool {
	switch {
	case t == nil || t.state == stateDown || !t.running:
		return false
	case t.state == stateStale:
		return time.Now().UnixNano() < t.staleUntil
	}
	return true
}
