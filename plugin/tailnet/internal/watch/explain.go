package watch

import (
	"time"

	"github.com/tailhorizon/tailhorizon/internal/policy"
)

// RTT returns how long the last answered ping took; 0 if none did.
func (h *Health) RTT() time.Duration { return time.Duration(h.rtt.Load()) }

// Verdict returns the probe's last verdict: whether the node answered its
// last ping, and until when that holds, in unix nanoseconds; until is 0
// when the probe has no verdict.
func (h *Health) Verdict() (alive bool, until int64) {
	switch v := h.verdict.Load(); {
	case v > 0:
		return true, v
	case v < 0:
		return false, -v
	}
	return false, 0
}

// Why returns why n is not reachable at now (unix nanoseconds), in the
// order Reachable decides it; policy.Unset when it is reachable.
func (n *Node) Why(now int64) policy.Reason {
	switch {
	case n.Reachable(now):
		return policy.Unset
	case n.KeyExpired(now):
		return policy.KeyExpired
	}
	if alive, until := n.Health.Verdict(); !alive && until > now {
		return policy.ProbeFailed
	}
	return policy.Offline
}
