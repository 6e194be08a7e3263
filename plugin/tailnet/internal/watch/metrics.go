package watch

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// subsystem is the metrics' subsystem: the watch's metrics are the tailnet
// plugin's.
const subsystem = "tailnet"

var (
	peersGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "peers",
		Help:      "Nodes in the table, this node included.",
	}, []string{"socket"})

	stateGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "state",
		Help:      "1 for the current state of the watch of tailscaled (live, stale or down), 0 for the others.",
	}, []string{"socket", "state"})

	reconnects = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "watch_reconnects_total",
		Help:      "Counter of attempts to reconnect to tailscaled's IPN bus.",
	}, []string{"socket"})

	lastUpdate = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "last_update_timestamp_seconds",
		Help:      "When the table was last updated from tailscaled, in seconds since the epoch.",
	}, []string{"socket"})

	pings = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "probe_pings_total",
		Help:      "Counter of probe pings sent to peers.",
	}, []string{"socket"})

	probeFailures = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: subsystem,
		Name:      "probe_failures_total",
		Help:      "Counter of probe pings that a peer did not answer.",
	}, []string{"socket"})
)

func setState(socket string, s State) {
	for _, each := range []State{Live, Stale, Down} {
		stateGauge.WithLabelValues(socket, each.String()).Set(b2f(each == s))
	}
}
