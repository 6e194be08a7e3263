package tailnet

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"tailscale.com/client/local"
	"tailscale.com/tsnet"
)

// nodeConfig is the tailnet node the plugin runs itself, with tsnet,
// instead of asking tailscaled: for containers and machines without
// tailscaled. The auth key never appears in the Corefile.
type nodeConfig struct {
	hostname    string   // the node's name on the tailnet
	stateDir    string   // where the node keeps its keys and state; required
	controlURL  string   // "" is Tailscale's; headscale's URL works too
	authKeyFile string   // a file holding the auth key; read at start-up
	authKeyEnv  string   // else the environment variable holding it
	tags        []string // ACL tags to advertise, "tag:" included
	ephemeral   bool     // the node goes away when it stops
}

// key names the node in the watcher registry and the metrics' socket label.
func (c *nodeConfig) key() string { return "tsnet:" + c.stateDir }

// embedded is a running node, shared by every instance with the same state
// directory and kept across reloads while one uses it.
type embedded struct {
	srv  *tsnet.Server
	lc   *local.Client
	refs int
}

var nodes = struct {
	sync.Mutex
	m map[string]*embedded // by state directory
}{m: map[string]*embedded{}}

// startNode returns the running node for cfg, starting it if needed. It
// does not wait for the node to log in: the watch sees it come up.
func startNode(cfg *nodeConfig) (*embedded, error) {
	nodes.Lock()
	defer nodes.Unlock()
	if n := nodes.m[cfg.stateDir]; n != nil {
		n.refs++
		return n, nil
	}
	authKey, err := cfg.authKey()
	if err != nil {
		return nil, err
	}
	srv := &tsnet.Server{
		Hostname:      cfg.hostname,
		Dir:           cfg.stateDir,
		ControlURL:    cfg.controlURL,
		AuthKey:       authKey,
		AdvertiseTags: cfg.tags,
		Ephemeral:     cfg.ephemeral,
		UserLogf:      func(format string, args ...any) { log.Infof("node: "+format, args...) },
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start tailnet node %s: %w", cfg.hostname, err)
	}
	lc, err := srv.LocalClient()
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("tailnet node %s: %w", cfg.hostname, err)
	}
	n := &embedded{srv: srv, lc: lc, refs: 1}
	nodes.m[cfg.stateDir] = n
	return n, nil
}

// stopNode releases the node of cfg and stops it when nobody uses it.
func stopNode(cfg *nodeConfig) {
	nodes.Lock()
	n := nodes.m[cfg.stateDir]
	if n == nil {
		nodes.Unlock()
		return
	}
	n.refs--
	last := n.refs == 0
	if last {
		delete(nodes.m, cfg.stateDir)
	}
	nodes.Unlock()
	if last {
		n.srv.Close()
	}
}

// authKey reads the auth key from its file, or from the environment.
func (c *nodeConfig) authKey() (string, error) {
	if c.authKeyFile != "" {
		b, err := os.ReadFile(c.authKeyFile)
		if err != nil {
			return "", fmt.Errorf("read auth key: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return os.Getenv(c.authKeyEnv), nil
}
