package lan

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Why a lookup was sent: the values of the reason label of lookups_total.
const (
	reasonMiss    = "miss"    // a query found nothing in the cache
	reasonRefresh = "refresh" // an entry asked for near its expiry
	reasonBrowse  = "browse"  // a host found by browsing a service type
)

// Why a packet or a record was ignored: the reason label of rejected_total.
const (
	rejectInterface      = "interface"        // arrived on an interface not listened on
	rejectTTL            = "ttl"              // IP TTL or hop limit not 255: forwarded by a router
	rejectOffLink        = "off_link"         // a unicast response from a source not on the receiving link
	rejectMalformed      = "malformed"        // not a DNS message, or not a valid mDNS response
	rejectUnasked        = "unasked"          // a host nobody asked for
	rejectAddress        = "address"          // link-local, tailnet or other unusable address
	rejectOffLinkAddress = "off_link_address" // an address outside the receiving interface's prefixes
)

// The metrics of the resolvers, labelled with their interface list.
var (
	entriesGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "entries",
		Help:      "Hosts in the cache, negative entries included.",
	}, []string{"interfaces"})

	evictions = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "evictions_total",
		Help:      "Counter of cache entries evicted to keep the cache within its size.",
	}, []string{"interfaces"})

	lookups = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "lookups_total",
		Help:      "Counter of host lookups sent on the LAN, by reason.",
	}, []string{"interfaces", "reason"})

	rejected = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "rejected_total",
		Help:      "Counter of received mDNS packets or address records ignored, by reason.",
	}, []string{"interfaces", "reason"})

	lookupDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "lookup_duration_seconds",
		Help:      "Histogram of the time from sending a lookup to its first answer, or to its end without one.",
		Buckets:   []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"interfaces", "answered"})

	listeningGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "listening_interfaces",
		Help:      "Interfaces the resolver listens and asks on.",
	}, []string{"interfaces"})
)
