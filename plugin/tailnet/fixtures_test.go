package tailnet

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"tailscale.com/tailcfg"

	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
)

// testNode makes a node; addrs may mix IPv4 and IPv6.
func testNode(id int, fqdn string, online bool, addrs []string, tags ...string) *watch.Node {
	var ips []netip.Addr
	for _, a := range addrs {
		ips = append(ips, netip.MustParseAddr(a))
	}
	host, _, _ := strings.Cut(strings.ToLower(fqdn), ".")
	n := &watch.Node{ID: stableID(id), NodeID: tailcfg.NodeID(id), FQDN: fqdn, Host: host, Online: online, Tags: tags, Health: new(watch.Health)}
	n.SetAddrs(ips)
	return n
}

// stableID is the StableNodeID tests give the node with NodeID id.
func stableID(id int) tailcfg.StableNodeID {
	return tailcfg.StableNodeID(fmt.Sprintf("n%dCNTRL", id))
}

// testSnapshot is a small live tailnet: this node (self), two online
// peers, one of them tagged, an offline peer, and a second tagged peer.
func testSnapshot() *watch.Snapshot {
	self := testNode(1, "self.tail-scale.ts.net.", true, []string{"100.64.0.1", "fd7a:115c:a1e0::1"})
	self.Self = true
	return &watch.Snapshot{
		State:   watch.Live,
		Running: true,
		Updated: time.Unix(1700000000, 0),
		Nodes: []*watch.Node{
			self,
			testNode(2, "hub.tail-scale.ts.net.", true, []string{"100.64.0.2", "fd7a:115c:a1e0::2"}),
			testNode(3, "Registry-Box.tail-scale.ts.net.", true, []string{"100.64.0.3", "fd7a:115c:a1e0::3"}, "tag:registry", "tag:web"),
			testNode(4, "alpha.tail-scale.ts.net.", false, []string{"100.64.0.4", "fd7a:115c:a1e0::4"}),
			testNode(5, "beta.tail-scale.ts.net.", true, []string{"100.64.0.5"}, "tag:web"),
		},
	}
}
