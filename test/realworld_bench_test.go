package test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tailhorizon/tailhorizon/test/realnet"
)

// The measurements below are benchmarks, not part of make test: they run
// when TAILHORIZON_BENCH names a directory, write their tables there as
// markdown, and test/bench/realworld.sh runs them. They send traffic only
// inside the rig's namespaces, as every realnet test does.
const envBench = "TAILHORIZON_BENCH"

// benchDir returns the directory to write results to, or skips t.
func benchDir(t *testing.T) string {
	dir := os.Getenv(envBench)
	if dir == "" {
		t.Skip("a benchmark: set " + envBench + " to a directory for its results")
	}
	return dir
}

// TestBenchFailover measures, against real headscale with the shipped
// device Corefile, how long a client keeps getting a dead peer's tailnet
// address after each kind of fault (TRIALS times each, default 10), and
// how long the plugin takes to answer from the tailnet again once the peer
// is back (asked with a new name each time, so that no cache hides it).
func TestBenchFailover(t *testing.T) {
	dir := benchDir(t)
	trials := 10
	if v, err := strconv.Atoi(os.Getenv("TRIALS")); err == nil && v > 0 {
		trials = v
	}
	rn := realnet.Start(t)
	device := rn.AddNode(t, "device", realnet.TailscaleNew)
	hub := rn.AddNode(t, "hub", realnet.TailscaleNew)
	rn.WaitPeer(t, device, hub, realnet.Online)
	srv := deployment(t, "device.Corefile", device.Socket(), startAuthority(t))
	below := newNamesBelow(t, srv) // names the cache has not seen
	client := func(n *realnet.Node) func() *dns.Msg {
		return func() *dns.Msg { return exchange(t, srv, n.Name+".example.org", dns.TypeA) }
	}
	is := func(a netip.Addr) func(*dns.Msg) bool { return func(r *dns.Msg) bool { return hasA(r, a) } }
	public := func(r *dns.Msg) bool { return hasA(r, netip.MustParseAddr(vpsIPv4)) }
	settle := func(n *realnet.Node) {
		waitFor(t, 60*time.Second, n.Name+" answered", below(n.Name), is(n.IPv4()))
		// Asked for and answering pings, as a peer in use is: a new peer's
		// first pings may time out while paths are found.
		waitFor(t, 10*time.Second, n.Name+" answered", client(n), is(n.IPv4()))
		time.Sleep(3 * time.Second)
	}

	results := map[string][]time.Duration{}
	faults := peerFaults(hub)
	for _, f := range faults {
		for range trials {
			settle(hub)
			f.fault(t)
			results[f.name] = append(results[f.name], waitFor(t, 10*time.Second, f.name, client(hub), public))
			f.mend(t)
			results["back online after "+f.name] = append(results["back online after "+f.name],
				waitFor(t, 30*time.Second, "back after "+f.name, below(hub.Name), is(hub.IPv4())))
		}
	}
	for i := range trials {
		n := rn.AddNode(t, fmt.Sprintf("expiring%d", i), realnet.TailscaleNew)
		rn.WaitPeer(t, device, n, realnet.Online)
		settle(n)
		rn.Expire(t, n)
		results["key expired (headscale nodes expire)"] = append(results["key expired (headscale nodes expire)"],
			waitFor(t, 10*time.Second, "expired", client(n), public))
	}

	var b strings.Builder
	fmt.Fprintf(&b, "| fault, shipped device Corefile, real headscale %s, tailscaled %s | trials | median | p90 | max |\n|---|---:|---:|---:|---:|\n",
		realnet.Headscale, realnet.TailscaleNew)
	names := []string{"key expired (headscale nodes expire)"}
	for _, f := range faults {
		names = append(names, f.name)
	}
	for _, f := range faults {
		names = append(names, "back online after "+f.name)
	}
	for _, name := range names {
		d := results[name]
		slices.Sort(d)
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s |\n", name, len(d), ms(d[len(d)/2]), ms(d[len(d)*9/10]), ms(d[len(d)-1]))
	}
	b.WriteString("\nA fault is timed from the moment it is made to the first public answer a client of the device Corefile (cache included) gets for the peer; back online from the moment tailscaled is Running again (restart, power back, `tailscale up`) to the first tailnet answer for a name below the peer that no cache holds.\n")
	writeResult(t, dir, "failover.md", b.String())
}

// TestBenchProbeCost measures what probing costs: pings a second to
// tailscaled and the CPU of tailscaled and of this process (coredns), with
// 10 asked-for peers at the default probe interval (20 pings a second)
// and at the rate cap of 100 pings a second, which 50 or more asked-for
// peers (1,000, 10,000, ...) reach at the default interval.
func TestBenchProbeCost(t *testing.T) {
	dir := benchDir(t)
	const peers = 10
	const window = 20 * time.Second
	rn := realnet.Start(t)
	device := rn.AddNode(t, "device", realnet.TailscaleNew)
	var nodes []*realnet.Node
	for i := range peers {
		n := rn.AddNode(t, fmt.Sprintf("peer%d", i), realnet.TailscaleNew)
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		rn.WaitPeer(t, device, n, realnet.Online)
	}
	auth := startAuthority(t)

	var b strings.Builder
	fmt.Fprintf(&b, "| asked-for peers | probe | pings/s | tailscaled CPU | coredns CPU |\n|---:|---|---:|---:|---:|\n")
	for _, c := range []struct {
		label, probe string
	}{
		{"10", "500ms"},
		{"≥ 50 (1,000, 10,000): the cap", "100ms"}, // 10 peers at 100 ms: 100 pings/s
		{"10, probe off", "off"},
	} {
		t.Run(c.probe, func(t *testing.T) { // its coredns stops with it
			probeCost(t, &b, c.label, c.probe, device, nodes, auth, window)
		})
	}
	b.WriteString("\nCPU is a share of one core over 20 s, from /proc (tailscaled) and getrusage (this test process, which runs coredns and asks 10 names a second), on the machine described above; the peers answer every ping.\n")
	writeResult(t, dir, "probe-cost.md", b.String())
}

// probeCost runs the device Corefile with probe, keeps the peers asked
// for, and adds a row to b with what window of that cost.
func probeCost(t *testing.T, b *strings.Builder, label, probe string, device *realnet.Node, nodes []*realnet.Node, auth string, window time.Duration) {
	srv := deployment(t, "device.Corefile", device.Socket(), auth,
		"        fallthrough\n    }", "        fallthrough\n        probe "+probe+"\n    }")
	for _, n := range nodes {
		waitFor(t, 20*time.Second, n.Name+" answered", func() *dns.Msg {
			return exchange(t, srv, n.Name+".example.org", dns.TypeA)
		}, func(r *dns.Msg) bool { return hasA(r, n.IPv4()) })
	}
	time.Sleep(2 * time.Second)
	// Ask now and then, as a client would, so that every peer stays asked for.
	p0, d0, s0 := pingsSent(t), procCPU(t, device.DaemonPID()), selfCPU()
	start := time.Now()
	for time.Since(start) < window {
		for _, n := range nodes {
			exchange(t, srv, n.Name+".example.org", dns.TypeA)
		}
		time.Sleep(time.Second)
	}
	el := time.Since(start)
	pings := pingsSent(t) - p0
	fmt.Fprintf(b, "| %s | %s | %.0f | %.1f%% | %.1f%% |\n", label, probe, pings/el.Seconds(),
		100*(procCPU(t, device.DaemonPID())-d0).Seconds()/el.Seconds(), 100*(selfCPU()-s0).Seconds()/el.Seconds())
}

// pingsSent sums coredns_tailnet_probe_pings_total over its sockets.
func pingsSent(t *testing.T) float64 {
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == "coredns_tailnet_probe_pings_total" {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// procCPU returns the user and system time of process pid.
func procCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * time.Second / 100 // clock ticks
}

// selfCPU returns the user and system time of this process.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func writeResult(t *testing.T, dir, name, text string) {
	t.Logf("%s:\n%s", name, text)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
