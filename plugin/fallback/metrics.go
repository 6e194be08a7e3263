package fallback

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Reasons a query went to the upstreams, besides the chain's rcode
// ("nxdomain", "servfail", "refused"): the values of the reason label.
const (
	reasonFellOff    = "fell_off"    // no plugin after fallback answered
	reasonACME       = "acme"        // _acme-challenge names always go public
	reasonPublicOnly = "public_only" // the name's policy allows only the public answer
)

var (
	requests = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "requests_total",
		Help:      "Counter of queries sent to the fallback upstreams, by reason.",
	}, []string{"server", "view", "reason"})

	upstreamErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "upstream_errors_total",
		Help:      "Counter of queries that no fallback upstream answered; they get SERVFAIL.",
	}, []string{"server", "view"})

	privateBlocked = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: name,
		Name:      "private_nxdomain_total",
		Help:      "Counter of queries for private names answered NXDOMAIN instead of the public answer.",
	}, []string{"server", "view"})
)
