package status

import (
	"strconv"

	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// requests counts the HTTP requests by what was asked and the status code.
var requests = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: plugin.Namespace,
	Subsystem: name,
	Name:      "requests_total",
	Help:      "Counter of HTTP requests to the status listener, by endpoint and status code.",
}, []string{"endpoint", "code"})

func count(endpoint string, code int) {
	requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
}
