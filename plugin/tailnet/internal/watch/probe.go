package watch

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"
)

// Probing: control learns of a crash or a power cut only when its poll
// times out (about 10 s for headscale, never for a link cut without a
// FIN), and reports a healthy peer offline while it restarts. So every
// peer asked for recently is pinged (disco, peer to peer, no control
// involved) every probe interval, and a fresh result beats control's
// online bit in node.reachable.
const (
	// defaultProbe is the probe interval unless the Corefile says otherwise.
	// With the ping timeout of the same length, a peer that dies is known
	// dead after 0.5–1 s, 0.75 s in the median; see docs/benchmarks.md.
	defaultProbe = 500 * time.Millisecond

	// probeWindow is how long a query keeps its nodes probed.
	probeWindow = 30 * time.Second

	// maxPingRate bounds the pings per second sent to tailscaled. Past
	// maxPingRate×interval asked-for peers each one is pinged less often,
	// in turn, oldest first.
	maxPingRate = 100

	// firstContact is how long a peer that has not answered a ping since
	// the watch (re)connected may fail them and stay as control says. The
	// first pings to a peer can time out while tailscaled finds a path and,
	// after tailscaled restarted, until control has told the peer its new
	// disco key (1 to 3 s against headscale). A peer that answered once is
	// unreachable at its first failure.
	firstContact = 5 * time.Second

	// maxPingTimeout caps the ping timeout of a long probe interval.
	maxPingTimeout = 2 * time.Second
)

// probeLoop, started by the first instance that asks for probing, pings,
// every probe interval, the nodes asked for in the last probeWindow, and
// records for each whether it answered. It runs until ctx is cancelled,
// then returns nil.
func (w *watcher) probeLoop(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		interval := w.probeInterval()
		if interval == 0 {
			interval = time.Second // the instances that probed were reloaded away
		}
		timer := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		if interval := w.probeInterval(); interval > 0 {
			w.probeOnce(ctx, &wg, interval, time.Now())
		}
	}
}

func (w *watcher) probeInterval() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.opts.Probe
}

// probeOnce starts a ping to each node of the current snapshot that is due:
// asked for within probeWindow, no ping out, at most maxPingRate×interval
// of them, those pinged longest ago first. Each ping runs on its own
// goroutine, tracked by wg, and records its result when it ends.
func (w *watcher) probeOnce(ctx context.Context, wg *sync.WaitGroup, interval time.Duration, now time.Time) {
	s := w.snap.Load()
	if s == nil || s.State != Live {
		return
	}
	due := w.duePeers(s, now)
	budget := max(1, int(maxPingRate*interval/time.Second))
	// A result holds until the node's next result is due, with a margin of
	// one round: longer when the budget makes the rounds slower.
	rounds := (len(due) + budget - 1) / budget
	timeout := min(interval, maxPingTimeout)
	valid := time.Duration(rounds+1)*interval + timeout
	if len(due) > budget {
		sort.Slice(due, func(i, j int) bool {
			return due[i].Health.probedAt.Load() < due[j].Health.probedAt.Load()
		})
		due = due[:budget]
	}
	for _, n := range due {
		addr := n.V4
		if len(addr) == 0 {
			addr = n.V6
		}
		h := n.Health
		if !h.inFlight.CompareAndSwap(false, true) {
			continue
		}
		h.probedAt.Store(now.UnixNano())
		h.firstAt.CompareAndSwap(0, now.UnixNano())
		pings.WithLabelValues(w.socket).Inc()
		wg.Go(func() {
			defer h.inFlight.Store(false)
			pctx, cancel := context.WithTimeout(ctx, timeout)
			sent := time.Now()
			err := w.api.Ping(pctx, addr[0])
			cancel()
			if ctx.Err() != nil || errors.Is(err, errTailscaled) {
				return // says nothing of the peer
			}
			if s := w.snap.Load(); s.State != Live {
				return // the stream broke meanwhile: the verdicts are frozen
			}
			until := time.Now().Add(valid).UnixNano()
			if err == nil {
				h.rtt.Store(int64(time.Since(sent)))
				h.answered.Store(true)
				if h.Record(true, until) {
					log.Infof("probe: %s answers pings again", n.FQDN)
				}
				return
			}
			probeFailures.WithLabelValues(w.socket).Inc()
			if !h.answered.Load() && now.Sub(time.Unix(0, h.firstAt.Load())) < firstContact {
				return
			}
			if h.Record(false, until) {
				log.Infof("probe: %s does not answer pings: %v", n.FQDN, err)
			}
		})
	}
}

// duePeers returns the peers of s asked for since now-probeWindow that
// have an address to ping. Expired peers are left out: they are
// unreachable whatever a ping says.
func (w *watcher) duePeers(s *Snapshot, now time.Time) []*Node {
	since := now.Add(-probeWindow).UnixNano()
	var due []*Node
	for _, n := range s.Nodes {
		if n.Self || n.Health.Asked() < since || len(n.V4)+len(n.V6) == 0 {
			continue
		}
		if n.KeyExpired(now.UnixNano()) {
			continue
		}
		due = append(due, n)
	}
	return due
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
