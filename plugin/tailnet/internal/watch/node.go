package watch

import (
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"tailscale.com/ipn/ipnstate"
	"tailscale.com/tailcfg"

	"github.com/tailhorizon/tailhorizon/internal/policy"
)

// Snapshot is the watch's published view of the tailnet. It is immutable
// and safe for concurrent use.
type Snapshot struct {
	State   State     // live, stale or down
	Running bool      // this node's backend is Running
	Nodes   []*Node   // every known node, self included
	LostAt  time.Time // when the watch broke; zero while it is live
	// StaleUntil is when a stale snapshot stops being served, in unix
	// nanoseconds: a tailscaled that restarted and never reached Running
	// sends nothing that would move it to down.
	StaleUntil int64
	Updated    time.Time // when the snapshot was made from live data

	// What control pushed besides the nodes; see control.
	Records  []Record  // extra DNS records that parse, in control's order
	Services []Service // the Tailscale Services this node can see, by name
	Suffix   string    // MagicDNS suffix, lowercase, no trailing dot; "" if unknown
}

// Serving reports whether names are answered from s at now (unix
// nanoseconds): this node is Running, and s is live, or stale within its
// stale period. A nil s, not loaded yet, is not serving.
func (s *Snapshot) Serving(now int64) bool {
	switch {
	case s == nil || s.State == Down || !s.Running:
		return false
	case s.State == Stale:
		return now < s.StaleUntil
	}
	return true
}

// State is how fresh a snapshot is.
type State int

const (
	Live  State = iota // the watch is connected
	Stale              // the watch broke; the last view is still served
	Down               // stale for too long, or never loaded: nothing is answered
)

func (s State) String() string {
	return [...]string{"live", "stale", "down"}[s]
}

// Node is one machine of the tailnet as the watch last saw it: a peer or
// this node itself. A Node is immutable once published in a snapshot; only
// its Health changes, atomically.
type Node struct {
	ID        tailcfg.StableNodeID // the key: every tailscaled version reports it
	NodeID    tailcfg.NodeID       // 0 where tailscaled's status omits it (1.86)
	Host      string               // first label of the MagicDNS name, lowercase; may be ""
	FQDN      string               // MagicDNS name with a trailing dot, as tailscaled gives it
	V4, V6    []netip.Addr         // tailnet addresses
	IP4       []net.IP             // V4 as the A records want them; never modified
	IP6       []net.IP             // V6 as the AAAA records want them; never modified
	Tags      []string             // ACL tags, "tag:" included
	Routes    []netip.Prefix       // AllowedIPs other than its addresses: subnet routes, service VIPs
	User      string               // login name of the node's user; "" if unknown
	Online    bool                 // connected to control; always true for self
	Expired   bool                 // control or tailscaled says its node key has expired
	KeyExpiry int64                // unix nanoseconds when its node key expires; 0 if never
	Self      bool                 // this node
	Health    *Health              // never nil; shared by every version of the node
}

// Reachable reports whether n should be answered with its tailnet address
// at now (unix nanoseconds): Why has nothing against it.
func (n *Node) Reachable(now int64) bool { return n.Why(now) == policy.Unset }

// Why returns why n is not reachable at now (unix nanoseconds);
// policy.Unset when it is. An expired key is never reachable: tailscaled
// refuses to send to it. A fresh probe result beats control's online bit,
// which lags a crash or a power cut by seconds and flaps when control
// restarts; without one, control's word stands.
func (n *Node) Why(now int64) policy.Reason {
	if n.Self {
		return policy.Unset
	}
	if n.KeyExpired(now) {
		return policy.KeyExpired
	}
	switch v := n.Health.verdict.Load(); {
	case v > now:
		return policy.Unset
	case -v > now:
		return policy.ProbeFailed
	}
	if n.Online {
		return policy.Unset
	}
	return policy.Offline
}

// KeyExpired reports whether n's node key has expired at now (unix
// nanoseconds).
func (n *Node) KeyExpired(now int64) bool {
	return n.Expired || (n.KeyExpiry != 0 && now >= n.KeyExpiry)
}

// Health is what the probe learned of a node, read without locks by
// queries and written by the probe. The zero value is a node never asked
// for nor probed.
type Health struct {
	askedAt atomic.Int64 // unix nanoseconds of the last query for it; 0 if never
	// verdict is the last probe's result and how long it holds, in unix
	// nanoseconds: +T answered a ping, until T; -T failed one, until T; 0
	// unknown. One word, so that a query reads it with one load.
	verdict atomic.Int64
	rtt     atomic.Int64 // nanoseconds the last answered ping took; 0 if none

	// The following fields are only used by the probe.
	probedAt atomic.Int64 // unix nanoseconds of the last ping sent; 0 if never
	inFlight atomic.Bool  // a ping is out
	answered atomic.Bool  // it answered a ping since the watch (re)connected
	firstAt  atomic.Int64 // unix nanoseconds of the first ping since then; 0 if none
}

// Ask records that the node was asked for at now (unix nanoseconds): the
// probe pings the nodes asked for in the last probeWindow.
func (h *Health) Ask(now int64) { h.askedAt.Store(now) }

// Asked returns when the node was last asked for, in unix nanoseconds; 0
// if never.
func (h *Health) Asked() int64 { return h.askedAt.Load() }

// Record sets the probe's verdict: the node answered a ping (alive) or
// failed one, and the verdict holds until until (unix nanoseconds). It
// reports whether that turns the last verdict around: alive after a
// failure, or failing after an answer or none.
func (h *Health) Record(alive bool, until int64) (turned bool) {
	if alive {
		return h.verdict.Swap(until) < 0
	}
	return h.verdict.Swap(-until) >= 0
}

// nodeFromStatus converts a LocalAPI status entry; user is its login name.
func nodeFromStatus(ps *ipnstate.PeerStatus, self bool, h *Health, user string) *Node {
	n := &Node{ID: ps.ID, NodeID: ps.NodeID, FQDN: ps.DNSName, Host: firstLabel(ps.DNSName), Online: ps.Online || self, Self: self, Health: h, User: user}
	n.SetAddrs(ps.TailscaleIPs)
	if ps.AllowedIPs != nil {
		n.Routes = routesOf(ps.AllowedIPs.AsSlice(), ps.TailscaleIPs)
	}
	if ps.Tags != nil {
		n.Tags = ps.Tags.AsSlice()
	}
	n.Expired = ps.Expired
	if ps.KeyExpiry != nil {
		n.KeyExpiry = ps.KeyExpiry.UnixNano()
	}
	return n
}

// nodeFromTailcfg converts a node from an IPN bus notification; user is
// its login name.
func nodeFromTailcfg(tn *tailcfg.Node, self bool, h *Health, user string) *Node {
	n := &Node{ID: tn.StableID, NodeID: tn.ID, FQDN: tn.Name, Host: firstLabel(tn.Name), Self: self, Health: h, User: user}
	n.Online = self || (tn.Online != nil && *tn.Online)
	addrs := make([]netip.Addr, 0, len(tn.Addresses))
	for _, p := range tn.Addresses {
		if p.IsSingleIP() {
			addrs = append(addrs, p.Addr())
		}
	}
	n.SetAddrs(addrs)
	n.Routes = routesOf(tn.AllowedIPs, addrs)
	n.Tags = tn.Tags
	n.Expired = tn.Expired
	if !tn.KeyExpiry.IsZero() {
		n.KeyExpiry = tn.KeyExpiry.UnixNano()
	}
	return n
}

// SetAddrs stores addrs, split by family, in both forms.
func (n *Node) SetAddrs(addrs []netip.Addr) {
	n.V4, n.V6 = splitAddrs(addrs)
	n.IP4, n.IP6 = toIPs(n.V4), toIPs(n.V6)
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
