package table

import (
	"time"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/zone"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
)

// Why returns why q is not answered at now (unix nanoseconds) by a table
// that serves: Unknown when nothing has the name, else why the first of
// its nodes that is not reachable is not (a service with no host is
// Offline); Unset when one is reachable.
func (t *Table) Why(q Question, now int64) policy.Reason {
	e := t.names[zone.HostLabel(q.Name, q.Zone)]
	if e == nil {
		return policy.Unknown
	}
	for _, n := range e.nodes {
		if n.Reachable(now) {
			return policy.Unset
		}
	}
	for _, n := range e.nodes {
		return n.Why(now)
	}
	return policy.Offline
}

// Down returns why t serves nothing: NotRunning when this node is not
// Running, Unreachable when tailscaled is gone (or never answered, for a
// nil t), or its stale period is over.
func (t *Table) Down() policy.Reason {
	if t != nil && t.snap.State != watch.Down && !t.snap.Running {
		return policy.NotRunning
	}
	return policy.Unreachable
}

// StaleFor returns, for a stale table, how long tailscaled has been lost
// at now; 0 for a live one.
func (t *Table) StaleFor(now time.Time) time.Duration {
	if !t.Stale() {
		return 0
	}
	return now.Sub(t.snap.LostAt)
}
