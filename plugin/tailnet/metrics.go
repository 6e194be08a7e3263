package tailnet

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/table"
)

// result is what became of a query; its name is the result label.
type result int

const (
	resultAnswer      result = iota // records from the live table
	resultStale                     // records from the table of a lost tailscaled
	resultNoData                    // the name exists, the type does not
	resultNXDomain                  // no such name, or unreachable without fallthrough
	resultFallthrough               // no such name, or an apex type not ours, passed to the next plugin
	resultOffline                   // the node is offline or fails its probe
	resultDown                      // this node is not Running, or tailscaled is gone
	resultService                   // a Tailscale Service's VIPs
	resultSvcOffline                // no host of the service is reachable, passed on
	resultRecord                    // control's extra records
	numResults
)

var resultNames = [numResults]string{"answer", "stale", "nodata", "nxdomain", "fallthrough", "offline_fallthrough", "down_fallthrough",
	"service", "service_offline_fallthrough", "record"}

// resultOf is the result of answer a from tbl: passed on when nothing it
// stands for is reachable, else NODATA, stale, or what answered.
func resultOf(a table.Answer, tbl *table.Table) result {
	switch {
	case !a.Reachable && a.Kind == table.Service:
		return resultSvcOffline
	case !a.Reachable:
		return resultOffline
	case len(a.RRs) == 0:
		return resultNoData
	case tbl.Stale():
		return resultStale
	case a.Kind == table.Service:
		return resultService
	case a.Kind == table.Record:
		return resultRecord
	}
	return resultAnswer
}

var (
	requests = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "requests_total",
		Help:      "Counter of queries for the tailnet zones, by result.",
	}, []string{"server", "view", "result"})
)
