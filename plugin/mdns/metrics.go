package mdns

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// result is what became of a query; its name is the result label.
type result int

const (
	resultAnswer      result = iota // records from the cache
	resultLookup                    // records after waiting on a lookup
	resultNoData                    // the host answered, the type does not exist
	resultNXDomain                  // no answer on the LAN, without fallthrough
	resultFallthrough               // no answer on the LAN, or an apex type not ours, passed to the next plugin
	resultBusy                      // too many lookups in flight, passed on
	resultDown                      // no multicast interface to ask on, passed on
	numResults
)

var resultNames = [numResults]string{"answer", "lookup", "nodata", "nxdomain", "fallthrough", "busy_fallthrough", "down_fallthrough"}

// requests counts the queries by result. The resolver's metrics, by
// interface list, are in internal/lan.
var requests = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: plugin.Namespace,
	Subsystem: name,
	Name:      "requests_total",
	Help:      "Counter of queries for the mdns zones, by result.",
}, []string{"server", "view", "result"})
