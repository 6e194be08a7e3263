package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tailscale.com/ipn"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/tailcfg"
	"tailscale.com/types/key"

	"github.com/tailhorizon/tailhorizon/test/fixture"
)

// fakeAPI is a LocalAPI whose IPN bus is fed by the test. While down, it
// refuses connections as a stopped tailscaled does.
type fakeAPI struct {
	mu     sync.Mutex
	down   bool
	legacy bool // like a tailscaled that predates NotifyInitialStatus
	status *ipnstate.Status
	bus    chan ipn.Notify        // the open stream; closing it ends the stream
	opened chan struct{}          // receives a value for each stream opened
	ping   func(netip.Addr) error // nil answers every ping
	pinged map[netip.Addr]int     // pings sent, by address
}

func newFakeAPI(st *ipnstate.Status) *fakeAPI {
	return &fakeAPI{status: st, opened: make(chan struct{}, 16)}
}

func (f *fakeAPI) WatchIPNBus(ctx context.Context, mask ipn.NotifyWatchOpt) (BusWatcher, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errors.New("connect: no such file or directory")
	}
	if mask&ipn.NotifyInitialStatus == 0 || mask&ipn.NotifyInitialNetMap != 0 {
		return nil, errors.New("bad mask")
	}
	f.bus = make(chan ipn.Notify, 16)
	if f.legacy {
		f.bus <- ipn.Notify{State: new(ipn.Running)}
	} else {
		f.bus <- ipn.Notify{InitialStatus: f.status}
	}
	f.opened <- struct{}{}
	return &fakeBus{ctx: ctx, ch: f.bus}, nil
}

func (f *fakeAPI) Status(context.Context) (*ipnstate.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errors.New("down")
	}
	return f.status, nil
}

func (f *fakeAPI) Ping(_ context.Context, ip netip.Addr) error {
	f.mu.Lock()
	mak(&f.pinged)[ip]++
	ping := f.ping
	f.mu.Unlock()
	if ping == nil {
		return nil
	}
	return ping(ip)
}

// setPing makes ping answer the pings from now on.
func (f *fakeAPI) setPing(ping func(netip.Addr) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ping = ping
}

// pings returns how many pings ip got.
func (f *fakeAPI) pings(ip netip.Addr) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pinged[ip]
}

// send delivers n on the open stream.
func (f *fakeAPI) send(n ipn.Notify) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bus <- n
}

// kill ends the open stream and refuses new ones, like a stopped tailscaled.
func (f *fakeAPI) kill() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = true
	close(f.bus)
}

func (f *fakeAPI) revive() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = false
}

type fakeBus struct {
	ctx context.Context
	ch  chan ipn.Notify
}

func (b *fakeBus) Next() (ipn.Notify, error) {
	select {
	case n, ok := <-b.ch:
		if !ok {
			return ipn.Notify{}, io.EOF
		}
		return n, nil
	case <-b.ctx.Done():
		return ipn.Notify{}, b.ctx.Err()
	}
}

func (b *fakeBus) Close() error { return nil }

func peerStatus(id int, dnsName, ip string, online bool) *ipnstate.PeerStatus {
	return &ipnstate.PeerStatus{ID: stableID(id), NodeID: tailcfg.NodeID(id), DNSName: dnsName, Online: online,
		TailscaleIPs: []netip.Addr{netip.MustParseAddr(ip)}}
}

func testStatus() *ipnstate.Status {
	return &ipnstate.Status{
		BackendState: "Running",
		Self:         peerStatus(1, "self.ts.net.", "100.64.0.1", false),
		Peer: map[key.NodePublic]*ipnstate.PeerStatus{
			key.NewNode().Public(): peerStatus(2, "hub.ts.net.", "100.64.0.2", true),
			key.NewNode().Public(): peerStatus(3, "alpha.ts.net.", "100.64.0.3", true),
		},
	}
}

// watched is a subscription to the watcher of a fake LocalAPI, as a
// plugin instance holds one, and the last snapshot it was handed.
type watched struct {
	sub  *Subscription
	snap atomic.Pointer[Snapshot]
}

// testProbe is the plugin's default probe interval.
const testProbe = 500 * time.Millisecond

// subscribe subscribes to the watcher of key, reading f, with opts, and
// releases the subscription at the end of the test.
func subscribe(t *testing.T, key string, f *fakeAPI, opts Options) *watched {
	t.Helper()
	w := &watched{}
	w.sub = Acquire(key, func() LocalAPI { return f }, opts, func(s *Snapshot) { w.snap.Store(s) })
	t.Cleanup(w.release)
	return w
}

// release releases the subscription, once.
func (w *watched) release() {
	if w.sub != nil {
		w.sub.Release()
		w.sub = nil
	}
}

// startWatched subscribes to a watcher of f with the plugin's default
// probe and the given stale period.
func startWatched(t *testing.T, f *fakeAPI, stale time.Duration) *watched {
	t.Helper()
	return subscribe(t, t.Name(), f, Options{Probe: testProbe, Stale: stale})
}

// Ready reports whether a first snapshot came.
func (w *watched) Ready() bool { return w.snap.Load() != nil }

// node returns the node called host in the last snapshot, or nil.
func (w *watched) node(host string) *Node {
	for _, n := range w.snap.Load().Nodes {
		if n.Host == host {
			return n
		}
	}
	return nil
}

// state returns the state of the last snapshot.
func (w *watched) state() State { return w.snap.Load().State }

// reachable reports whether host is answered from w's last snapshot.
func reachable(w *watched, host string) bool {
	now := time.Now().UnixNano()
	if !w.snap.Load().Serving(now) {
		return false
	}
	n := w.node(host)
	return n != nil && n.Reachable(now)
}

func TestWatchAppliesChanges(t *testing.T) {
	f := newFakeAPI(testStatus())
	tn := startWatched(t, f, time.Minute)
	fixture.Eventually(t, "ready", tn.Ready)
	if !reachable(tn, "hub") || !reachable(tn, "self") {
		t.Fatal("hub or self not answered after the initial status")
	}

	f.send(ipn.Notify{PeerChangedPatch: []*tailcfg.PeerChange{{NodeID: 2, Online: new(false)}}})
	fixture.Eventually(t, "hub offline", func() bool { return !reachable(tn, "hub") })

	f.send(ipn.Notify{PeersChanged: []*tailcfg.Node{{ID: 4, StableID: stableID(4), Name: "beta.ts.net.", Online: new(true),
		Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.4/32")}}}})
	fixture.Eventually(t, "beta added", func() bool { return reachable(tn, "beta") })

	f.send(ipn.Notify{PeersRemoved: []tailcfg.NodeID{3}})
	fixture.Eventually(t, "alpha removed", func() bool { return tn.node("alpha") == nil })

	f.send(ipn.Notify{State: new(ipn.Stopped)})
	fixture.Eventually(t, "not running", func() bool { return !tn.snap.Load().Running })

	f.send(ipn.Notify{State: new(ipn.Running)})
	fixture.Eventually(t, "running, resynced from status", func() bool { return reachable(tn, "alpha") && reachable(tn, "hub") })
}

func TestWatchStaleThenDownThenRecovers(t *testing.T) {
	f := newFakeAPI(testStatus())
	tn := startWatched(t, f, 300*time.Millisecond)
	fixture.Eventually(t, "ready", tn.Ready)
	<-f.opened

	f.kill()
	fixture.Eventually(t, "stale", func() bool { return tn.state() == Stale })
	if !reachable(tn, "hub") {
		t.Error("a stale table does not answer hub")
	}
	fixture.Eventually(t, "down", func() bool { return tn.state() == Down })

	f.revive()
	<-f.opened
	fixture.Eventually(t, "live again", func() bool { return tn.state() == Live && reachable(tn, "hub") })
}

func TestSharedWatcherStopsWithLastUser(t *testing.T) {
	before := runtime.NumGoroutine()
	f := newFakeAPI(testStatus())
	a := subscribe(t, "shared", f, Options{Probe: testProbe, Stale: time.Minute})
	b := subscribe(t, "shared", f, Options{Probe: testProbe, Stale: time.Minute})
	<-f.opened
	fixture.Eventually(t, "both ready", func() bool { return a.Ready() && b.Ready() })
	select {
	case <-f.opened:
		t.Fatal("two subscriptions to one socket opened two streams")
	default:
	}
	a.release()
	f.send(ipn.Notify{PeerChangedPatch: []*tailcfg.PeerChange{{NodeID: 2, Online: new(false)}}})
	fixture.Eventually(t, "b still updated", func() bool { return !reachable(b, "hub") })
	b.release()
	fixture.Eventually(t, "goroutines gone", func() bool { return runtime.NumGoroutine() <= before })
}

// TestSharedSettingsFollowReload: the smallest probe and stale of the
// instances in use apply, and an instance reloaded away stops counting.
func TestSharedSettingsFollowReload(t *testing.T) {
	f := newFakeAPI(testStatus())
	a := subscribe(t, "reload", f, Options{Probe: time.Second, Stale: time.Minute})
	b := subscribe(t, "reload", f, Options{Probe: 5 * time.Second, Stale: 2 * time.Minute})
	w := a.sub.w
	if b.sub.w != w {
		t.Fatal("two subscriptions to one socket got two watchers")
	}
	if got := w.probeInterval(); got != time.Second {
		t.Errorf("probe = %s; want the smaller, 1s", got)
	}
	a.release()
	if got, stale := w.probeInterval(), w.stalePeriod(); got != 5*time.Second || stale != 2*time.Minute {
		t.Errorf("after a is gone: probe %s, stale %s; want b's 5s and 2m", got, stale)
	}
	b.release()
}

// TestMerge: the settings a shared watcher runs with.
func TestMerge(t *testing.T) {
	cases := []struct {
		name  string
		users []Options
		want  Options
	}{
		{"one", []Options{{Probe: time.Second, Stale: time.Minute}}, Options{Probe: time.Second, Stale: time.Minute}},
		{"the shortest of each", []Options{{Probe: 5 * time.Second, Stale: time.Minute}, {Probe: time.Second, Stale: 2 * time.Minute}},
			Options{Probe: time.Second, Stale: time.Minute}},
		{"probe off for one is not off for all", []Options{{Probe: 0, Stale: time.Minute}, {Probe: 2 * time.Second, Stale: time.Minute}},
			Options{Probe: 2 * time.Second, Stale: time.Minute}},
		{"off for all", []Options{{Stale: time.Minute}, {Stale: time.Hour}}, Options{Stale: time.Minute}},
		{"stale 0 counts", []Options{{Probe: time.Second, Stale: 0}, {Probe: time.Second, Stale: time.Minute}}, Options{Probe: time.Second}},
		{"nobody", nil, Options{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Merge(tc.users); got != tc.want {
				t.Errorf("Merge(%v) = %+v; want %+v", tc.users, got, tc.want)
			}
		})
	}
}

// TestWatchOldTailscaled: without InitialStatus, the status is read again on
// every message, so changes still arrive.
func TestWatchOldTailscaled(t *testing.T) {
	st := testStatus()
	f := newFakeAPI(st)
	f.legacy = true
	tn := startWatched(t, f, time.Minute)
	fixture.Eventually(t, "ready from /status", func() bool { return reachable(tn, "hub") })

	f.mu.Lock()
	next := *st
	next.Peer = map[key.NodePublic]*ipnstate.PeerStatus{key.NewNode().Public(): peerStatus(2, "hub.ts.net.", "100.64.0.2", false)}
	f.status = &next
	f.mu.Unlock()
	f.send(ipn.Notify{Engine: &ipn.EngineStatus{}})
	fixture.Eventually(t, "hub offline after a message", func() bool { return !reachable(tn, "hub") })
}

// TestWatchKnowsUsers: login names come from the status and from the
// profiles that arrive with peer changes.
func TestWatchKnowsUsers(t *testing.T) {
	st := testStatus()
	st.Self.UserID = 7
	st.User = map[tailcfg.UserID]tailcfg.UserProfile{7: {ID: 7, LoginName: "alice@example.com"}}
	f := newFakeAPI(st)
	tn := startWatched(t, f, time.Minute)
	fixture.Eventually(t, "ready", tn.Ready)
	if got := tn.node("self").User; got != "alice@example.com" {
		t.Errorf("self's user = %q; want alice@example.com", got)
	}
	f.send(ipn.Notify{
		UserProfiles: map[tailcfg.UserID]tailcfg.UserProfileView{8: (&tailcfg.UserProfile{ID: 8, LoginName: "bob@example.com"}).View()},
		PeersChanged: []*tailcfg.Node{{ID: 9, StableID: stableID(9), Name: "laptop.ts.net.", User: 8, Online: new(true),
			Addresses: []netip.Prefix{netip.MustParsePrefix("100.64.0.9/32")}}},
	})
	fixture.Eventually(t, "laptop with bob", func() bool {
		n := tn.node("laptop")
		return n != nil && n.User == "bob@example.com"
	})
}

// TestWatchTailscaled186: tailscaled 1.86 gives peers no NodeID in its
// status; every peer still gets its own entry, keyed by its stable ID, and
// the table is full from the first message on.
func TestWatchTailscaled186(t *testing.T) {
	st := testStatus()
	for _, ps := range st.Peer {
		ps.NodeID = 0
	}
	st.Self.NodeID = 0
	f := newFakeAPI(st)
	f.legacy = true
	tn := startWatched(t, f, time.Minute)
	fixture.Eventually(t, "ready", tn.Ready)
	for _, host := range []string{"hub", "alpha", "self"} {
		if !reachable(tn, host) {
			t.Errorf("%s not answered from the first message of a 1.86 bus", host)
		}
	}
}

// TestWatchTailscaledRestarting: a tailscaled that comes back Starting (or
// NoState) after a restart, with no netmap yet, leaves the last table
// served, stale, until it is Running; a deliberate stop falls through at
// once.
func TestWatchTailscaledRestarting(t *testing.T) {
	f := newFakeAPI(testStatus())
	tn := startWatched(t, f, time.Minute)
	fixture.Eventually(t, "ready", tn.Ready)
	<-f.opened

	f.kill()
	starting := testStatus()
	starting.BackendState, starting.Peer = "Starting", nil
	f.mu.Lock()
	f.status = starting
	f.mu.Unlock()
	f.revive()
	<-f.opened
	fixture.Eventually(t, "the starting status read", func() bool { return tn.state() == Stale })
	time.Sleep(50 * time.Millisecond)
	if !reachable(tn, "hub") {
		t.Fatal("hub not answered while tailscaled restarts")
	}

	f.send(ipn.Notify{State: new(ipn.Stopped)})
	fixture.Eventually(t, "stopped falls through", func() bool { return !reachable(tn, "hub") })
}

// TestWatchReconnectKeepsAnswers: after tailscaled restarts, a peer that
// answered pings before stays reachable for firstContact although the
// first status says it is offline (a netmap from the disk cache) and its
// first pings fail (its peers do not know the new disco key yet).
func TestWatchReconnectKeepsAnswers(t *testing.T) {
	f := newFakeAPI(testStatus())
	tn := startWatched(t, f, time.Minute)
	fixture.Eventually(t, "ready", tn.Ready)
	<-f.opened
	ask(tn, "hub")
	fixture.Eventually(t, "hub answered a ping", func() bool { return tn.node("hub").Health.answered.Load() })

	f.setPing(func(netip.Addr) error { return errDead })
	f.kill()
	restarted := testStatus()
	for _, ps := range restarted.Peer {
		ps.Online = false
	}
	f.mu.Lock()
	f.status = restarted
	f.mu.Unlock()
	f.revive()
	<-f.opened
	fixture.Eventually(t, "the new status read", func() bool { return tn.state() == Live })
	if !reachable(tn, "hub") {
		t.Error("hub unreachable right after tailscaled came back")
	}
}

// TestWatchRestartKeepsHealth: the status of a restarting tailscaled has
// no peers; what the probe knew of them survives it.
func TestWatchRestartKeepsHealth(t *testing.T) {
	w := newWatcher(t.Name())
	w.load(testStatus())
	var hub *Health
	for _, n := range w.nodes {
		if n.Host == "hub" {
			hub = n.Health
		}
	}
	starting := testStatus()
	starting.BackendState, starting.Peer = "NoState", nil
	w.load(starting)
	w.load(testStatus())
	for _, n := range w.nodes {
		if n.Host == "hub" && n.Health != hub {
			t.Error("hub's health was replaced across a restarting tailscaled's empty status")
		}
	}
}

// TestWatchLostKeepsVerdicts: when tailscaled goes away, the stale table
// keeps what the probe last knew, both ways, until it stops being served;
// a reconnect gives a peer that answered firstContact to answer again.
func TestWatchLostKeepsVerdicts(t *testing.T) {
	st := testStatus()
	for _, ps := range st.Peer {
		ps.Online = ps.DNSName == "alpha.ts.net." // control is behind for hub, and for alpha
	}
	w := newWatcher(t.Name())
	w.opts.Stale = time.Hour
	w.load(st)
	w.publishNodes()
	health := map[string]*Health{}
	for _, n := range w.nodes {
		health[n.Host] = n.Health
	}
	now := time.Now()
	health["hub"].verdict.Store(now.Add(time.Second).UnixNano())
	health["alpha"].verdict.Store(-now.Add(time.Second).UnixNano())

	w.degrade()
	later := now.Add(time.Minute).UnixNano()
	for _, n := range w.snap.Load().Nodes {
		if got, want := n.Reachable(later), n.Host == "hub" || n.Self; got != want {
			t.Errorf("%s reachable a minute into the stale period: %v; want %v", n.Host, got, want)
		}
	}

	w.forgetPaths()
	if v, keep := health["hub"].verdict.Load(), now.Add(firstContact).UnixNano(); v < keep || v > time.Now().Add(firstContact).UnixNano() {
		t.Errorf("hub's verdict after a reconnect holds %s; want firstContact", time.Duration(v-now.UnixNano()))
	}
	if v := -health["alpha"].verdict.Load(); v > time.Now().Add(probeWindow).UnixNano() {
		t.Errorf("alpha's verdict after a reconnect holds %s; want probeWindow at most", time.Duration(v-now.UnixNano()))
	}
}

// stableID is the StableNodeID tests give the node with NodeID id.
func stableID(id int) tailcfg.StableNodeID {
	return tailcfg.StableNodeID(fmt.Sprintf("n%dCNTRL", id))
}
