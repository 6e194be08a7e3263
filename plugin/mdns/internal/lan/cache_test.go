package lan

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func testCache(size int) (*cache, prometheus.Counter) {
	ev := prometheus.NewCounter(prometheus.CounterOpts{Name: "ev", Help: "h"})
	c := newCache(prometheus.NewGauge(prometheus.GaugeOpts{Name: "n", Help: "h"}), ev)
	c.configure(size, 5*time.Second)
	return c, ev
}

// addrs lists the valid addresses of host at now, or "negative"/"absent".
func addrs(c *cache, host string, now time.Time) []string {
	_, recs := c.get(host, now.UnixNano())
	switch {
	case recs == nil:
		return []string{"absent"}
	case recs.Negative:
		return []string{"negative"}
	}
	var out []string
	for _, a := range append(slices.Clone(recs.V4), recs.V6...) {
		if a.Expires > now.UnixNano() {
			ip, _ := netip.AddrFromSlice(a.IP)
			out = append(out, ip.String())
		}
	}
	slices.Sort(out)
	return out
}

func TestCacheLearn(t *testing.T) {
	flush := func(l Record) Record { l.Flush = true; return l }
	cases := []struct {
		name    string
		packets [][]Record // learnt at t0, t0+1s, ...
		at      time.Duration
		want    []string
	}{
		{"one packet", [][]Record{{rec("198.18.1.20", 120), rec("2001:db8:1::20", 120)}}, 0,
			[]string{"198.18.1.20", "2001:db8:1::20"}},
		{"addresses add up", [][]Record{{rec("198.18.1.20", 120)}, {rec("198.18.1.21", 120)}}, 2 * time.Second,
			[]string{"198.18.1.20", "198.18.1.21"}},
		{"cache-flush replaces its family only", [][]Record{{rec("198.18.1.20", 120), rec("2001:db8:1::20", 120)}, {flush(rec("198.18.1.21", 120))}}, 2 * time.Second,
			[]string{"198.18.1.21", "2001:db8:1::20"}},
		{"goodbye removes one address", [][]Record{{rec("198.18.1.20", 120), rec("198.18.1.21", 120)}, {rec("198.18.1.20", 0)}}, 2 * time.Second,
			[]string{"198.18.1.21"}},
		{"goodbye of every address is negative", [][]Record{{rec("198.18.1.20", 120)}, {rec("198.18.1.20", 0)}}, 2 * time.Second,
			[]string{"negative"}},
		{"each address expires with its TTL", [][]Record{{rec("198.18.1.20", 5), rec("198.18.1.21", 120)}}, 6 * time.Second,
			[]string{"198.18.1.21"}},
		{"all expired is absent", [][]Record{{rec("198.18.1.20", 5)}}, 6 * time.Second,
			[]string{"absent"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ca, _ := testCache(10)
			for i, p := range c.packets {
				ca.learn("beta", p, true, false, t0.Add(time.Duration(i)*time.Second))
			}
			if got := addrs(ca, "beta", t0.Add(c.at)); !slices.Equal(got, c.want) {
				t.Errorf("got %v; want %v", got, c.want)
			}
		})
	}
}

func TestCacheLearnOnlyAsked(t *testing.T) {
	ca, _ := testCache(10)
	if ca.learn("beta", []Record{rec("198.18.1.20", 120)}, false, false, t0) {
		t.Error("learn made an entry for a host nobody asked for")
	}
	ca.fail("beta", t0)
	if !ca.learn("beta", []Record{rec("198.18.1.20", 120)}, false, false, t0) {
		t.Error("learn ignored a host with a negative entry")
	}
	if got := addrs(ca, "beta", t0); !slices.Equal(got, []string{"198.18.1.20"}) {
		t.Errorf("got %v; want the announced address", got)
	}
	ca.fail("beta", t0.Add(time.Second))
	if got := addrs(ca, "beta", t0.Add(time.Second)); !slices.Equal(got, []string{"198.18.1.20"}) {
		t.Errorf("after a failed refresh: got %v; want the valid address kept", got)
	}
}

func TestCacheLRU(t *testing.T) {
	ca, ev := testCache(3)
	for i := range 3 {
		ca.learn(fmt.Sprintf("h%d", i), []Record{rec("198.18.1.20", 120)}, true, false, t0)
	}
	ca.get("h0", t0.UnixNano()) // h1 is now the least recently used
	ca.learn("h3", []Record{rec("198.18.1.20", 120)}, true, false, t0)
	ca.fail("h4", t0)
	want := map[string]bool{"h0": true, "h1": false, "h2": false, "h3": true, "h4": true}
	for host, kept := range want {
		if got := ca.has(host); got != kept {
			t.Errorf("has(%s) = %v; want %v", host, got, kept)
		}
	}
	if got := ca.len(); got != 3 {
		t.Errorf("len = %d; want 3", got)
	}
	if got := testutil.ToFloat64(ev); got != 2 {
		t.Errorf("evictions = %v; want 2", got)
	}
}

func TestCacheSweep(t *testing.T) {
	ca, _ := testCache(10)
	ca.learn("old", []Record{rec("198.18.1.20", 5)}, true, false, t0)
	ca.learn("new", []Record{rec("198.18.1.21", 120)}, true, false, t0)
	ca.sweep(t0.Add(10*time.Second).UnixNano(), 100)
	if ca.has("old") || !ca.has("new") {
		t.Errorf("after sweep: has(old) = %v, has(new) = %v; want false, true", ca.has("old"), ca.has("new"))
	}
}

// TestCacheBounded: a flood of answers for hosts keeps the cache at size.
func TestCacheBounded(t *testing.T) {
	ca, _ := testCache(100)
	for i := range 100 {
		ca.learn(fmt.Sprintf("host%d", i), []Record{rec("198.18.0.1", 120), rec("2001:db8::1", 120)}, true, false, time.Now())
	}
	for i := range 10000 {
		ca.learn(fmt.Sprintf("flood%d", i), []Record{rec("198.18.1.20", 120)}, true, false, time.Now())
	}
	if got := ca.len(); got != 100 {
		t.Errorf("cache holds %d hosts after a flood; want its size, 100", got)
	}
}

// TestCachePending: an entry is Pending while the lookup that made it
// waits for the other family; a refresh of a live entry never is, and
// settle ends it.
func TestCachePending(t *testing.T) {
	cases := []struct {
		name   string
		before []Record // learnt at t0; nil for no entry
		at     time.Duration
		want   bool
	}{
		{"new host", nil, 0, true},
		{"after a negative entry", []Record{}, time.Second, true},
		{"refresh of a live entry", []Record{rec("198.18.1.20", 120), rec("2001:db8:1::20", 120)}, time.Second, false},
		{"after every record expired", []Record{rec("198.18.1.20", 5)}, 6 * time.Second, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ca, _ := testCache(10)
			if c.before != nil {
				ca.learn("beta", c.before, true, false, t0)
			}
			ca.learn("beta", []Record{rec("198.18.1.21", 120)}, true, true, t0.Add(c.at))
			_, recs := ca.get("beta", t0.Add(c.at).UnixNano())
			if recs == nil || recs.Pending != c.want {
				t.Fatalf("entry %+v; want Pending %v", recs, c.want)
			}
			ca.settle("beta")
			if _, recs := ca.get("beta", t0.Add(c.at).UnixNano()); recs.Pending {
				t.Error("still pending after settle")
			}
		})
	}
}
