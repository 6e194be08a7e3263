// Package lantest builds a LAN of network namespaces for the mdns tests: a
// bridge in the test's own namespace (made by tailnettest.RunInNetns) and
// hosts in namespaces of their own, joined to it by veth pairs, that run
// real mDNS responders: avahi-daemon, and hashicorp/mdns or a spoofer in a
// helper process (the test binary run again, see HelperMain).
//
// All mDNS traffic stays inside these namespaces. Addresses come from
// 198.18.0.0/15 and 2001:db8::/32, which are never real peers.
package lantest

import (
	"bufio"
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

// Host is a namespace on the LAN.
type Host struct {
	Netns string     // the namespace's name under /run/netns
	Iface string     // its interface on the LAN
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
		IPv4:  netip.MustParseAddr(fmt.Sprintf("198.18.%d.%d", lan.Net, 10+i)),
		IPv6:  netip.MustParseAddr(fmt.Sprintf("2001:db8:%d::%d", lan.Net, 10+i)),
		lan:   lan,
	}
	outer := fmt.Sprintf("%sv%d", lan.Bridge, i)
	run(t, "netns", "add", h.Netns)
	t.Cleanup(func() {
		ip(nil, "netns", "del", h.Netns)
		os.RemoveAll(filepath.Join("/etc/netns", h.Netns))
		os.Remove("/etc/netns") // only if no one else has a namespace configured there
	})
	h.Exec(t, "sh", "-c", "echo 0 >/proc/sys/net/ipv6/conf/default/accept_dad")
	run(t, "link", "add", outer, "type", "veth", "peer", "name", h.Iface, "netns", h.Netns)
	run(t, "link", "set", outer, "master", lan.Bridge, "up")
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

// Process is a program running in a host's namespace.
type Process struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    strings.Builder // what it printed so far
	lines  chan string     // each line it prints, while someone reads
	exited chan struct{}
}

// start starts args in the host's namespace. It is killed, SIGTERM first,
// when t ends.
func (h *Host) start(t testing.TB, env []string, args ...string) *Process {
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
			t.Logf("%v in %s printed:\n%s", args, h.Netns, p.Output())
		}
	})
	return p
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
