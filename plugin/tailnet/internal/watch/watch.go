// Package watch keeps a live view of the tailnet from tailscaled's LocalAPI
// (or an embedded node's): it watches the IPN bus, probes the peers asked
// for, and hands each subscriber an immutable Snapshot whenever the view
// changes. Plugin instances that name the same LocalAPI share one watcher,
// across reloads; their settings are merged by Merge.
package watch

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	clog "github.com/coredns/coredns/plugin/pkg/log"

	"tailscale.com/ipn"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/tailcfg"

	"github.com/tailhorizon/tailhorizon/internal/shared"
)

var log = clog.NewWithPlugin("tailnet")

// Backoff between reconnects to tailscaled. The cap keeps recovery after a
// tailscaled restart within about a second, and a failed dial of a unix
// socket costs next to nothing.
const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// Options are one instance's settings for the watcher it shares.
type Options struct {
	Probe time.Duration // ping the peers asked for this often; 0 is off
	Stale time.Duration // how long a lost tailscaled's last view is served
}

// Merge returns the settings a shared watcher runs with: the shortest
// probe interval of those that probe (off only if none does), and the
// shortest stale period. It is pure, and the zero Options of no users.
func Merge(users []Options) Options {
	var m Options
	for i, o := range users {
		if o.Probe > 0 && (m.Probe == 0 || o.Probe < m.Probe) {
			m.Probe = o.Probe
		}
		if i == 0 || o.Stale < m.Stale {
			m.Stale = o.Stale
		}
	}
	return m
}

// Subscription is one instance's use of a shared watcher.
type Subscription struct {
	key        string
	opts       Options
	api        func() LocalAPI // makes the client, if this subscription starts the watcher
	onSnapshot func(*Snapshot)
	w          *watcher // the shared watcher; set by Acquire
	told       bool     // onSnapshot was called; guarded by the watcher's mu
}

// registry holds the running watchers by key.
var registry = shared.Registry[*watcher, Subscription]{Start: newWatcher}

// Acquire subscribes to the watcher of key, starting it if it does not run
// yet: key names the LocalAPI (its socket path, "" for the platform's
// default, or an embedded node's name) and is the metrics' socket label;
// api makes the client when the watcher starts. onSnapshot is called with
// the current snapshot, if there is one, before Acquire returns, and with
// every new one after that, from the watcher's goroutine, never on a
// query's path; it must not block.
func Acquire(key string, api func() LocalAPI, opts Options, onSnapshot func(*Snapshot)) *Subscription {
	s := &Subscription{key: key, opts: opts, api: api, onSnapshot: onSnapshot}
	s.w = registry.Acquire(key, s)
	return s
}

// Release ends the subscription, and stops the watcher when it was the
// last one.
func (s *Subscription) Release() { registry.Release(s.key, s) }

// watcher keeps one LocalAPI's view of the tailnet up to date. Every
// subscription with the same key shares one watcher.
type watcher struct {
	socket string                   // the key: the metrics' label
	snap   atomic.Pointer[Snapshot] // nil until the first status was loaded
	ctx    context.Context          // cancelled by Stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // the run loop and, once probing, the probe loop
	// api is the client: set by the first Configure, before the loops
	// start, and never changed.
	api LocalAPI

	mu sync.Mutex
	// mu guards the following fields.
	subs    []*Subscription // told of every new snapshot
	opts    Options         // Merge of the subscriptions' options
	probing bool            // the probe loop runs

	// The following fields are only used by the run loop.
	nodes    map[tailcfg.StableNodeID]*Node
	healths  map[tailcfg.StableNodeID]*Health
	ids      map[tailcfg.NodeID]tailcfg.StableNodeID // for PeersRemoved and patches, which name NodeIDs
	users    map[tailcfg.UserID]string               // login names
	running  bool
	starting bool // tailscaled is (re)starting: NoState or Starting, on its way to Running
	legacy   bool // tailscaled sent no InitialStatus: resync on every message
	warned   bool // the first failure to reach tailscaled was logged
	// What control pushed besides the nodes, from the last full status.
	rawRecords []tailcfg.DNSRecord // as control sent them; records is what parses
	records    []Record
	services   []Service
	suffix     string
	dnsConfig  dnsConfigSource // what this connection's dns-config endpoint is good for
}

func newWatcher(key string) *watcher {
	w := &watcher{socket: key}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

// Configure implements shared.Service: the first call makes the client
// and starts the watch loop; every call merges the subscriptions'
// options, starts the probe loop when one asks for it, and tells a new
// subscription of the current snapshot. It holds mu while it does, so that
// a snapshot published meanwhile is not overwritten by an older one.
func (w *watcher) Configure(subs []*Subscription) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.api == nil {
		w.api = subs[0].api()
		w.wg.Go(func() { w.run(w.ctx) })
	}
	w.subs = subs
	opts := make([]Options, len(subs))
	for i, s := range subs {
		opts[i] = s.opts
	}
	w.opts = Merge(opts)
	if w.opts.Probe > 0 && !w.probing {
		w.probing = true
		w.wg.Go(func() { w.probeLoop(w.ctx) })
	}
	if snap := w.snap.Load(); snap != nil {
		for _, s := range subs {
			if !s.told {
				s.told = true
				s.onSnapshot(snap)
			}
		}
	}
}

// Stop implements shared.Service.
func (w *watcher) Stop() {
	w.cancel()
	w.wg.Wait()
}

// publish makes s the current snapshot and hands it to every subscriber.
func (w *watcher) publish(s *Snapshot) {
	w.snap.Store(s)
	peersGauge.WithLabelValues(w.socket).Set(float64(len(s.Nodes)))
	lastUpdate.WithLabelValues(w.socket).Set(float64(s.Updated.UnixNano()) / 1e9)
	setState(w.socket, s.State)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, sub := range w.subs {
		sub.told = true
		sub.onSnapshot(s)
	}
}

// run watches the IPN bus until ctx is cancelled, then returns nil. When
// the stream breaks it keeps the last snapshot, marked lost, and reconnects
// with capped backoff.
func (w *watcher) run(ctx context.Context) error {
	backoff := minBackoff
	setState(w.socket, Down)
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
			log.Warningf("tailscaled not reachable at %s: %v; %s", w.socketName(), err, w.meanwhile())
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

// meanwhile says what is answered while tailscaled is not reachable.
func (w *watcher) meanwhile() string {
	if s := w.snap.Load(); s != nil && s.State == Stale {
		return "serving the last table while it is stale"
	}
	return "tailnet names are not answered until it is"
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
			w.dnsConfig = dnsConfigUnknown
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
		w.control(ctx, n.InitialStatus)
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
		nn.Online = *pc.Online
	}
	if pc.KeyExpiry != nil {
		nn.KeyExpiry = pc.KeyExpiry.UnixNano()
		if pc.KeyExpiry.IsZero() {
			nn.KeyExpiry = 0
		}
	}
	if nn.Online == old.Online && nn.KeyExpiry == old.KeyExpiry {
		return false
	}
	w.nodes[nn.ID] = &nn
	return true
}

// put stores n under its stable ID, and remembers its NodeID when known.
func (w *watcher) put(n *Node) {
	w.nodes[n.ID] = n
	if n.NodeID != 0 {
		w.ids[n.NodeID] = n.ID
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
	w.control(ctx, st)
	return nil
}

// load replaces the node set with a full status.
func (w *watcher) load(st *ipnstate.Status) {
	w.running = st.BackendState == ipn.Running.String()
	w.starting = st.BackendState == ipn.NoState.String() || st.BackendState == ipn.Starting.String()
	old := w.healths
	w.nodes = make(map[tailcfg.StableNodeID]*Node, len(st.Peer)+1)
	w.ids = make(map[tailcfg.NodeID]tailcfg.StableNodeID, len(st.Peer)+1)
	// Only a Running status is the whole tailnet: a restarting tailscaled's
	// has no peers yet, and what the probe knows of them must outlive it.
	if w.running || old == nil {
		w.healths = make(map[tailcfg.StableNodeID]*Health, len(st.Peer)+1)
	}
	keep := func(id tailcfg.StableNodeID) *Health {
		h := old[id]
		if h == nil {
			h = new(Health)
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

func (w *watcher) healthOf(id tailcfg.StableNodeID) *Health {
	h := w.healths[id]
	if h == nil {
		h = new(Health)
		w.healths[id] = h
	}
	return h
}

func (w *watcher) publishNodes() {
	if old := w.snap.Load(); w.starting && old != nil && old.Running && old.State != Down {
		// A tailscaled that restarts is not Running until control sends it
		// a netmap: meanwhile the last table of the one before is the truth
		// still, as while it was unreachable. A deliberate stop (Stopped,
		// NeedsLogin) falls through at once.
		if old.State == Live {
			w.publish(w.staleCopy(old))
		}
		return
	}
	s := &Snapshot{State: Live, Running: w.running, Updated: time.Now(), Nodes: make([]*Node, 0, len(w.nodes)),
		Records: w.records, Services: w.services, Suffix: w.suffix}
	for _, n := range w.nodes {
		s.Nodes = append(s.Nodes, n)
	}
	w.publish(s)
}

// degrade marks the last snapshot stale when the watch breaks, and down
// once it has been stale for longer than the stale period.
func (w *watcher) degrade() {
	old := w.snap.Load()
	if old == nil || old.State == Down {
		return
	}
	s := *old
	switch {
	case old.State == Live:
		s = *w.staleCopy(old)
		w.freezeVerdicts(s.StaleUntil)
	case time.Since(old.LostAt) >= w.stalePeriod():
		s.State = Down
		log.Infof("tailscaled at %s gone for %s; tailnet names are no longer answered", w.socketName(), w.stalePeriod())
	default:
		return
	}
	w.publish(&s)
}

// staleCopy returns old marked stale from now, for the stale period.
func (w *watcher) staleCopy(old *Snapshot) *Snapshot {
	s := *old
	s.State, s.LostAt = Stale, time.Now()
	s.StaleUntil = s.LostAt.Add(w.stalePeriod()).UnixNano()
	return &s
}

func (w *watcher) stalePeriod() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.opts.Stale
}

// mak returns *m, making it first if it is nil.
func mak[K comparable, V any](m *map[K]V) map[K]V {
	if *m == nil {
		*m = map[K]V{}
	}
	return *m
}
