package watch

import "time"

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
