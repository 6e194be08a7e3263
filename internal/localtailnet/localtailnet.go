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
	mu     sync.RWMutex
	polls  map[key.NodePublic]int  // open streaming polls per node; guarded by mu
	pinned map[key.NodePublic]bool // nodes that stay Online when they go; guarded by mu

	nodesMu sync.Mutex
	nodes   []*Node // added by AddNode, including closed ones; guarded by nodesMu
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
	tn.Control.HTTPTestServer = srv
	srv.Start()
	tn.closers = append(tn.closers, srv.Close)
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

// setOnlineLocked records k's online state in control, which pushes a new
// map to every peer. tn.mu must be held.
func (tn *Tailnet) setOnlineLocked(k key.NodePublic, online bool) {
	n := tn.Control.Node(k)
	if n == nil {
		return // not registered (yet) or gone
	}
	n.Online = new(online)
	if !online {
		n.LastSeen = new(time.Now())
	}
	tn.Control.UpdateNode(n)
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
