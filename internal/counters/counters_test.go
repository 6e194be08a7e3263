package counters

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestGet(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "test_requests_total", Help: "h"}, []string{"server", "view", "result"})
	c := &Cache{Vec: vec, Results: []string{"answer", "nxdomain"}}
	c.Get("dns://:53", "")[1].Inc()
	c.Get("dns://:53", "")[1].Inc()
	c.Get("dns://:54", "v")[0].Inc()
	cases := []struct {
		server, view, result string
		want                 float64
	}{
		{"dns://:53", "", "nxdomain", 2},
		{"dns://:53", "", "answer", 0},
		{"dns://:54", "v", "answer", 1},
	}
	for _, tc := range cases {
		t.Run(tc.server+tc.view+tc.result, func(t *testing.T) {
			if got := testutil.ToFloat64(vec.WithLabelValues(tc.server, tc.view, tc.result)); got != tc.want {
				t.Errorf("got %v; want %v", got, tc.want)
			}
		})
	}
	if got := testing.AllocsPerRun(100, func() { c.Get("dns://:53", "")[0].Inc() }); got != 0 {
		t.Errorf("Get of a known server allocates %v times; want 0", got)
	}
}
