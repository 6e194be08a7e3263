package table

import (
	"fmt"
	"strings"
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

// Peek is Answer without telling the probe: what a query would get, for
// the trace, which must change nothing.
func (t *Table) Peek(q Question, now int64) Answer {
	c := *t
	c.cfg.Probe = false
	return c.Answer(q, now)
}

// Knows says in a few words what t has for q's name at now: the extra
// records, or the host, service or tag group and the state of its nodes.
func (t *Table) Knows(q Question, now int64) string {
	e := t.names[zone.HostLabel(q.Name, q.Zone)]
	if rs := t.recordsOf(q.Name, e); rs != nil {
		return fmt.Sprintf("%d extra records from control", len(rs.rrs))
	}
	if e == nil {
		return "no host, service, extra record, alias or tag of that name"
	}
	var what string
	switch {
	case e.service:
		what = "Tailscale Service"
	case e.host == "":
		what = "tag group"
	case e.alias:
		what = "alias of host " + e.host
	default:
		what = "host " + e.host
	}
	var nodes []string
	for _, n := range e.nodes {
		nodes = append(nodes, NodeState(n, now))
	}
	if len(nodes) == 0 {
		return what + " with no host"
	}
	return what + ": " + strings.Join(nodes, "; ")
}

// NodeState says how n stands at now: "hub.tail.ts.net. reachable (online,
// probe ok in 2ms)".
func NodeState(n *watch.Node, now int64) string {
	state := "reachable"
	if why := n.Why(now); why != policy.Unset {
		state = why.String()
	}
	var facts []string
	if n.Self {
		facts = append(facts, "this node")
	} else if n.Online {
		facts = append(facts, "online")
	} else {
		facts = append(facts, "offline")
	}
	facts = append(facts, "probe "+ProbeResult(n, now))
	if n.KeyExpiry != 0 {
		facts = append(facts, "key expires "+time.Unix(0, n.KeyExpiry).UTC().Format(time.RFC3339))
	}
	return n.FQDN + " " + state + " (" + strings.Join(facts, ", ") + ")"
}

// ProbeResult says what the probe's verdict on n is at now: "ok in 2ms",
// "failed", "none" (never probed, or its verdict has lapsed).
func ProbeResult(n *watch.Node, now int64) string {
	alive, until := n.Health.Verdict()
	switch {
	case until <= now:
		return "none"
	case !alive:
		return "failed"
	case n.Health.RTT() > 0:
		return "ok in " + n.Health.RTT().Round(100*time.Microsecond).String()
	}
	return "ok"
}

// Snapshot returns what t was built from; nil for a nil t.
func (t *Table) Snapshot() *watch.Snapshot {
	if t == nil {
		return nil
	}
	return t.snap
}
