package tailnet

import (
	"context"
	"time"
)

// probeWindow is how many probe intervals a query keeps its node probed.
const probeWindow = 10

// probeLoop, started by the first instance that asks for probing, pings,
// every probe interval, the nodes that were asked for in
// the last probeWindow intervals, and marks those that do not answer as
// unreachable. It runs until ctx is cancelled, then returns nil.
func (w *watcher) probeLoop(ctx context.Context) error {
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
		if w.probeInterval() > 0 {
			w.probeOnce(ctx, interval)
		}
	}
}

func (w *watcher) probeInterval() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.probe
}

// probeOnce pings the recently asked-for nodes of the current snapshot, one
// at a time so that a large tailnet cannot flood tailscaled.
func (w *watcher) probeOnce(ctx context.Context, interval time.Duration) {
	s := w.snap.Load()
	if s == nil || s.state != stateLive {
		return
	}
	since := time.Now().Add(-probeWindow * interval).UnixNano()
	for _, n := range s.nodes {
		if n.self || !n.online || n.health.askedAt.Load() < since {
			continue
		}
		addr := n.v4
		if len(addr) == 0 {
			addr = n.v6
		}
		if len(addr) == 0 {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, min(interval, 2*time.Second))
		err := w.api.Ping(pctx, addr[0])
		cancel()
		if ctx.Err() != nil {
			return
		}
		failed := err != nil
		if failed {
			probeFailures.WithLabelValues(w.socket).Inc()
		}
		if n.health.pingFailing.Swap(failed) != failed {
			if failed {
				log.Infof("probe: %s does not answer pings: %v", n.fqdn, err)
			} else {
				log.Infof("probe: %s answers pings again", n.fqdn)
			}
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
