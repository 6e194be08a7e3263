package tailnettest

import (
	"context"
	"net"
	"testing"
	"time"

	"tailscale.com/client/local"

	"github.com/tailhorizon/tailhorizon/cmd/demo/localtailnet"
)

// Domain is the MagicDNS suffix: peers are named "<host>.tail-scale.ts.net.".
const Domain = localtailnet.Domain

// upTimeout bounds bringing one node up, including its home DERP connection.
const upTimeout = 30 * time.Second

// Tailnet is a control server with one local DERP region
// (localtailnet.Tailnet), stopped when the test ends.
type Tailnet struct {
	*localtailnet.Tailnet
}

// Start starts control, DERP and STUN on 127.0.0.1. Everything is shut
// down by t.Cleanup. It skips t unless Require passes.
func Start(t testing.TB) *Tailnet {
	t.Helper()
	Require(t)
	tn, err := localtailnet.Start(logf(""))
	if err != nil {
		t.Fatalf("start tailnet: %v", err)
	}
	t.Cleanup(tn.Close)
	return &Tailnet{tn}
}

// Node is one tsnet node on the tailnet.
type Node struct {
	*localtailnet.Node
}

// AddNode starts a node advertising tags (e.g. "tag:registry") and waits
// until it and every open node see each other online with a home DERP, so
// pings work at once. t.Cleanup closes it.
func (tn *Tailnet) AddNode(t testing.TB, hostname string, tags ...string) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), upTimeout)
	defer cancel()
	n, err := tn.Tailnet.AddNode(ctx, t.TempDir(), hostname, tags...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Close)
	return &Node{n}
}

// PinOnline makes control keep reporting n as online after it goes, as
// control does for a while with a machine that lost power: its peers
// still see it online but can no longer reach it.
func (tn *Tailnet) PinOnline(n *Node) { tn.Tailnet.PinOnline(n.Node) }

// SetOnline makes control report n to its peers as online or offline,
// while n itself stays connected: a flap that costs one map push and no
// reconnect.
func (tn *Tailnet) SetOnline(n *Node, online bool) { tn.Tailnet.SetOnline(n.Node, online) }

// LocalClient is a LocalAPI client of the unix socket at path that dials
// it directly: tailscale's own dialer retries a failed dial for up to 5 s
// whenever a process named tailscaled runs on the machine.
func LocalClient(path string) *local.Client {
	return &local.Client{Socket: path, UseSocketOnly: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
}
