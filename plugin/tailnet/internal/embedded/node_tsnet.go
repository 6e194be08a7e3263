//go:build !tailhorizon_nonode

package embedded

import (
	"fmt"
	"net"

	"tailscale.com/client/local"
	"tailscale.com/tsnet"
)

// Built reports that this binary has the embedded node.
const Built = true

// Node is a running embedded node.
type Node struct {
	srv *tsnet.Server
	lc  *local.Client

	dir  string // the key of running
	refs int    // guarded by running's lock
}

func start(cfg *Config, authKey string) (*Node, error) {
	srv := &tsnet.Server{
		Hostname:      cfg.Hostname,
		Dir:           cfg.StateDir,
		ControlURL:    cfg.ControlURL,
		AuthKey:       authKey,
		AdvertiseTags: cfg.Tags,
		Ephemeral:     cfg.Ephemeral,
		UserLogf:      func(format string, args ...any) { log.Infof("node: "+format, args...) },
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start tailnet node %s: %w", cfg.Hostname, err)
	}
	lc, err := srv.LocalClient()
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("tailnet node %s: %w", cfg.Hostname, err)
	}
	return &Node{srv: srv, lc: lc}, nil
}

func (n *Node) close() { n.srv.Close() }

// LocalClient returns the node's LocalAPI client.
func (n *Node) LocalClient() *local.Client { return n.lc }

// Listen listens on addr in the node's network stack.
func (n *Node) Listen(network, addr string) (net.Listener, error) {
	return n.srv.Listen(network, addr)
}

// ListenPacket listens on addr in the node's network stack.
func (n *Node) ListenPacket(network, addr string) (net.PacketConn, error) {
	return n.srv.ListenPacket(network, addr)
}
