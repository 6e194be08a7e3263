// Package embedded runs the tailnet node that the tailnet plugin can bring
// itself, with tsnet, instead of asking tailscaled: for containers and
// machines without tailscaled. Instances with the same state directory
// share one node, kept across reloads while one uses it.
//
// Built with the tag tailhorizon_nonode, the binary leaves tsnet (and its
// gVisor network stack and WireGuard) out, and Start fails.
package embedded

import (
	"fmt"
	"os"
	"strings"
	"sync"

	clog "github.com/coredns/coredns/plugin/pkg/log"
)

var log = clog.NewWithPlugin("tailnet")

// Config is the node to run. The auth key never appears in the Corefile.
type Config struct {
	Hostname    string   // the node's name on the tailnet
	StateDir    string   // where the node keeps its keys and state; required
	ControlURL  string   // "" is Tailscale's; headscale's URL works too
	AuthKeyFile string   // a file holding the auth key; read at start-up
	AuthKeyEnv  string   // else the environment variable holding it
	Tags        []string // ACL tags to advertise, "tag:" included
	Ephemeral   bool     // the node goes away when it stops
}

// Key names the node among the watch's LocalAPIs, and in the metrics'
// socket label.
func (c *Config) Key() string { return "tsnet:" + c.StateDir }

// authKey reads the auth key from its file, or from the environment.
func (c *Config) authKey() (string, error) {
	if c.AuthKeyFile != "" {
		b, err := os.ReadFile(c.AuthKeyFile)
		if err != nil {
			return "", fmt.Errorf("read auth key: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return os.Getenv(c.AuthKeyEnv), nil
}

// running holds the running nodes by state directory.
var running = struct {
	sync.Mutex
	m map[string]*Node
}{m: map[string]*Node{}}

// Start returns the running node for cfg, starting it if needed. It does
// not wait for the node to log in: the watch sees it come up. Each Start
// is matched by one Release.
func Start(cfg *Config) (*Node, error) {
	running.Lock()
	defer running.Unlock()
	if n := running.m[cfg.StateDir]; n != nil {
		n.refs++
		return n, nil
	}
	authKey, err := cfg.authKey()
	if err != nil {
		return nil, err
	}
	n, err := start(cfg, authKey)
	if err != nil {
		return nil, err
	}
	n.dir, n.refs = cfg.StateDir, 1
	running.m[cfg.StateDir] = n
	return n, nil
}

// Release lets the node go, and stops it when nobody uses it.
func (n *Node) Release() {
	running.Lock()
	n.refs--
	last := n.refs == 0
	if last {
		delete(running.m, n.dir)
	}
	running.Unlock()
	if last {
		n.close()
	}
}
