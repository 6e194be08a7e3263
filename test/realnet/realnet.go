// Package realnet runs a tailnet of real programs for end-to-end tests:
// headscale as the control server (with its embedded DERP and STUN), and
// tailscaled and the tailscale CLI at the versions build.sh builds, each
// node in a network namespace of its own on a lantest LAN, with a real TUN
// device. Where test/tailnettest runs Tailscale's code in this process,
// realnet runs the released binaries, so it sees what a real deployment
// sees: the CLI, the LocalAPI socket, control restarts, crashes and version
// skew between nodes.
//
// Nothing leaves the namespaces the test made. They have no default route
// and no route out; control, DERP and STUN are headscale on the LAN; DNS in
// every namespace points at its own loopback; log upload, the port mapper
// and the update check are off; and each tailscaled gets a private /run, so
// it cannot reach the machine's D-Bus (systemd-resolved, NetworkManager)
// nor a real tailscaled's socket. Names of namespaces, devices and
// directories carry this process's id and a counter, so realnet runs next
// to a real tailscaled and next to other tests using lantest.
//
// Wire it up in TestMain, as for tailnettest:
//
//	func TestMain(m *testing.M) { os.Exit(tailnettest.RunInNetns(m)) }
package realnet

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tailhorizon/tailhorizon/test/lantest"
)

// BaseDomain is the MagicDNS suffix headscale gives the tailnet: a node is
// "<given name>.tail.example.net.".
const BaseDomain = "tail.example.net"

// Bounds on the waits. Control and nodes all run on one machine, so each
// is far longer than the step takes (see realnet_test.go for the figures).
const (
	controlTimeout = 30 * time.Second  // headscale serving after its start
	upTimeout      = 60 * time.Second  // a node Running with its addresses
	cliTimeout     = 30 * time.Second  // one headscale or tailscale command
	upCLITimeout   = 20 * time.Second  // tailscale up's own bound, within cliTimeout
	peerTimeout    = 120 * time.Second // WaitPeer; headscale may take 10 s to see a node go
	pollInterval   = 200 * time.Millisecond
)

// seq numbers this process's nodes, for unique TUN device names.
var seq atomic.Int32

// quietEnv is added to the environment of every program the rig starts:
// no proxy (a developer's HTTPS_PROXY would be dialled), no systemd
// notification of the machine's service manager, and no state directory
// inherited from a unit.
var quietEnv = []string{
	"HTTP_PROXY=", "HTTPS_PROXY=", "ALL_PROXY=",
	"http_proxy=", "https_proxy=", "all_proxy=",
	"NO_PROXY=*", "no_proxy=*",
	"NOTIFY_SOCKET=", "STATE_DIRECTORY=",
}

// Net is headscale on a LAN of namespaces, and the nodes added to it.
type Net struct {
	LAN     *lantest.LAN
	Control *lantest.Host // headscale's namespace
	URL     string        // headscale's server URL: https://<Control.IPv4>, port 443
	CAFile  string        // PEM of the CA that signed headscale's certificate
	UserID  uint64        // headscale's id of the user every node belongs to
	AuthKey string        // a reusable pre-auth key of that user, valid for an hour

	owner  testing.TB   // Start's: headscale lives as long as it, whichever test restarts it
	bin    string       // the headscale binary
	config string       // its configuration file
	client *http.Client // trusts CAFile, for the readiness poll

	mu        sync.Mutex
	headscale *lantest.Process // nil while control is stopped
}

// Option changes headscale's configuration for Start.
type Option func(*options)

type options struct {
	extraRecords string // dns.extra_records_path; "" for dns.extra_records: []
}

// ExtraRecordsFile makes headscale read its extra DNS records from the
// JSON file at path (dns.extra_records_path), a list of tailcfg.DNSRecord,
// and watch it: a change reaches the nodes without a restart. The file
// must exist before Start.
func ExtraRecordsFile(path string) Option {
	return func(o *options) { o.extraRecords = path }
}

// Start makes a LAN, starts headscale in a namespace on it and creates a
// user and a reusable pre-auth key. Everything is removed when t ends. It
// skips t (in CI it fails) without a namespace of its own or without the
// binaries of build.sh.
func Start(t testing.TB, opts ...Option) *Net {
	t.Helper()
	lan := lantest.Start(t)
	bin := HeadscaleBinary(t)
	dir := tempDir(t, "control")
	host := addHost(t, lan)
	certs, err := writeCerts(dir, host.IPv4, host.IPv6)
	if err != nil {
		t.Fatal(err)
	}
	n := &Net{
		LAN:     lan,
		Control: host,
		URL:     "https://" + host.IPv4.String(),
		CAFile:  certs.CA,
		owner:   t,
		bin:     bin,
		config:  filepath.Join(dir, "config.yaml"),
		client: &http.Client{
			// No proxy, and no connection kept from one poll to the next,
			// which a restart of headscale would break.
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.Pool}, DisableKeepAlives: true},
			Timeout:   2 * time.Second,
		},
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := os.WriteFile(n.config, []byte(headscaleConfig(dir, host, certs, o)), 0o600); err != nil {
		t.Fatal(err)
	}
	n.StartControl(t)

	var user struct {
		ID uint64 `json:"id"`
	}
	n.headscaleJSON(t, &user, "users", "create", "realnet")
	n.UserID = user.ID
	var key struct {
		Key string `json:"key"`
	}
	n.headscaleJSON(t, &key, "preauthkeys", "create", "--user", strconv.FormatUint(n.UserID, 10),
		"--reusable", "--expiration", "1h")
	if key.Key == "" {
		t.Fatal("headscale preauthkeys create: no key")
	}
	n.AuthKey = key.Key
	return n
}

// headscaleConfig returns headscale's configuration: the keys of v0.27.1's
// config-example.yaml, each set here rather than inherited, so that none
// of the example's outward defaults (Tailscale's public DERP map, 1.1.1.1
// as nameserver, the update check against GitHub) can apply. Ephemeral
// node and inactivity settings are headscale's defaults.
//
// The embedded DERP is dual-stack, as a real one is, and STUN listens on
// the wildcard address, which in the control namespace means the host's
// LAN addresses: with an IPv4-only DERP, netcheck waits out its IPv6 probes
// and every node takes 3 s longer to come up.
func headscaleConfig(dir string, host *lantest.Host, certs certFiles, o options) string {
	ip := host.IPv4.String()
	records := "extra_records: []"
	if o.extraRecords != "" {
		records = "extra_records_path: " + strconv.Quote(o.extraRecords)
	}
	path := func(name string) string { return strconv.Quote(filepath.Join(dir, name)) }
	return `# headscale for test/realnet; see realnet.go.
server_url: https://` + ip + `
listen_addr: ` + ip + `:443
metrics_listen_addr: 127.0.0.1:9090
grpc_listen_addr: 127.0.0.1:50443
grpc_allow_insecure: false
noise:
  private_key_path: ` + path("noise_private.key") + `
prefixes:
  v4: 100.64.0.0/10
  v6: fd7a:115c:a1e0::/48
  allocation: sequential
derp:
  server:
    enabled: true
    region_id: 999
    region_code: realnet
    region_name: realnet embedded DERP
    verify_clients: true
    stun_listen_addr: "[::]:3478"
    private_key_path: ` + path("derp_server_private.key") + `
    automatically_add_embedded_derp_region: true
    ipv4: ` + ip + `
    ipv6: ` + host.IPv6.String() + `
  urls: []
  paths: []
  auto_update_enabled: false
  update_frequency: 3h
disable_check_updates: true
database:
  type: sqlite
  sqlite:
    path: ` + path("db.sqlite") + `
    write_ahead_log: true
tls_letsencrypt_hostname: ""
tls_cert_path: ` + strconv.Quote(certs.Cert) + `
tls_key_path: ` + strconv.Quote(certs.Key) + `
log:
  level: info
  format: text
policy:
  mode: file
  path: ""
dns:
  magic_dns: true
  base_domain: ` + BaseDomain + `
  override_local_dns: false
  nameservers:
    global: []
    split: {}
  search_domains: []
  ` + records + `
unix_socket: ` + path("headscale.sock") + `
unix_socket_permission: "0770"
logtail:
  enabled: false
randomize_client_port: false
`
}

// StartControl starts headscale on its database and keys, and waits until
// it serves. Start calls it; call it again after StopControl.
func (n *Net) StartControl(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.headscale != nil {
		t.Fatal("realnet: StartControl: headscale is running")
	}
	p := n.Control.Start(n.owner, quietEnv, n.bin, "-c", n.config, "serve")
	deadline := time.Now().Add(controlTimeout)
	for {
		if n.healthy() {
			break
		}
		select {
		case <-p.Exited():
			t.Fatalf("headscale exited at start:\n%s", p.Tail(50))
		case <-time.After(pollInterval):
		}
		if time.Now().After(deadline) {
			p.Stop()
			t.Fatalf("headscale did not serve %s/health within %v:\n%s", n.URL, controlTimeout, p.Tail(50))
		}
	}
	n.headscale = p
}

// healthy reports whether headscale answers its health check and its CLI
// socket is there.
func (n *Net) healthy() bool {
	resp, err := n.client.Get(n.URL + "/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	_, err = os.Stat(filepath.Join(filepath.Dir(n.config), "headscale.sock"))
	return resp.StatusCode == http.StatusOK && err == nil
}

// StopControl kills headscale with SIGKILL, a crash: the nodes' long polls
// break at once, and nothing answers until StartControl.
func (n *Net) StopControl(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.headscale == nil {
		t.Fatal("realnet: StopControl: headscale is not running")
	}
	n.headscale.Kill()
	select {
	case <-n.headscale.Exited():
	default:
		t.Fatalf("headscale (pid %d) did not exit after SIGKILL", n.headscale.Pid())
	}
	n.headscale = nil
}

// RestartControl kills headscale and starts it again on the same database
// and keys.
func (n *Net) RestartControl(t testing.TB) {
	t.Helper()
	n.StopControl(t)
	n.StartControl(t)
}

// Headscale runs the headscale CLI with args against the running server,
// and returns what it printed. The error, if the command failed or timed
// out, includes the output.
func (n *Net) Headscale(t testing.TB, args ...string) (string, error) {
	t.Helper()
	stdout, stderr, err := command(n.Control, quietEnv, append([]string{n.bin, "-c", n.config}, args...)...)
	return stdout + stderr, err
}

// headscaleJSON runs the CLI with args and "-o json" and decodes its
// output into v. It fails t if either fails.
func (n *Net) headscaleJSON(t testing.TB, v any, args ...string) {
	t.Helper()
	stdout, _, err := command(n.Control, quietEnv, append([]string{n.bin, "-c", n.config, "-o", "json"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatalf("headscale %s: decode %q: %v", strings.Join(args, " "), stdout, err)
	}
}

// ControlNode is a node as headscale lists it.
type ControlNode struct {
	ID        uint64   `json:"id"`
	Name      string   `json:"name"`       // the hostname the node sent
	GivenName string   `json:"given_name"` // its MagicDNS label, which Rename sets
	Online    bool     `json:"online"`     // headscale holds a map session with it; an expired node may still
	Addrs     []string `json:"ip_addresses"`
}

// ControlNodes returns the nodes headscale knows, in its order.
func (n *Net) ControlNodes(t testing.TB) []ControlNode {
	t.Helper()
	var nodes []ControlNode
	n.headscaleJSON(t, &nodes, "nodes", "list")
	return nodes
}

// ControlNode returns headscale's record of node, and whether it has one.
func (n *Net) ControlNode(t testing.TB, node *Node) (ControlNode, bool) {
	t.Helper()
	for _, c := range n.ControlNodes(t) {
		if c.ID == node.ID() {
			return c, true
		}
	}
	return ControlNode{}, false
}

// WaitControl waits until headscale lists node as online (it holds a map
// session with it) or offline, as online says. It fails t after
// peerTimeout.
func (n *Net) WaitControl(t testing.TB, node *Node, online bool) {
	t.Helper()
	var c ControlNode
	var found bool
	if !poll(peerTimeout, func() bool {
		c, found = n.ControlNode(t, node)
		return found && c.Online == online
	}) {
		t.Fatalf("headscale did not list %s (id %d, found %v) with online %v within %v", node.Name, node.ID(), found, online, peerTimeout)
	}
}

// Expire expires node's key now: it must log in again, and its peers drop
// it.
func (n *Net) Expire(t testing.TB, node *Node) {
	t.Helper()
	n.nodeCommand(t, "expire", node)
}

// Rename sets node's given name, its MagicDNS label, to name.
func (n *Net) Rename(t testing.TB, node *Node, name string) {
	t.Helper()
	n.nodeCommand(t, "rename", node, name)
}

// Delete removes node from headscale. Its tailscaled keeps running, logged
// out of a tailnet that no longer knows it.
func (n *Net) Delete(t testing.TB, node *Node) {
	t.Helper()
	n.nodeCommand(t, "delete", node, "--force")
}

// nodeCommand runs "headscale nodes VERB --identifier ID args..." and
// fails t if it fails.
func (n *Net) nodeCommand(t testing.TB, verb string, node *Node, args ...string) {
	t.Helper()
	full := append([]string{"nodes", verb, "--identifier", strconv.FormatUint(node.ID(), 10)}, args...)
	if _, err := n.Headscale(t, full...); err != nil {
		t.Fatal(err)
	}
}

// command runs args in h's namespace with env added, bounded by
// cliTimeout, and returns its stdout and stderr. The error says what ran
// and includes both.
func command(h *lantest.Host, env []string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := h.Command(ctx, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v", cliTimeout)
	}
	if err != nil {
		err = fmt.Errorf("%s in %s: %w\n%s%s", strings.Join(args, " "), h.Netns, err, out.String(), errOut.String())
	}
	return out.String(), errOut.String(), err
}

// tempBase returns the directory tempDir makes directories in: the
// system's, unless it is under /run, which each tailscaled's private /run
// would hide from it.
func tempBase() string {
	base := os.TempDir()
	if base == "/run" || strings.HasPrefix(base, "/run/") || strings.HasPrefix(base, "/var/run/") {
		return "/tmp"
	}
	return base
}

// tempDir makes a directory for one program's files, named for this
// process, and removes it when t ends. Paths stay short: a unix socket's
// path must fit in 108 bytes.
func tempDir(t testing.TB, what string) string {
	t.Helper()
	sweepOnce.Do(sweepDirs)
	dir, err := os.MkdirTemp(tempBase(), fmt.Sprintf("realnet-%d-%s-", os.Getpid(), what))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// sweepOnce runs sweepDirs before this process's first directory.
var sweepOnce sync.Once

// sweepDirs removes the directories that a test process left behind when
// it died without running its cleanups (killed, or go test -timeout's
// panic). A directory is named for the process that made it, and only
// those of processes that are gone are removed. lantest sweeps the
// namespaces the same way.
func sweepDirs() {
	matches, _ := filepath.Glob(filepath.Join(tempBase(), "realnet-*"))
	for _, m := range matches {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(m), "realnet-%d-", &pid); err != nil || pid == os.Getpid() || lantest.Alive(pid) {
			continue
		}
		os.RemoveAll(m)
	}
}

// addHost adds a namespace to lan for one program of the rig, with DNS of
// its own (isolateDNS), and checks that nothing is routable out of it.
func addHost(t testing.TB, lan *lantest.LAN) *lantest.Host {
	t.Helper()
	h := lan.AddHost(t)
	isolateDNS(t, h)
	requireNoRouteOut(t, h)
	return h
}

// offLAN are addresses outside every namespace of the rig, for
// requireNoRouteOut: public DNS resolvers, as good as any.
var offLAN = []string{"1.1.1.1", "2606:4700:4700::1111"}

// requireNoRouteOut fails t if h has a route to an address off the LAN,
// such as a default route: the rig's programs must not be able to send
// anything beyond the namespaces the test made. ip route get asks the
// kernel and sends nothing.
func requireNoRouteOut(t testing.TB, h *lantest.Host) {
	t.Helper()
	for _, a := range offLAN {
		if out, _, err := command(h, nil, "ip", "route", "get", a); err == nil {
			t.Fatalf("%s has a route out of the rig, to %s: %s", h.Netns, a, strings.TrimSpace(out))
		}
	}
}

// isolateDNS gives h a resolv.conf of its own, which ip netns exec lays
// over /etc/resolv.conf for every program in h: any lookup goes to the
// namespace's own loopback and fails there, and tailscaled picks its
// "direct" DNS mode, in which anything it wrote would land in this file,
// never in the machine's. lantest removes /etc/netns/NETNS with h.
func isolateDNS(t testing.TB, h *lantest.Host) {
	t.Helper()
	dir := filepath.Join("/etc/netns", h.Netns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// poll calls done every pollInterval until it returns true or limit
// passes, and reports whether it returned true.
func poll(limit time.Duration, done func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if done() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
}
