// Package localtailnet runs a real tailnet on loopback, in-process: a
// testcontrol server, one DERP and STUN region on 127.0.0.1, and tsnet
// nodes whose LocalAPI can be served on a unix socket as tailscaled's
// would be. The end-to-end tests (test/tailnettest) and the demo world
// (cmd/demo) are built on it.
//
// Tailscale needs one non-loopback address to come up, so run it in a
// network namespace of its own with only lo up and an address from
// 198.18.0.0/15 on lo: then nothing but loopback is routable and no traffic
// can leave the machine. Call Quiet first, which turns off log upload and
// the port mapper.
package localtailnet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"tailscale.com/derp/derpserver"
	"tailscale.com/envknob"
	"tailscale.com/net/netns"
	"tailscale.com/net/stunserver"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
)

// Domain is the MagicDNS suffix: peers are named "<host>.tail-scale.ts.net.".
const Domain = "tail-scale.ts.net"

// loopback is where control, DERP and STUN listen.
const loopback = "127.0.0.1"

// Quiet sets what every tailscale node in this process must run with: no
// log upload (logs go to logsDir), no port mapper, no UPnP, a panic if
// anything dials Tailscale's own control server, and no binding of sockets
// to a default route's interface (there is none in the namespace).
func Quiet(logsDir string) {
	// envknob.Setenv also updates knobs registered (and read) at init time.
	for k, v := range map[string]string{
		"TS_NO_LOGS_NO_SUPPORT":        "true",
		"TS_DISABLE_PORTMAPPER":        "true",
		"TS_DISABLE_UPNP":              "true",
		"TS_PANIC_IF_HIT_MAIN_CONTROL": "true",
		"TS_LOGS_DIR":                  logsDir,
	} {
		envknob.Setenv(k, v)
	}
	netns.SetEnabled(false)
}

// Tailnet is a control server with one local DERP region.
type Tailnet struct {
	// Control is the coordination server. Nodes are Online exactly while
	// they hold a streaming map poll open, or while pinned (PinOnline).
	Control *testcontrol.Server

	logf    logger.Logf
	closers []func() // run in reverse by Close

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
	// goroutine that runs the tailnet uses it.
	controlLn *connListener
}

// Start starts control, DERP and STUN on 127.0.0.1. Close stops them.
func Start(logf logger.Logf) (_ *Tailnet, err error) {
	tn := &Tailnet{logf: logf, polls: map[key.NodePublic]int{}}
	defer func() {
		if err != nil {
			tn.Close()
		}
	}()
	derpMap, err := tn.startDERP()
	if err != nil {
		return nil, err
	}
	tn.Control = &testcontrol.Server{
		DERPMap:          derpMap,
		DNSConfig:        &tailcfg.DNSConfig{Proxied: true},
		MagicDNSDomain:   Domain,
		AllNodesSameUser: true,
		// Non-nil so nodes get the tags they advertise at registration.
		TagOwners:      map[string][]string{},
		HoldMapRequest: tn.holdMapRequest,
		Logf:           logger.WithPrefix(logf, "control: "),
	}
	srv, err := serveHTTP(tn.Control, logf)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	tn.controlLn = &connListener{Listener: srv.Listener}
	srv.Listener = tn.controlLn
	tn.Control.HTTPTestServer = srv
	srv.Start()
	tn.closers = append(tn.closers, func() {
		srv.Close()
		tn.controlLn.closeAll() // the one StartControl made, if it did
	})
	return tn, nil
}

// startDERP serves one DERP node and a STUN server on 127.0.0.1 and
// returns the map that points at them, and only at them.
func (tn *Tailnet) startDERP() (*tailcfg.DERPMap, error) {
	d := derpserver.New(key.NewNode(), logger.WithPrefix(tn.logf, "derp: "))
	tn.closers = append(tn.closers, func() { d.Close() })
	srv, err := serveHTTP(derpserver.Handler(d), tn.logf)
	if err != nil {
		return nil, fmt.Errorf("derp: %w", err)
	}
	srv.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	srv.StartTLS()
	tn.closers = append(tn.closers, srv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	tn.closers = append(tn.closers, cancel)
	stun := stunserver.New(ctx)
	if err := stun.Listen(net.JoinHostPort(loopback, "0")); err != nil {
		return nil, fmt.Errorf("stun: %w", err)
	}
	go stun.Serve() // returns when ctx ends
	return &tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{
		1: {RegionID: 1, RegionCode: "local", Nodes: []*tailcfg.DERPNode{{
			Name:             "local1",
			RegionID:         1,
			HostName:         loopback,
			IPv4:             loopback,
			IPv6:             "none",
			STUNPort:         stun.LocalAddr().(*net.UDPAddr).Port,
			DERPPort:         srv.Listener.Addr().(*net.TCPAddr).Port,
			InsecureForTests: true,
			STUNTestIP:       loopback,
		}}},
	}}, nil
}

// serveHTTP returns an unstarted server for h on a free port of 127.0.0.1.
func serveHTTP(h http.Handler, logf logger.Logf) (*httptest.Server, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		return nil, err
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ErrorLog = logger.StdLogger(logf)
	return srv, nil
}

// Close stops every node, then control, DERP and STUN.
func (tn *Tailnet) Close() {
	tn.nodesMu.Lock()
	nodes := tn.nodes
	tn.nodesMu.Unlock()
	for _, n := range nodes {
		n.Close()
	}
	for i := len(tn.closers) - 1; i >= 0; i-- {
		tn.closers[i]()
	}
	tn.closers = nil
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
// tn.mu must be held.
func (tn *Tailnet) setOnlineLocked(k key.NodePublic, online bool) {
	n := tn.Control.Node(k)
	if n == nil || tn.stopped {
		return // not registered (yet), gone, or control is down
	}
	n.Online = new(online)
	if !online {
		n.LastSeen = new(time.Now())
	}
	tn.Control.UpdateNode(n)
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
// netmap and retry in the background; DERP stays up.
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
	go srv.Config.Serve(tn.controlLn) // until Close closes it
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
