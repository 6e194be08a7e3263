package tailnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"tailscale.com/client/local"
	"tailscale.com/ipn"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/paths"
	"tailscale.com/tailcfg"
)

// localAPI is the part of tailscaled's LocalAPI the plugin uses.
type localAPI interface {
	WatchIPNBus(ctx context.Context, mask ipn.NotifyWatchOpt) (busWatcher, error)
	Status(ctx context.Context) (*ipnstate.Status, error)
	Ping(ctx context.Context, ip netip.Addr) error
}

// busWatcher is an open IPN bus stream.
type busWatcher interface {
	Next() (ipn.Notify, error)
	Close() error
}

// localClient adapts local.Client to localAPI.
type localClient struct{ *local.Client }

func (c localClient) WatchIPNBus(ctx context.Context, mask ipn.NotifyWatchOpt) (busWatcher, error) {
	return c.Client.WatchIPNBus(ctx, mask)
}

// errTailscaled wraps a ping error that says nothing of the peer: the
// LocalAPI could not be reached, or the connection broke.
var errTailscaled = errors.New("tailscaled unreachable")

// Ping sends a disco ping to ip. tailscaled reports some failures, such as
// an expired peer key, inside a successful result: they count as failures.
func (c localClient) Ping(ctx context.Context, ip netip.Addr) error {
	res, err := c.Client.Ping(ctx, ip, tailcfg.PingDisco)
	var opErr *net.OpError
	switch {
	case err != nil && ctx.Err() == nil && (errors.As(err, &opErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
		return fmt.Errorf("%w: %v", errTailscaled, err)
	case err != nil:
		return err
	case res.Err != "":
		return errors.New(res.Err)
	}
	return nil
}

// watchMask asks for a full status first, then peer deltas. It never asks
// for the deprecated NetMap, which newer tailscaled rejects.
// NotifyInitialState is known to every tailscaled, so that one older than
// the other bits (1.86) still sends a first message at once, and is read
// in full then, instead of after its first change.
const watchMask = ipn.NotifyInitialState | ipn.NotifyInitialStatus | ipn.NotifyPeerChanges | ipn.NotifyPeerPatches

// Backoff between reconnects to tailscaled. The cap keeps recovery after a
// tailscaled restart within about a second, and a failed dial of a unix
// socket costs next to nothing.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// watcher keeps one LocalAPI's view of the tailnet up to date. Every plugin
// instance that names the same socket shares one watcher.
type watcher struct {
	socket string // LocalAPI socket path; "" is the platform default
	api    localAPI

	snap atomic.Pointer[snapshot] // nil until the first status was loaded

	mu sync.Mutex
	// mu guards the following fields.
	subs    map[*Tailnet]struct{} // instances told of every new snapshot
	refs    int
	probe   time.Duration   // smallest probe interval asked for; 0 means off
	probing bool            // the probe loop runs
	stale   time.Duration   // smallest stale period asked for; -1 before the first
	ctx     context.Context // cancelled when the last user releases the watcher
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the run loop and, once probing, the probe loop

	// The following fields are only used by the run loop.
	nodes    map[tailcfg.StableNodeID]*node
	healths  map[tailcfg.StableNodeID]*health
	ids      map[tailcfg.NodeID]tailcfg.StableNodeID // for PeersRemoved and patches, which name NodeIDs
	users    map[tailcfg.UserID]string               // login names
	running  bool
	starting bool // tailscaled is (re)starting: NoState or Starting, on its way to Running
	legacy   bool // tailscaled sent no InitialStatus: resync on every message
	warned   bool // the first failure to reach tailscaled was logged
}

// registry holds the running watchers by socket path.
var registry = struct {
	sync.Mutex
	watchers map[string]*watcher
}{watchers: map[string]*watcher{}}

// newAPI returns the LocalAPI client for a socket; tests replace it.
var newAPI = func(socket string) localAPI {
	c := &local.Client{Socket: socket, UseSocketOnly: socket != ""}
	if path := socketPath(socket); path != "" {
		// Dial the socket directly: tailscale's own dialer retries a failed
		// dial for up to 5 s whenever any process named tailscaled runs,
		// which would hold the watch's reconnects and a test suite's
		// failure paths hostage to the machine's own tailscaled.
		c.Dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
	}
	return localClient{c}
}

// socketPath is the unix socket to dial for socket, or "" where tailscale's
// own client must find tailscaled (the default on macOS and Windows).
func socketPath(socket string) string {
	switch {
	case socket != "":
		return socket
	case runtime.GOOS == "linux":
		return paths.DefaultTailscaledSocket()
	}
	return ""
}

// acquire returns the running watcher for socket, starting one if needed,
// and subscribes t to it.
func acquire(t *Tailnet) *watcher {
	registry.Lock()
	defer registry.Unlock()
	w := registry.watchers[t.socket]
	if w == nil {
		api := newAPI(t.socket)
		if t.embedded != nil {
			api = localClient{t.embedded.lc}
		}
		w = &watcher{socket: t.socket, api: api, subs: map[*Tailnet]struct{}{}}
		registry.watchers[t.socket] = w
		w.ctx, w.cancel = context.WithCancel(context.Background())
		w.wg.Go(func() { w.run(w.ctx) })
	}
	w.mu.Lock()
	w.refs++
	w.subs[t] = struct{}{}
	w.configureLocked()
	if w.probe > 0 && !w.probing {
		w.probing = true
		w.wg.Go(func() { w.probeLoop(w.ctx) })
	}
	// Under mu, so that a snapshot published meanwhile is not overwritten
	// by an older one.
	if s := w.snap.Load(); s != nil {
		t.update(s)
	}
	w.mu.Unlock()
	return w
}

// release unsubscribes t and stops the watcher when nobody uses it.
func release(t *Tailnet, w *watcher) {
	registry.Lock()
	w.mu.Lock()
	delete(w.subs, t)
	w.refs--
	w.configureLocked()
	last := w.refs == 0
	w.mu.Unlock()
	if last {
		delete(registry.watchers, w.socket)
	}
	registry.Unlock()
	if last {
		w.cancel()
		w.wg.Wait()
	}
}

// configureLocked sets the shared settings from the instances using the
// watcher: the smallest probe interval and stale period win. w.mu is held.
func (w *watcher) configureLocked() {
	w.probe, w.stale = 0, -1
	for t := range w.subs {
		if t.probe > 0 && (w.probe == 0 || t.probe < w.probe) {
			w.probe = t.probe
		}
		if w.stale < 0 || t.stale < w.stale {
			w.stale = t.stale
		}
	}
}

// publish makes s the current snapshot and hands it to every instance.
func (w *watcher) publish(s *snapshot) {
	w.snap.Store(s)
	peersGauge.WithLabelValues(w.socket).Set(float64(len(s.nodes)))
	lastUpdate.WithLabelValues(w.socket).Set(float64(s.updated.UnixNano()) / 1e9)
	setState(w.socket, s.state)
	w.mu.Lock()
	defer w.mu.Unlock()
	for t := range w.subs {
		t.update(s)
	}
}

// run watches the IPN bus until ctx is cancelled, then returns nil. When
// the stream breaks it keeps the last snapshot, marked lost, and reconnects
// with capped backoff.
func (w *watcher) run(ctx context.Context) error {
	backoff := minBackoff
	setState(w.socket, stateDown)
	for {
		connected, err := w.watchOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		w.degrade()
		if connected {
			backoff = minBackoff
			log.Infof("lost tailscaled at %s: %v; serving the last table while it is stale", w.socketName(), err)
		} else if !w.warned {
			w.warned = true
			log.Warningf("tailscaled not reachable at %s: %v; tailnet names fall through until it is", w.socketName(), err)
		} else {
			log.Debugf("tailscaled not reachable at %s: %v", w.socketName(), err)
		}
		reconnects.WithLabelValues(w.socket).Inc()
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

func (w *watcher) socketName() string {
	if w.socket == "" {
		return "the default socket"
	}
	return w.socket
}

// watchOnce reads one IPN bus stream until it ends. It reports whether a
// first status was loaded from it.
func (w *watcher) watchOnce(ctx context.Context) (connected bool, err error) {
	bw, err := w.api.WatchIPNBus(ctx, watchMask)
	if err != nil {
		return false, fmt.Errorf("watch ipn bus: %w", err)
	}
	defer bw.Close()
	for {
		n, err := bw.Next()
		if err != nil {
			return connected, fmt.Errorf("read ipn bus: %w", err)
		}
		if !connected {
			w.forgetPaths() // before the first table of this stream is published
		}
		changed, err := w.apply(ctx, &n, !connected)
		if err != nil {
			return connected, err
		}
		if !connected || changed {
			w.publishNodes()
		}
		if !connected {
			connected = true
			w.warned = false
			log.Infof("connected to tailscaled at %s", w.socketName())
		}
	}
}

// apply folds one notification into the node set and reports whether it
// changed anything. A notification that replaces the whole view (a new
// netmap for self, or a state change to Running) is resolved by reading
// the full status, which is rare and cheaper than guessing.
func (w *watcher) apply(ctx context.Context, n *ipn.Notify, first bool) (bool, error) {
	if first {
		// A tailscaled too old to know NotifyInitialStatus does not send
		// peer changes either: read the whole status on every message.
		w.legacy = n.InitialStatus == nil
	}
	if w.legacy {
		return true, w.resync(ctx)
	}
	if n.InitialStatus != nil {
		w.load(n.InitialStatus)
		return true, nil
	}
	if n.State != nil {
		was, wasStarting := w.running, w.starting
		w.running = *n.State == ipn.Running
		w.starting = *n.State == ipn.NoState || *n.State == ipn.Starting
		if w.running && !was {
			return true, w.resync(ctx)
		}
		if was != w.running || wasStarting != w.starting {
			return true, nil
		}
	}
	if n.SelfChange != nil {
		return true, w.resync(ctx)
	}
	for id, up := range n.UserProfiles {
		mak(&w.users)[id] = up.LoginName()
	}
	changed := false
	for _, id := range n.PeersRemoved {
		sid, ok := w.ids[id]
		if !ok {
			continue
		}
		delete(w.nodes, sid)
		delete(w.healths, sid)
		delete(w.ids, id)
		changed = true
	}
	for _, tn := range n.PeersChanged {
		w.put(nodeFromTailcfg(tn, false, w.healthOf(tn.StableID), w.users[tn.User]))
		changed = true
	}
	for _, pc := range n.PeerChangedPatch {
		if w.patch(pc) {
			changed = true
		}
	}
	return changed, nil
}

// forgetPaths makes every peer new to the probe, as it is to a tailscaled
// that may have restarted: its first pings may time out (firstContact),
// and its first netmap may be an old one from its disk cache. A peer that
// answered pings before keeps its answer through firstContact, and no
// longer; one that did not stays unreachable until it answers one, or for
// probeWindow at most.
func (w *watcher) forgetPaths() {
	now := time.Now()
	keep, dead := now.Add(firstContact).UnixNano(), now.Add(probeWindow).UnixNano()
	for _, h := range w.healths {
		h.answered.Store(false)
		h.firstAt.Store(0)
		switch v := h.verdict.Load(); {
		case v > 0:
			h.verdict.CompareAndSwap(v, keep)
		case -v > dead:
			h.verdict.CompareAndSwap(v, -dead)
		}
	}
}

// freezeVerdicts makes the probe's verdicts that hold now hold until the
// given time: while tailscaled is gone nothing can renew them, and the
// stale table it leaves is the truth as last known, pings included. A
// peer that answered pings while control said it was offline (as after
// a control restart) would fall back to that otherwise.
func (w *watcher) freezeVerdicts(until int64) {
	now := time.Now().UnixNano()
	for _, h := range w.healths {
		switch v := h.verdict.Load(); {
		case v > now:
			h.verdict.CompareAndSwap(v, until)
		case -v > now:
			h.verdict.CompareAndSwap(v, -until)
		}
	}
}

// patch applies the fields of pc that the table holds, and reports whether
// any of them changed.
func (w *watcher) patch(pc *tailcfg.PeerChange) bool {
	old, ok := w.nodes[w.ids[pc.NodeID]]
	if !ok {
		return false
	}
	nn := *old
	if pc.Online != nil {
		nn.online = *pc.Online
	}
	if pc.KeyExpiry != nil {
		nn.keyExpiry = pc.KeyExpiry.UnixNano()
		if pc.KeyExpiry.IsZero() {
			nn.keyExpiry = 0
		}
	}
	if nn.online == old.online && nn.keyExpiry == old.keyExpiry {
		return false
	}
	w.nodes[nn.id] = &nn
	return true
}

// put stores n under its stable ID, and remembers its NodeID when known.
func (w *watcher) put(n *node) {
	w.nodes[n.id] = n
	if n.nodeID != 0 {
		w.ids[n.nodeID] = n.id
	}
}

func (w *watcher) resync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := w.api.Status(ctx)
	if err != nil {
		return fmt.Errorf("read status: %w", err)
	}
	w.load(st)
	return nil
}

// load replaces the node set with a full status.
func (w *watcher) load(st *ipnstate.Status) {
	w.running = st.BackendState == ipn.Running.String()
	w.starting = st.BackendState == ipn.NoState.String() || st.BackendState == ipn.Starting.String()
	old := w.healths
	w.nodes = make(map[tailcfg.StableNodeID]*node, len(st.Peer)+1)
	w.ids = make(map[tailcfg.NodeID]tailcfg.StableNodeID, len(st.Peer)+1)
	// Only a Running status is the whole tailnet: a restarting tailscaled's
	// has no peers yet, and what the probe knows of them must outlive it.
	if w.running || old == nil {
		w.healths = make(map[tailcfg.StableNodeID]*health, len(st.Peer)+1)
	}
	keep := func(id tailcfg.StableNodeID) *health {
		h := old[id]
		if h == nil {
			h = new(health)
		}
		w.healths[id] = h
		return h
	}
	for id, up := range st.User {
		mak(&w.users)[id] = up.LoginName
	}
	if st.Self != nil {
		w.put(nodeFromStatus(st.Self, true, keep(st.Self.ID), w.users[st.Self.UserID]))
	}
	for _, ps := range st.Peer {
		w.put(nodeFromStatus(ps, false, keep(ps.ID), w.users[ps.UserID]))
	}
}

func (w *watcher) healthOf(id tailcfg.StableNodeID) *health {
	h := w.healths[id]
	if h == nil {
		h = new(health)
		w.healths[id] = h
	}
	return h
}

func (w *watcher) publishNodes() {
	if old := w.snap.Load(); w.starting && old != nil && old.running && old.state != stateDown {
		// A tailscaled that restarts is not Running until control sends it
		// a netmap: meanwhile the last table of the one before is the truth
		// still, as while it was unreachable. A deliberate stop (Stopped,
		// NeedsLogin) falls through at once.
		if old.state == stateLive {
			w.publish(w.staleCopy(old))
		}
		return
	}
	s := &snapshot{state: stateLive, running: w.running, updated: time.Now(), nodes: make([]*node, 0, len(w.nodes))}
	for _, n := range w.nodes {
		s.nodes = append(s.nodes, n)
	}
	w.publish(s)
}

// degrade marks the last snapshot stale when the watch breaks, and down
// once it has been stale for longer than the stale period.
func (w *watcher) degrade() {
	old := w.snap.Load()
	if old == nil || old.state == stateDown {
		return
	}
	s := *old
	switch {
	case old.state == stateLive:
		s = *w.staleCopy(old)
		w.freezeVerdicts(s.staleUntil)
	case time.Since(old.lostAt) >= w.stalePeriod():
		s.state = stateDown
		log.Infof("tailscaled at %s gone for %s; tailnet names fall through", w.socketName(), w.stalePeriod())
	default:
		return
	}
	w.publish(&s)
}

// staleCopy returns old marked stale from now, for the stale period.
func (w *watcher) staleCopy(old *snapshot) *snapshot {
	s := *old
	s.state, s.lostAt = stateStale, time.Now()
	s.staleUntil = s.lostAt.Add(w.stalePeriod()).UnixNano()
	return &s
}

func (w *watcher) stalePeriod() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stale
}

// mak returns *m, making it first if it is nil.
func mak[K comparable, V any](m *map[K]V) map[K]V {
	if *m == nil {
		*m = map[K]V{}
	}
	return *m
}
