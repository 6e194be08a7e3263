package watch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"tailscale.com/ipn"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"

	"github.com/tailhorizon/tailhorizon/test/fixture"
)

var (
	hubIP   = netip.MustParseAddr("100.64.0.2")
	errDead = errors.New("timed out")
)

// ask marks host as asked for, as a query does.
func ask(w *watched, host string) {
	w.node(host).Health.Ask(time.Now().UnixNano())
}

// TestProbeBeatsControl: a peer that stops answering pings is unreachable
// while control still says online (a crash, a power cut), and one that
// answers is reachable while control says offline (control restarting).
func TestProbeBeatsControl(t *testing.T) {
	f := newFakeAPI(testStatus())
	tn := startWatched(t, f, time.Minute)
	fixture.Eventually(t, "ready", tn.Ready)
	ask(tn, "hub")
	fixture.Eventually(t, "hub answered a ping", func() bool { return tn.node("hub").Health.answered.Load() })

	f.setPing(func(netip.Addr) error { return errDead })
	fixture.Eventually(t, "hub unreachable while control says online", func() bool { return !reachable(tn, "hub") })

	f.setPing(nil)
	fixture.Eventually(t, "hub back with its first answered ping", func() bool { return reachable(tn, "hub") })

	f.send(ipn.Notify{PeerChangedPatch: []*tailcfg.PeerChange{{NodeID: 2, Online: new(false)}}})
	for range 5 { // several probe rounds: it must stay
		before := f.pings(hubIP)
		fixture.Eventually(t, "another ping", func() bool { return f.pings(hubIP) > before })
		if !reachable(tn, "hub") {
			t.Fatal("hub, answering pings, unreachable because control says offline")
		}
	}
}

// TestProbeOnlyAskedFor: a peer nobody asked for is not pinged, and
// control's word stands for it.
func TestProbeOnlyAskedFor(t *testing.T) {
	f := newFakeAPI(testStatus())
	f.setPing(func(netip.Addr) error { return errDead })
	tn := startWatched(t, f, time.Minute)
	fixture.Eventually(t, "ready", tn.Ready)
	ask(tn, "alpha")
	alphaIP := netip.MustParseAddr("100.64.0.3")
	fixture.Eventually(t, "alpha pinged", func() bool { return f.pings(alphaIP) > 0 })
	if n := f.pings(hubIP); n != 0 {
		t.Errorf("hub, never asked for, got %d pings", n)
	}
	if !reachable(tn, "hub") {
		t.Error("hub, never probed and online, unreachable")
	}
}

// TestProbeSkipsExpired: an expired peer is unreachable at once, and not
// pinged: nothing a ping says can make it reachable.
func TestProbeSkipsExpired(t *testing.T) {
	st := testStatus()
	for _, ps := range st.Peer {
		if ps.DNSName == "hub.ts.net." {
			ps.Expired = true
		}
	}
	f := newFakeAPI(st)
	tn := startWatched(t, f, time.Minute)
	fixture.Eventually(t, "ready", tn.Ready)
	if reachable(tn, "hub") {
		t.Error("expired hub reachable")
	}
	ask(tn, "hub")
	ask(tn, "alpha")
	alphaIP := netip.MustParseAddr("100.64.0.3")
	fixture.Eventually(t, "alpha pinged", func() bool { return f.pings(alphaIP) > 0 })
	if n := f.pings(hubIP); n != 0 {
		t.Errorf("expired hub got %d pings", n)
	}

	past := time.Now().Add(-time.Second)
	f.send(ipn.Notify{PeerChangedPatch: []*tailcfg.PeerChange{{NodeID: 3, KeyExpiry: &past}}})
	fixture.Eventually(t, "alpha unreachable once its key expiry passed", func() bool { return !reachable(tn, "alpha") })
}

// TestProbeBudget: past maxPingRate×interval asked-for peers, a round pings
// only that many, those pinged longest ago first, so every peer gets its
// turn and tailscaled never gets more than the budget.
func TestProbeBudget(t *testing.T) {
	const peers = 120
	interval := 500 * time.Millisecond
	budget := int(maxPingRate * interval / time.Second)
	st := &ipnstate.Status{BackendState: "Running", Peer: map[key.NodePublic]*ipnstate.PeerStatus{}}
	for i := range peers {
		st.Peer[key.NewNode().Public()] = peerStatus(10+i, fmt.Sprintf("p%d.ts.net.", i), fmt.Sprintf("100.64.1.%d", i), true)
	}
	f := newFakeAPI(st)
	w := newWatcher(t.Name())
	w.api = f
	w.load(st)
	w.running = true
	w.publishNodes()
	now := time.Now()
	for _, n := range w.snap.Load().Nodes {
		n.Health.askedAt.Store(now.UnixNano())
	}
	var wg sync.WaitGroup
	pinged := map[netip.Addr]int{}
	for round := range 3 {
		w.probeOnce(context.Background(), &wg, interval, now.Add(time.Duration(round)*interval))
		wg.Wait()
		total := 0
		for _, n := range w.snap.Load().Nodes {
			pinged[n.V4[0]] = f.pings(n.V4[0])
			total += pinged[n.V4[0]]
		}
		if want := min((round+1)*budget, 3*peers); total != want {
			t.Fatalf("after round %d: %d pings; want %d", round, total, want)
		}
	}
	for ip, n := range pinged {
		if n < 1 {
			t.Errorf("%s never pinged in 3 rounds", ip)
		}
	}
}

// TestPingResultError: tailscaled reports some failures, such as an
// expired peer key, as an error inside a 200 result; they are failures.
func TestPingResultError(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ts.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Query().Get("ip") {
		case "100.64.0.2":
			fmt.Fprint(w, `{"IP":"100.64.0.2","Err":"peer's node key has expired"}`)
		default:
			fmt.Fprint(w, `{"IP":"100.64.0.3","LatencySeconds":0.001}`)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	api := Tailscaled(sock)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := api.Ping(ctx, hubIP); err == nil {
		t.Error("a result with Err counted as an answered ping")
	}
	if err := api.Ping(ctx, netip.MustParseAddr("100.64.0.3")); err != nil {
		t.Errorf("an answered ping failed: %v", err)
	}
}

// TestPingTailscaledGone: a ping that fails because tailscaled is gone
// says nothing of the peer, and leaves its verdict alone.
func TestPingTailscaledGone(t *testing.T) {
	api := Tailscaled(filepath.Join(t.TempDir(), "nothing-here.sock"))
	err := api.Ping(context.Background(), hubIP)
	if !errors.Is(err, errTailscaled) {
		t.Errorf("ping without tailscaled: %v; want errTailscaled", err)
	}

	f := newFakeAPI(testStatus())
	tn := startWatched(t, f, time.Minute)
	fixture.Eventually(t, "ready", tn.Ready)
	ask(tn, "hub")
	fixture.Eventually(t, "hub pinged", func() bool { return f.pings(hubIP) > 0 })
	f.setPing(func(netip.Addr) error { return fmt.Errorf("%w: connection reset", errTailscaled) })
	n := f.pings(hubIP)
	fixture.Eventually(t, "more pings", func() bool { return f.pings(hubIP) > n+2 })
	if !reachable(tn, "hub") {
		t.Error("hub unreachable because tailscaled did not answer its pings")
	}
}

// TestProbeFirstContact: a peer that has not answered a ping since the
// watch connected stays as control says while it fails them for
// firstContact; one that answered before is unreachable at its first
// failed ping.
func TestProbeFirstContact(t *testing.T) {
	f := newFakeAPI(testStatus())
	f.setPing(func(netip.Addr) error { return errDead })
	w := newWatcher(t.Name())
	w.api = f
	w.load(testStatus())
	w.running = true
	w.publishNodes()
	var hub *Node
	for _, n := range w.snap.Load().Nodes {
		if n.Host == "hub" {
			hub = n
		}
	}
	start := time.Now()
	hub.Health.askedAt.Store(start.UnixNano())
	at := start
	round := func() bool {
		var wg sync.WaitGroup
		w.probeOnce(context.Background(), &wg, 500*time.Millisecond, at)
		wg.Wait()
		return hub.Reachable(time.Now().UnixNano())
	}
	for ; at.Sub(start) < firstContact; at = at.Add(time.Second) {
		if !round() {
			t.Fatalf("unreachable %s after the first failed ping to a peer that never answered", at.Sub(start))
		}
	}
	if round() {
		t.Fatalf("reachable after failing pings for %s", at.Sub(start))
	}
	f.setPing(nil)
	if !round() {
		t.Fatal("unreachable after an answered ping")
	}
	f.setPing(func(netip.Addr) error { return errDead })
	if round() {
		t.Fatal("reachable after the first failed ping of a peer that answered before")
	}
}

// BenchmarkProbeRound is one probe round over a tailnet of every size with
// every peer asked for, pings answered at once by a fake LocalAPI: what
// the probe costs this process beyond the pings themselves. A round pings
// at most maxPingRate×interval peers (50 at the default 500ms).
func BenchmarkProbeRound(b *testing.B) {
	for _, peers := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("asked=%d", peers), func(b *testing.B) {
			w := newWatcher(b.Name())
			w.api = newFakeAPI(nil)
			now := time.Now()
			s := &Snapshot{State: Live, Running: true}
			for i := range peers {
				n := &Node{Host: fmt.Sprintf("host%d", i), Online: true, Health: new(Health)}
				n.SetAddrs([]netip.Addr{netip.AddrFrom4([4]byte{100, 64 + byte(i>>16), byte(i >> 8), byte(i)})})
				n.Health.Ask(now.UnixNano())
				s.Nodes = append(s.Nodes, n)
			}
			w.snap.Store(s)
			var wg sync.WaitGroup
			b.ReportAllocs()
			for b.Loop() {
				w.probeOnce(context.Background(), &wg, testProbe, now)
				wg.Wait()
			}
		})
	}
}
