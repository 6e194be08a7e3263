package tailnet

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// result is what became of a query; its name is the result label.
type result int

const (
	resultAnswer      result = iota // records from the live table
	resultStale                     // records from the table of a lost tailscaled
	resultNoData                    // the name exists, the type does not
	resultNXDomain                  // no such name, or unreachable without fallthrough
	resultFallthrough               // no such name, passed to the next plugin
	resultOffline                   // the node is offline or fails its probe
	resultDown                      // this node is not Running, or tailscaled is gone
	numResults
)

var resultNames = [numResults]string{"answer", "stale", "nodata", "nxdomain", "fallthrough", "offline_fallthrough", "down_fallthrough"}

var (
	requests = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "requests_total",
		Help:      "Counter of queries for the tailnet zones, by result.",
	}, []string{"server", "view", "result"})

	peersGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "peers",
		Help:      "Nodes in the table, this node included.",
	}, []string{"socket"})

	stateGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "state",
		Help:      "1 for the current state of the watch of tailscaled (live, stale or down), 0 for the others.",
	}, []string{"socket", "state"})

	reconnects = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "watch_reconnects_total",
		Help:      "Counter of attempts to reconnect to tailscaled's IPN bus.",
	}, []string{"socket"})

	lastUpdate = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "last_update_timestamp_seconds",
		Help:      "When the table was last updated from tailscaled, in seconds since the epoch.",
	}, []string{"socket"})

	pings = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "probe_pings_total",
		Help:      "Counter of probe pings sent to peers.",
	}, []string{"socket"})

	probeFailures = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "probe_failures_total",
		Help:      "Counter of probe pings that a peer did not answer.",
	}, []string{"socket"})
)

func setState(socket string, s state) {
	for _, each := range []state{stateLive, stateStale, stateDown} {
		stateGauge.WithLabelValues(socket, each.String()).Set(b2f(each == s))
	}
}
