package realnet

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tailscale.com/ipn/ipnstate"

	"github.com/tailhorizon/tailhorizon/test/lantest"
)

// userspace is the --tun value for tailscaled without a TUN device.
const userspace = "userspace-networking"

// Node is a real tailscaled in a namespace of its own on the LAN, logged in
// to the Net's headscale.
type Node struct {
	Name    string        // the hostname it logged in with
	Version string        // its tailscale version, e.g. "v1.86.5"
	Host    *lantest.Host // its namespace; Host.Netns names it
	TUN     string        // its TUN device in Host, or "userspace-networking"

	owner  testing.TB // AddNode's: the daemon lives as long as it, whichever test restarts it
	bin    TailscaleBinaries
	dir    string // --statedir
	socket string // LocalAPI socket, in dir
	env    []string
	upArgs []string // the flags of tailscale up, the same every time

	mu     sync.Mutex
	daemon *lantest.Process // nil after Kill
	id     uint64
	ipv4   netip.Addr
	ipv6   netip.Addr
}

// AddNode starts tailscaled at version (TailscaleNew, TailscaleOld, or any
// version build.sh built) in a new namespace on the LAN, logs it in as
// hostname with the Net's pre-auth key and waits until it is Running with
// its tailnet addresses. t.Cleanup stops it and removes its namespace and
// state. If the namespace cannot have a TUN device, the node runs with
// userspace networking, and t.Log says so.
func (n *Net) AddNode(t testing.TB, hostname, version string) *Node {
	t.Helper()
	bin := Tailscale(t, version)
	dir := tempDir(t, hostname)
	host := addHost(t, n.LAN)
	node := &Node{
		Name:    hostname,
		Version: version,
		Host:    host,
		TUN:     fmt.Sprintf("tht%d-%d", os.Getpid(), seq.Add(1)),
		owner:   t,
		bin:     bin,
		dir:     dir,
		socket:  filepath.Join(dir, "tailscaled.sock"),
		env: append([]string{
			"SSL_CERT_FILE=" + n.CAFile, // trust headscale's throwaway CA
			"TS_NO_LOGS_NO_SUPPORT=true",
			"TS_LOGS_DIR=" + dir,
			"TS_DISABLE_PORTMAPPER=true", // no UPnP, NAT-PMP or PCP probes of a gateway
			"TS_DISABLE_UPNP=true",
		}, quietEnv...),
		upArgs: []string{
			"--login-server=" + n.URL,
			"--auth-key=" + n.AuthKey,
			"--hostname=" + hostname,
			"--accept-dns=false",
			"--accept-routes=false",
			"--netfilter-mode=off",
			"--timeout=" + upCLITimeout.String(),
		},
	}
	if len(node.TUN) > 15 { // IFNAMSIZ-1
		node.TUN = node.TUN[:15]
	}
	// Try the TUN device first, so that the node falls back to userspace
	// networking only if the namespace cannot have one.
	if _, _, err := command(host, nil, "ip", "tuntap", "add", "dev", node.TUN, "mode", "tun"); err != nil {
		t.Logf("realnet: %s: no TUN device in %s, so userspace networking: %v", hostname, host.Netns, err)
		node.TUN = userspace
	} else if _, _, err := command(host, nil, "ip", "link", "del", node.TUN); err != nil {
		t.Fatal(err)
	}
	node.startDaemon(t)
	node.Up(t)
	requireNoRouteOut(t, host) // nor after tailscaled has set up its routes
	return node
}

// Socket returns the path of the node's LocalAPI unix socket. It is a file
// in a directory of the test's, so this process can dial it although
// tailscaled runs in another namespace.
func (n *Node) Socket() string { return n.socket }

// ID returns headscale's numeric id of the node, as in "headscale nodes
// list", and the node's tailcfg.StableNodeID in decimal.
func (n *Node) ID() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.id
}

// IPv4 returns the node's tailnet IPv4 address, as of when it last came up.
func (n *Node) IPv4() netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ipv4
}

// IPv6 returns the node's tailnet IPv6 address, as of when it last came up.
func (n *Node) IPv6() netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ipv6
}

// Tailscale runs the node's tailscale CLI with args against its socket,
// in its namespace, and returns what it printed. The error, if the command
// failed or timed out, includes the output.
func (n *Node) Tailscale(t testing.TB, args ...string) (string, error) {
	t.Helper()
	stdout, stderr, err := command(n.Host, n.env, append([]string{n.bin.CLI, "--socket=" + n.socket}, args...)...)
	return stdout + stderr, err
}

// Status returns what "tailscale status --json" says, and fails t if the
// command fails.
func (n *Node) Status(t testing.TB) *ipnstate.Status {
	t.Helper()
	st, err := n.status()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// status runs "tailscale status --json" and decodes it. Its stdout alone
// is JSON; warnings go to stderr.
func (n *Node) status() (*ipnstate.Status, error) {
	stdout, _, err := command(n.Host, n.env, n.bin.CLI, "--socket="+n.socket, "status", "--json")
	if err != nil {
		return nil, err
	}
	st := new(ipnstate.Status)
	if err := json.Unmarshal([]byte(stdout), st); err != nil {
		return nil, fmt.Errorf("%s: decode tailscale status --json: %w", n.Name, err)
	}
	return st, nil
}

// Kill kills tailscaled with SIGKILL: a crash, with no clean shutdown.
// The kernel closes its sockets, so headscale sees its connection drop at
// once (and lists it offline some 10 s later), and removes its TUN device.
func (n *Node) Kill(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.daemon == nil {
		t.Fatalf("realnet: Kill %s: tailscaled is not running", n.Name)
	}
	n.daemon.Kill()
	select {
	case <-n.daemon.Exited():
	default:
		t.Fatalf("tailscaled of %s (pid %d) did not exit after SIGKILL", n.Name, n.daemon.Pid())
	}
	n.daemon = nil
}

// Restart starts tailscaled again on the same state directory, stopping it
// first (SIGTERM) if it runs, and waits until it is Running: it comes back
// with the same keys, node and addresses, without logging in again.
func (n *Node) Restart(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	if n.daemon != nil {
		n.daemon.Stop()
		n.daemon = nil
	}
	n.mu.Unlock()
	n.startDaemon(t)
	n.waitRunning(t)
}

// PowerOff takes the node's link down at both ends: its tailscaled keeps
// running but nothing reaches it or leaves it, and no FIN or RST tells
// control or peers that it went. headscale goes on listing it online until
// TCP gives up on the connection, which takes many minutes, so its peers
// see it online but get no reply.
func (n *Node) PowerOff(t testing.TB) {
	t.Helper()
	n.Host.Unplug(t)
}

// PowerOn brings the node's link up again after PowerOff. Its tailscaled
// finds its way back by itself; wait for that with WaitPeer.
func (n *Node) PowerOn(t testing.TB) {
	t.Helper()
	n.Host.Plug(t)
}

// Down runs "tailscale down": the node disconnects from control and its
// peers, and stays logged in.
func (n *Node) Down(t testing.TB) {
	t.Helper()
	if _, err := n.Tailscale(t, "down"); err != nil {
		t.Fatal(err)
	}
}

// Up runs "tailscale up" with the flags AddNode used and waits until the
// node is Running.
func (n *Node) Up(t testing.TB) {
	t.Helper()
	if _, err := n.Tailscale(t, append([]string{"up"}, n.upArgs...)...); err != nil {
		t.Fatal(err)
	}
	n.waitRunning(t)
}

// startDaemon starts tailscaled and waits until its LocalAPI answers.
//
// unshare -m and a tmpfs on /run give tailscaled a /run of its own: it
// cannot reach the machine's D-Bus (to ping systemd-resolved or
// NetworkManager), a real tailscaled's /run/tailscale, or anything else
// there. ip netns exec has already made a private mount namespace, with
// /etc/resolv.conf from isolateDNS.
func (n *Node) startDaemon(t testing.TB) {
	t.Helper()
	args := []string{
		"unshare", "-m", "sh", "-c", `mount -t tmpfs tmpfs /run && exec "$0" "$@"`,
		n.bin.Daemon,
		"--tun=" + n.TUN,
		"--statedir=" + n.dir,
		"--socket=" + n.socket,
		"--port=41641",
		"--no-logs-no-support",
	}
	// 1.102 encrypts state with the machine's TPM by default if it has
	// one, and may bind keys to it; the rig's nodes are throwaway and must
	// not touch the machine's hardware.
	for _, f := range []string{"encrypt-state", "hardware-attestation"} {
		if n.daemonHasFlag(t, f) {
			args = append(args, "--"+f+"=false")
		}
	}
	p := n.Host.Start(n.owner, n.env, args...)
	ok := poll(upTimeout, func() bool {
		select {
		case <-p.Exited():
			return true
		default:
		}
		_, err := n.status()
		return err == nil
	})
	select {
	case <-p.Exited():
		t.Fatalf("tailscaled of %s exited at start:\n%s", n.Name, p.Tail(50))
	default:
	}
	if !ok {
		t.Fatalf("tailscaled of %s: no LocalAPI on %s within %v:\n%s", n.Name, n.socket, upTimeout, p.Tail(50))
	}
	n.mu.Lock()
	n.daemon = p
	n.mu.Unlock()
}

// waitRunning waits until the node's BackendState is Running and it has
// its tailnet addresses, then records them and its id.
func (n *Node) waitRunning(t testing.TB) {
	t.Helper()
	var st *ipnstate.Status
	var err error
	ok := poll(upTimeout, func() bool {
		st, err = n.status()
		return err == nil && st.BackendState == "Running" && st.Self != nil && len(st.TailscaleIPs) > 0
	})
	if !ok {
		state := "no status"
		if st != nil {
			state = fmt.Sprintf("BackendState %s, addresses %v", st.BackendState, st.TailscaleIPs)
		}
		t.Fatalf("%s not Running with addresses within %v (%s, last error %v)", n.Name, upTimeout, state, err)
	}
	id, err := strconv.ParseUint(string(st.Self.ID), 10, 64)
	if err != nil {
		t.Fatalf("%s: headscale node id %q: %v", n.Name, st.Self.ID, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.id = id
	for _, a := range st.TailscaleIPs {
		if a.Is4() {
			n.ipv4 = a
		} else {
			n.ipv6 = a
		}
	}
}

// flagHelp caches each tailscaled binary's -h output.
var flagHelp sync.Map // binary path -> string

// daemonHasFlag reports whether the node's tailscaled has the flag name.
func (n *Node) daemonHasFlag(t testing.TB, name string) bool {
	t.Helper()
	help, ok := flagHelp.Load(n.bin.Daemon)
	if !ok {
		// -h prints the flags and exits with status 0 or 2, depending on
		// the version: only the output matters.
		stdout, stderr, _ := command(n.Host, n.env, n.bin.Daemon, "-h")
		if !strings.Contains(stdout+stderr, "-statedir") {
			t.Fatalf("%s -h printed no flags:\n%s%s", n.bin.Daemon, stdout, stderr)
		}
		help, _ = flagHelp.LoadOrStore(n.bin.Daemon, stdout+stderr)
	}
	return regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(name) + `(\s|$)`).MatchString(help.(string))
}

// Online reports whether a peer is there and online.
func Online(ps *ipnstate.PeerStatus) bool { return ps != nil && ps.Online }

// Offline reports whether a peer is there and offline.
func Offline(ps *ipnstate.PeerStatus) bool { return ps != nil && !ps.Online }

// Gone reports whether a peer is not there at all.
func Gone(ps *ipnstate.PeerStatus) bool { return ps == nil }

// WaitPeer waits until from's "tailscale status --json" shows a peer to
// for which cond holds, and returns that peer's status. cond gets nil
// while from has no such peer (see Gone). It fails t after peerTimeout,
// with what from saw last.
func (n *Net) WaitPeer(t testing.TB, from, to *Node, cond func(*ipnstate.PeerStatus) bool) *ipnstate.PeerStatus {
	t.Helper()
	id := strconv.FormatUint(to.ID(), 10)
	var last *ipnstate.PeerStatus
	var err error
	ok := poll(peerTimeout, func() bool {
		var st *ipnstate.Status
		if st, err = from.status(); err != nil {
			return false
		}
		last = nil
		for _, ps := range st.Peer {
			if string(ps.ID) == id {
				last = ps
			}
		}
		return cond(last)
	})
	if !ok {
		seen := "no such peer"
		if last != nil {
			seen = fmt.Sprintf("online %v, last seen %v, DNS name %q, addresses %v", last.Online, last.LastSeen.Format(time.RFC3339), last.DNSName, last.TailscaleIPs)
		}
		t.Fatalf("%s did not see %s (id %s) as wanted within %v: %s (last error %v)", from.Name, to.Name, id, peerTimeout, seen, err)
	}
	return last
}

// DaemonPID returns the process id of the node's tailscaled, 0 while it is
// not running: for reading its CPU time in /proc.
func (n *Node) DaemonPID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.daemon == nil {
		return 0
	}
	return n.daemon.Pid()
}
