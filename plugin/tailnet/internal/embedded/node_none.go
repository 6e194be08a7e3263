//go:build tailhorizon_nonode

package embedded

import (
	"errors"
	"net"

	"tailscale.com/client/local"
)

// Built reports that this binary has the embedded node: it does not.
const Built = false

// Node is a running embedded node: never, in this build.
type Node struct {
	dir  string
	refs int
}

// ErrNotBuilt is Start's error in a binary built without the node.
var ErrNotBuilt = errors.New("this coredns was built without the embedded node (tag tailhorizon_nonode): ask tailscaled instead")

func start(*Config, string) (*Node, error) { return nil, ErrNotBuilt }

func (n *Node) close() {}

// LocalClient returns nil: there is no node.
func (n *Node) LocalClient() *local.Client { return nil }

// Listen fails: there is no node.
func (n *Node) Listen(string, string) (net.Listener, error) { return nil, ErrNotBuilt }

// ListenPacket fails: there is no node.
func (n *Node) ListenPacket(string, string) (net.PacketConn, error) { return nil, ErrNotBuilt }
