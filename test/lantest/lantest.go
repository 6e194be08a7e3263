// Package lantest builds a LAN of network namespaces for the mdns tests: a
// bridge in the test's own namespace (made by tailnettest.RunInNetns) and
// hosts in namespaces of their own, joined to it by veth pairs, that run
// real mDNS responders: avahi-daemon, and hashicorp/mdns or a spoofer in a
// helper process (the test binary run again, see HelperMain). test/realnet
// runs headscale and tailscaled on it, with Host.Start.
//
// All mDNS traffic stays inside these namespaces. Addresses come from
// 198.18.0.0/15 and 2001:db8::/32, which are never real peers.
package lantest

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// seq numbers the LANs and hosts of this process, for unique names.
var seq atomic.Int32

// sweepOnce runs sweep before this process's first LAN.
var sweepOnce sync.Once

// LAN is a bridge with hosts on it.
type LAN struct {
	Bridge string     // interface name in the test's namespace
	Net    int        // the third octet: addresses are 198.18.Net.x and 2001:db8:Net::x
	IPv4   netip.Addr // the bridge's own addresses
	IPv6   netip.Addr

	mu    sync.Mutex
	hosts int
}

// Start makes a LAN, and removes it with everything on it when t ends. It
// skips t unless the test runs in its own network namespace and ip is
// there (in CI it fails instead, as tailnettest.Require does).
func Start(t testing.TB) *LAN {
	t.Helper()
	tailnettest.Require(t)
	if _, err := exec.LookPath("ip"); err != nil {
		tailnettest.SkipOrFail(t, "needs ip (apt-get install iproute2)")
	}
	sweepOnce.Do(sweep)
	n := int(seq.Add(1))
	lan := &LAN{Bridge: fmt.Sprintf("thbr%d", n), Net: 100 + n}
	lan.IPv4 = netip.MustParseAddr(fmt.Sprintf("198.18.%d.1", lan.Net))
	lan.IPv6 = netip.MustParseAddr(fmt.Sprintf("2001:db8:%d::1", lan.Net))
	// Addresses are usable at once, without duplicate address detection.
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/default/accept_dad", []byte("0"), 0o644); err != nil {
		t.Fatalf("disable DAD: %v", err)
	}
	t.Cleanup(func() { ip(nil, "link", "del", lan.Bridge) })
	run(t, "link", "add", lan.Bridge, "type", "bridge", "mcast_snooping", "0")
	run(t, "addr", "add", lan.IPv4.String()+"/24", "dev", lan.Bridge)
	run(t, "addr", "add", lan.IPv6.String()+"/64", "dev", lan.Bridge, "nodad")
	run(t, "link", "set", lan.Bridge, "up", "multicast", "on")
	run(t, "route", "add", "224.0.0.0/4", "dev", lan.Bridge)
	return lan
}

// sweep removes the host namespaces, and their /etc/netns directories,
// that a test process left behind when it died without running its
// cleanups (killed, or go test -timeout's panic). A namespace is named for
// the process that made it, and only those of processes that are gone are
// removed.
func sweep() {
	for _, dir := range []string{"/run/netns", "/etc/netns"} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			var pid, n int
			if _, err := fmt.Sscanf(e.Name(), "th-%d-%d", &pid, &n); err != nil || pid == os.Getpid() || Alive(pid) {
				continue
			}
			ip(nil, "netns", "del", e.Name())
			os.RemoveAll(filepath.Join("/etc/netns", e.Name()))
		}
	}
}

// Alive reports whether a process with the id runs.
func Alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// Host is a namespace on the LAN.
type Host struct {
	Netns string     // the namespace's name under /run/netns
	Iface string     // its interface on the LAN
	Port  string     // the other end of Iface: the bridge's port, in the test's namespace
	IPv4  netip.Addr // its addresses on the LAN
	IPv6  netip.Addr
	lan   *LAN
}

// AddHost makes a namespace joined to the LAN; t.Cleanup deletes it.
func (lan *LAN) AddHost(t testing.TB) *Host {
	t.Helper()
	lan.mu.Lock()
	lan.hosts++
	i := lan.hosts
	lan.mu.Unlock()
	h := &Host{
		Netns: fmt.Sprintf("th-%d-%d", os.Getpid(), seq.Add(1)),
		Iface: "eth0",
		Port:  fmt.Sprintf("%sv%d", lan.Bridge, i),
		IPv4:  netip.MustParseAddr(fmt.Sprintf("198.18.%d.%d", lan.Net, 10+i)),
		IPv6:  netip.MustParseAddr(fmt.Sprintf("2001:db8:%d::%d", lan.Net, 10+i)),
		lan:   lan,
	}
	run(t, "netns", "add", h.Netns)
	t.Cleanup(func() {
		ip(nil, "netns", "del", h.Netns)
		os.RemoveAll(filepath.Join("/etc/netns", h.Netns))
		os.Remove("/etc/netns") // only if no one else has a namespace configured there
	})
	h.Exec(t, "sh", "-c", "echo 0 >/proc/sys/net/ipv6/conf/default/accept_dad")
	run(t, "link", "add", h.Port, "type", "veth", "peer", "name", h.Iface, "netns", h.Netns)
	run(t, "link", "set", h.Port, "master", lan.Bridge, "up")
	h.IP(t, "link", "set", "lo", "up")
	h.IP(t, "addr", "add", h.IPv4.String()+"/24", "dev", h.Iface)
	h.IP(t, "addr", "add", h.IPv6.String()+"/64", "dev", h.Iface, "nodad")
	h.IP(t, "link", "set", h.Iface, "up", "multicast", "on")
	h.IP(t, "route", "add", "224.0.0.0/4", "dev", h.Iface)
	return h
}

// IP runs ip with args in the host's namespace.
func (h *Host) IP(t testing.TB, args ...string) {
	t.Helper()
	run(t, append([]string{"-n", h.Netns}, args...)...)
}

// Exec runs a command in the host's namespace and fails t if it fails.
func (h *Host) Exec(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", h.Netns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("in %s: %v: %v\n%s", h.Netns, args, err, out)
	}
}

// Command returns a command that runs args in the host's namespace and is
// killed when ctx is done. ip netns exec execs args in place, so the
// command's process is the program itself.
func (h *Host) Command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Netns}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second // a child left holding its output cannot stall Wait
	return cmd
}

// Unplug takes the host's link down at both ends, as if its cable were
// pulled: nothing it sends leaves, nothing sent to it arrives, and no FIN
// or RST tells its peers that it went. Plug undoes it.
func (h *Host) Unplug(t testing.TB) {
	t.Helper()
	run(t, "link", "set", h.Port, "down")
	h.IP(t, "link", "set", h.Iface, "down")
}

// Plug brings the host's link up again after Unplug. The kernel drops a
// link's IPv6 addresses and its manual routes when it goes down, so Plug
// puts them back.
func (h *Host) Plug(t testing.TB) {
	t.Helper()
	h.IP(t, "link", "set", h.Iface, "up", "multicast", "on")
	run(t, "link", "set", h.Port, "up")
	h.IP(t, "addr", "replace", h.IPv6.String()+"/64", "dev", h.Iface, "nodad")
	h.IP(t, "route", "replace", "224.0.0.0/4", "dev", h.Iface)
}

// Process is a program running in a host's namespace.
type Process struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    strings.Builder // what it printed so far
	lines  chan string     // each line it prints, while someone reads
	exited chan struct{}
}

// failureTail is how many of a process's last lines a failed test logs.
const failureTail = 200

// Start starts args in the host's namespace, with env added to this
// process's environment. It is killed, SIGTERM first, when t ends, and if t
// failed the last lines it printed are logged.
func (h *Host) Start(t testing.TB, env []string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.Netns}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if _, err := cmd.StdinPipe(); err != nil { // closed when the test ends: helpers exit
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v in %s: %v", args, h.Netns, err)
	}
	p := &Process{cmd: cmd, lines: make(chan string, 256), exited: make(chan struct{})}
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			p.mu.Lock()
			p.out.WriteString(s.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- s.Text():
			default:
			}
		}
		cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%v in %s printed:\n%s", args, h.Netns, p.Tail(failureTail))
		}
	})
	return p
}

// Pid returns the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Tail returns the last n lines the process printed so far, after a line
// that counts the ones left out.
func (p *Process) Tail(n int) string {
	out := p.Output()
	lines := strings.SplitAfter(out, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) <= n {
		return out
	}
	return fmt.Sprintf("[%d earlier lines left out]\n", len(lines)-n) + strings.Join(lines[len(lines)-n:], "")
}

// Output returns what the process printed so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// Stop sends SIGTERM, waits up to 5 s for the process to exit, then kills
// it. It is safe to call more than once.
func (p *Process) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// Kill sends SIGKILL, so that the process has no chance to clean up: a
// crash. It waits up to 5 s for the process to be reaped. It is safe to
// call more than once, and after Stop.
func (p *Process) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Kill()
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
	}
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// waitLine waits up to limit for a line containing want, and reports
// whether one came.
func (p *Process) waitLine(want string, limit time.Duration) bool {
	deadline := time.After(limit)
	for {
		select {
		case line := <-p.lines:
			if strings.Contains(line, want) {
				return true
			}
		case <-p.exited:
			return false
		case <-deadline:
			return false
		}
	}
}

func run(t testing.TB, args ...string) {
	t.Helper()
	if err := ip(t, args...); err != nil {
		t.Fatal(err)
	}
}

// ip runs ip with args and returns its error with its output.
func ip(t testing.TB, args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}
