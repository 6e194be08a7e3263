package localtailnet

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"tailscale.com/client/local"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
)

// Node is one tsnet node on the tailnet.
type Node struct {
	Server     *tsnet.Server
	Hostname   string         // as registered; the DNS name is Hostname+"."+Domain+"."
	ID         tailcfg.NodeID // control's ID, as in Notify.PeerChangedPatch
	Key        key.NodePublic
	IPv4, IPv6 netip.Addr // assigned by control in registration order
	Tags       []string

	dir    string // its state, on disk, so that a restarted node has the same key and addresses
	closed atomic.Bool
}

// AddNode starts a node advertising tags (e.g. "tag:registry"),
// with its state under dir, and waits until it and every open node see
// each other online with a home DERP, so pings work at once.
func (tn *Tailnet) AddNode(ctx context.Context, dir, hostname string, tags ...string) (*Node, error) {
	n := &Node{Hostname: hostname, Tags: tags, dir: filepath.Join(dir, hostname)}
	tn.nodesMu.Lock()
	tn.nodes = append(tn.nodes, n)
	tn.nodesMu.Unlock()
	if err := tn.up(ctx, n); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Restart brings a closed node back with the same key, so with the same
// addresses. A LocalAPI served for it must be served again. It must not
// run concurrently with AddNode or another Restart.
func (tn *Tailnet) Restart(ctx context.Context, n *Node) error {
	n.Close()
	return tn.up(ctx, n)
}

// up starts n's tsnet server and waits for the tailnet to converge.
func (tn *Tailnet) up(ctx context.Context, n *Node) error {
	logf := logger.WithPrefix(tn.logf, n.Hostname+": ")
	s := &tsnet.Server{
		Dir:           n.dir,
		ControlURL:    tn.Control.BaseURL(),
		Hostname:      n.Hostname,
		AdvertiseTags: n.Tags,
		Logf:          logf,
		UserLogf:      logf,
	}
	n.Server = s
	n.closed.Store(false)
	st, err := s.Up(ctx)
	if err != nil {
		return fmt.Errorf("bring up %s: %w", n.Hostname, err)
	}
	if err := waitHomeDERP(ctx, s); err != nil {
		return fmt.Errorf("%s: %w", n.Hostname, err)
	}
	n.Key = st.Self.PublicKey
	for _, ip := range st.TailscaleIPs {
		if ip.Is4() {
			n.IPv4 = ip
		} else {
			n.IPv6 = ip
		}
	}
	if cn := tn.Control.Node(n.Key); cn != nil {
		n.ID = cn.ID
	}
	if err := tn.waitConverged(ctx); err != nil {
		return fmt.Errorf("add %s: %w", n.Hostname, err)
	}
	return nil
}

// waitConverged waits until every open node sees every other one online
// with a home DERP. A disco ping sent before that is silently dropped and
// hangs until its ctx ends.
func (tn *Tailnet) waitConverged(ctx context.Context) error {
	for {
		err := tn.converged(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for peers: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// converged returns nil if every open node sees all others online with a
// home DERP, else what is still missing.
func (tn *Tailnet) converged(ctx context.Context) error {
	tn.nodesMu.Lock()
	nodes := slices.DeleteFunc(slices.Clone(tn.nodes), func(n *Node) bool { return n.closed.Load() })
	tn.nodesMu.Unlock()
	for _, n := range nodes {
		st, err := n.LocalClient().Status(ctx)
		if err != nil {
			return fmt.Errorf("status of %s: %w", n.Hostname, err)
		}
		for _, m := range nodes {
			if p := st.Peer[m.Key]; m != n && (p == nil || !p.Online || p.Relay == "") {
				return fmt.Errorf("%s does not see %s online with a home derp", n.Hostname, m.Hostname)
			}
		}
	}
	return nil
}

// waitHomeDERP waits until s has picked a home DERP region and heard from
// it; until then DERP drops disco frames for s (tsnet_test.go
// waitForHomeDERPConnected).
func waitHomeDERP(ctx context.Context, s *tsnet.Server) error {
	h := s.Sys().HealthTracker.Get()
	ms := s.Sys().MagicSock.Get()
	for {
		if r := ms.GetLastNetcheckReport(ctx); r != nil && r.PreferredDERP != 0 &&
			!h.GetDERPRegionReceivedTime(r.PreferredDERP).IsZero() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for home derp: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close stops the node. Its map poll ends, so peers see it go offline.
// It is safe to call more than once.
func (n *Node) Close() {
	if n.closed.Swap(true) || n.Server == nil {
		return
	}
	n.Server.Close()
}

// Closed reports whether the node is closed.
func (n *Node) Closed() bool { return n.closed.Load() }

// LocalClient returns a client for the node's in-memory LocalAPI.
func (n *Node) LocalClient() *local.Client {
	lc, err := n.Server.LocalClient()
	if err != nil {
		panic(err) // unreachable: the node was started by AddNode
	}
	return lc
}
