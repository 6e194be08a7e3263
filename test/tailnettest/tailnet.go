package tailnettest

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tailscale.com/client/local"
	"tailscale.com/ipn/store/mem"
	"tailscale.com/net/netns"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"
	"tailscale.com/tstest/integration"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"
)

// Domain is the MagicDNS suffix: peers are named "<host>.tail-scale.ts.net.".
const Domain = "tail-scale.ts.net"

// upTimeout bounds bringing one node up, including its home DERP connection.
const upTimeout = 30 * time.Second

// Tailnet is a control server with one local DERP region.
type Tailnet struct {
	// Control is the coordination server. Nodes are Online exactly while
	// they hold a streaming map poll open.
	Control *testcontrol.Server

	// mu serialises online flips, which write back a whole stored node,
	// against non-streaming map requests, which edit the stored node
	// (endpoints, disco key, hostinfo); without it a flip could undo them.
	mu      sync.RWMutex
	polls   map[key.NodePublic]int  // open streaming polls per node; guarded by mu
	pinned  map[key.NodePublic]bool // nodes that stay Online when they go; guarded by mu
	stopped bool                    // StopControl was called: no more online flips; guarded by mu

	nodesMu sync.Mutex
	nodes   []*Node // added by AddNode, including closed ones; guarded by nodesMu

	// controlLn is control's listener, replaced by StartControl. Only the
	// test's goroutine uses it.
	controlLn *connListener
}

// Start starts control, DERP and STUN on 127.0.0.1. Everything is shut
// down by t.Cleanup. It skips t unless Require passes.
func Start(t testing.TB) *Tailnet {
	t.Helper()
	Require(t)
	netns.SetEnabled(false)
	tn := &Tailnet{polls: map[key.NodePublic]int{}}
	tn.Control = &testcontrol.Server{
		DERPMap:          integration.RunDERPAndSTUN(t, logf("derp"), "127.0.0.1"),
		DNSConfig:        &tailcfg.DNSConfig{Proxied: true},
		MagicDNSDomain:   Domain,
		AllNodesSameUser: true,
		// Non-nil so nodes get the tags they advertise at registration.
		TagOwners:      map[string][]string{},
		HoldMapRequest: tn.holdMapRequest,
		Logf:           logf("control"),
	}
	srv := httptest.NewUnstartedServer(tn.Control)
	srv.Listener.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for control: %v", err)
	}
	tn.controlLn = &connListener{Listener: ln}
	srv.Listener = tn.controlLn
	srv.Config.ErrorLog = stdLogger("control")
	tn.Control.HTTPTestServer = srv
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		tn.controlLn.closeAll() // the one StartControl made, if it did
	})
	return tn
}

// holdMapRequest implements testcontrol.Server.HoldMapRequest: a streaming
// poll marks its node online until the poll ends, as production control does.
func (tn *Tailnet) holdMapRequest(req *tailcfg.MapRequest) (done func()) {
	if !req.Stream || req.ReadOnly {
		tn.mu.RLock()
		return tn.mu.RUnlock
	}
	tn.addPoll(req.NodeKey, 1)
	return func() { tn.addPoll(req.NodeKey, -1) }
}

// addPoll counts a streaming poll opening (+1) or ending (-1) and flips
// Online when the count leaves or reaches zero, so overlapping polls
// (a new poll replacing an old one) don't flap.
func (tn *Tailnet) addPoll(k key.NodePublic, delta int) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	before := tn.polls[k]
	tn.polls[k] = before + delta
	if before > 0 && before+delta > 0 {
		return
	}
	online := before+delta > 0
	if !online && tn.pinned[k] {
		return
	}
	tn.setOnlineLocked(k, online)
}

// setOnlineLocked stores node k's Online flag at control and pushes a new
// map to every peer. A stopped control server tells nobody anything.
// tn.mu is held.
func (tn *Tailnet) setOnlineLocked(k key.NodePublic, online bool) {
	n := tn.Control.Node(k)
	if n == nil || tn.stopped {
		return // not registered (yet), gone, or control is down
	}
	n.Online = new(online)
	if !online {
		n.LastSeen = new(time.Now())
	}
	tn.Control.UpdateNode(n) // pushes a new map to every peer
}

// SetOnline makes control report n to its peers as online or offline,
// while n itself stays connected: a flap that costs one map push and no
// reconnect. n's own poll ending or starting later overrides it.
func (tn *Tailnet) SetOnline(n *Node, online bool) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	tn.setOnlineLocked(n.Key, online)
}

// StopControl makes the control server vanish as a crashed one does: it
// stops accepting and drops every connection, map polls included, and
// tells no node that the others went offline. Nodes keep their last
// netmap and retry in the background; DERP stays up. Call StartControl
// before the test ends: an ephemeral node that cannot log out on Close
// waits 5s for control.
func (tn *Tailnet) StopControl() {
	tn.mu.Lock()
	tn.stopped = true
	tn.mu.Unlock()
	tn.controlLn.closeAll()
}

// StartControl brings control back on its address after StopControl, as a
// restarted server that kept its database: nodes reconnect with their keys
// and get full netmaps again.
func (tn *Tailnet) StartControl() error {
	srv := tn.Control.HTTPTestServer
	ln, err := net.Listen("tcp", srv.Listener.Addr().String())
	if err != nil {
		return fmt.Errorf("listen for control again: %w", err)
	}
	tn.mu.Lock()
	tn.stopped = false
	tn.mu.Unlock()
	tn.controlLn = &connListener{Listener: ln}
	go srv.Config.Serve(tn.controlLn) // until Start's cleanup closes it
	return nil
}

// connListener remembers the connections it accepts, so that StopControl
// can close them all: httptest.Server closes only those it still tracks,
// and control's Noise connections are hijacked from it.
type connListener struct {
	net.Listener

	mu     sync.Mutex
	conns  []net.Conn // accepted ones, open or not; guarded by mu
	closed bool       // closeAll was called; guarded by mu
}

func (l *connListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed { // accepted just as closeAll ran
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns = append(l.conns, c)
	return c, nil
}

// closeAll closes the listener and every connection it accepted.
func (l *connListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.Listener.Close()
	for _, c := range l.conns {
		c.Close()
	}
}

// PinOnline makes control keep reporting n as online after it goes, as
// control does for a while with a machine that lost power: its peers
// still see it online but can no longer reach it.
func (tn *Tailnet) PinOnline(n *Node) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if tn.pinned == nil {
		tn.pinned = map[key.NodePublic]bool{}
	}
	tn.pinned[n.Key] = true
}

// Node is one tsnet node on the tailnet.
type Node struct {
	Server     *tsnet.Server
	Hostname   string         // as registered; the DNS name is Hostname+"."+Domain+"."
	ID         tailcfg.NodeID // control's ID, as in Notify.PeerChangedPatch
	Key        key.NodePublic
	IPv4, IPv6 netip.Addr // assigned by control in registration order

	closed atomic.Bool
}

// AddNode starts an ephemeral node advertising tags (e.g. "tag:registry")
// and waits until it and every open node see each other online with a home
// DERP, so pings work at once. t.Cleanup closes it.
func (tn *Tailnet) AddNode(t testing.TB, hostname string, tags ...string) *Node {
	t.Helper()
	s := &tsnet.Server{
		Dir:           filepath.Join(t.TempDir(), hostname),
		ControlURL:    tn.Control.BaseURL(),
		Hostname:      hostname,
		Store:         new(mem.Store),
		Ephemeral:     true,
		AdvertiseTags: tags,
		Logf:          logf(hostname),
		UserLogf:      logf(hostname),
	}
	n := &Node{Server: s, Hostname: hostname}
	t.Cleanup(n.Close)
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	st, err := s.Up(ctx)
	if err != nil {
		t.Fatalf("bring up %s: %v", hostname, err)
	}
	if err := waitHomeDERP(ctx, s); err != nil {
		t.Fatalf("%s: %v", hostname, err)
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
	tn.nodesMu.Lock()
	tn.nodes = append(tn.nodes, n)
	tn.nodesMu.Unlock()
	if err := tn.waitConverged(ctx); err != nil {
		t.Fatalf("add %s: %v", hostname, err)
	}
	return n
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
	n.closed.Store(true)
	n.Server.Close() // only reports an error when already closed
}

// LocalClient returns a client for the node's in-memory LocalAPI.
func (n *Node) LocalClient() *local.Client {
	lc, err := n.Server.LocalClient()
	if err != nil {
		panic(err) // unreachable: the node is started by AddNode
	}
	return lc
}
