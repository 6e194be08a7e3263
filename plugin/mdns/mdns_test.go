package mdns

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func soaLine() string {
	return fmt.Sprintf("example.org. 10 IN SOA ns.example.org. hostmaster.example.org. %d 7200 1800 86400 10", serial)
}

func serve(t *testing.T, m *MDNS, q *dns.Msg) (int, *dns.Msg) {
	t.Helper()
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	rcode, err := m.ServeDNS(context.Background(), rec, q)
	if err != nil {
		t.Fatalf("ServeDNS error = %v; want nil", err)
	}
	return rcode, rec.Msg
}

func TestServeDNS(t *testing.T) {
	cases := []struct {
		name string
		tc   test.Case
	}{
		{"host A", test.Case{Qname: "beta.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("beta.example.org. 10 IN A 198.18.1.20")}}},
		{"host AAAA", test.Case{Qname: "beta.example.org.", Qtype: dns.TypeAAAA,
			Answer: []dns.RR{test.AAAA("beta.example.org. 10 IN AAAA 2001:db8:1::20")}}},
		{"deep name", test.Case{Qname: "a.grafana.beta.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("a.grafana.beta.example.org. 10 IN A 198.18.1.20")}}},
		{"mixed case keeps the query's case", test.Case{Qname: "Grafana.BETA.example.ORG.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("Grafana.BETA.example.ORG. 10 IN A 198.18.1.20")}}},
		{"alias", test.Case{Qname: "x.printer.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("x.printer.example.org. 10 IN A 198.18.1.30")}}},
		{"TTL capped by what is left of the record's", test.Case{Qname: "shortlived.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("shortlived.example.org. 3 IN A 198.18.1.40")}}},
		{"NODATA for AAAA of a v4-only host", test.Case{Qname: "office-printer.example.org.", Qtype: dns.TypeAAAA,
			Ns: []dns.RR{test.SOA(soaLine())}}},
		{"NODATA for another type", test.Case{Qname: "beta.example.org.", Qtype: dns.TypeMX,
			Ns: []dns.RR{test.SOA(soaLine())}}},
		{"NXDOMAIN with SOA", test.Case{Qname: "nosuch.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
			Ns: []dns.RR{test.SOA(soaLine())}}},
		{"a label with an escaped dot is never asked", test.Case{Qname: `a\.b.example.org.`, Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
			Ns: []dns.RR{test.SOA(soaLine())}}},
		{"apex SOA", test.Case{Qname: "example.org.", Qtype: dns.TypeSOA,
			Answer: []dns.RR{test.SOA(soaLine())}}},
		{"apex NS", test.Case{Qname: "example.org.", Qtype: dns.TypeNS,
			Answer: []dns.RR{test.NS("example.org. 10 IN NS ns.example.org.")}}},
		{"apex A is NODATA", test.Case{Qname: "example.org.", Qtype: dns.TypeA,
			Ns: []dns.RR{test.SOA(soaLine())}}},
	}
	lan := newFakeLAN()
	m := newTestMDNS(lan, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rcode, msg := serve(t, m, c.tc.Msg())
			if rcode != dns.RcodeSuccess || msg == nil {
				t.Fatalf("ServeDNS = %d, message %v; want 0 and a message", rcode, msg)
			}
			if !msg.Authoritative {
				t.Error("answer is not authoritative")
			}
			if err := test.SortAndCheck(msg, c.tc); err != nil {
				t.Error(err)
			}
		})
	}
	if got := lan.lookups("a\\.b"); got != 0 {
		t.Errorf("lookups of an escaped label = %d; want 0", got)
	}
}

func TestFallthrough(t *testing.T) {
	cases := []struct {
		name  string
		lan   bool // a resolver is running
		qname string
		fall  fall.F
		want  bool // the query reaches the next plugin
	}{
		{"unknown host", true, "nosuch.example.org.", fall.Root, true},
		{"unknown host outside the fallthrough zones", true, "nosuch.example.org.", fallZones("example.net."), false},
		{"known host", true, "beta.example.org.", fall.Root, false},
		{"no resolver", false, "beta.example.org.", fall.Root, true},
		{"no resolver without fallthrough", false, "beta.example.org.", fall.Zero, false},
		{"name outside the zones", true, "beta.example.net.", fall.Zero, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var lan *fakeLAN
			if c.lan {
				lan = newFakeLAN()
			}
			m := newTestMDNS(lan, func(m *MDNS) { m.Fall = c.fall })
			rcode, msg := serve(t, m, new(dns.Msg).SetQuestion(c.qname, dns.TypeA))
			if got := rcode == nextRcode && msg == nil; got != c.want {
				t.Errorf("fell through = %v (rcode %d); want %v", got, rcode, c.want)
			}
		})
	}
}

func fallZones(zones ...string) fall.F {
	var f fall.F
	f.SetZonesFromArgs(zones)
	return f
}

// TestOneLookupPerName: concurrent and repeated queries for a host that
// never answers send one lookup, then the negative cache answers until it
// expires.
func TestOneLookupPerName(t *testing.T) {
	lan := newFakeLAN()
	m := newTestMDNS(lan, func(m *MDNS) { m.Fall = fall.Root })
	q := new(dns.Msg).SetQuestion("nosuch.example.org.", dns.TypeA)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			m.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), q.Copy())
		})
	}
	wg.Wait()
	for range 5 {
		serve(t, m, q.Copy())
	}
	if got := lan.lookups("nosuch"); got != 1 {
		t.Errorf("lookups after 25 queries = %d; want 1", got)
	}
	lan.advance(11 * time.Second) // past the negative TTL, max(ttl, 1s)
	serve(t, m, q.Copy())
	if got := lan.lookups("nosuch"); got != 2 {
		t.Errorf("lookups after the negative entry expired = %d; want 2", got)
	}
}

func TestExpiryAndRefresh(t *testing.T) {
	lan := newFakeLAN()
	m := newTestMDNS(lan, nil)
	res := m.res.Load()
	q := new(dns.Msg).SetQuestion("beta.example.org.", dns.TypeA)
	serve(t, m, q)
	steps := []struct {
		name        string
		advance     time.Duration
		wantLookups int
		wantRefresh bool
	}{
		{"fresh: from the cache", 60 * time.Second, 1, false},
		{"past 80% of the TTL: answered, and a refresh asked for", 40 * time.Second, 1, true},
		{"again: the refresh is asked for once", time.Second, 1, false},
		{"expired: looked up again", 30 * time.Second, 2, false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			lan.advance(s.advance)
			_, msg := serve(t, m, q)
			if len(msg.Answer) != 1 {
				t.Fatalf("answers = %v; want one A", msg.Answer)
			}
			if got := lan.lookups("beta"); got != s.wantLookups {
				t.Errorf("lookups = %d; want %d", got, s.wantLookups)
			}
			refresh := false
			select {
			case h := <-res.refreshCh:
				refresh = h == "beta"
			default:
			}
			if refresh != s.wantRefresh {
				t.Errorf("refresh asked = %v; want %v", refresh, s.wantRefresh)
			}
		})
	}
}

func TestGoodbye(t *testing.T) {
	lan := newFakeLAN()
	m := newTestMDNS(lan, nil)
	q := new(dns.Msg).SetQuestion("beta.example.org.", dns.TypeA)
	if _, msg := serve(t, m, q); len(msg.Answer) != 1 {
		t.Fatalf("answers = %v; want one A", msg.Answer)
	}
	m.res.Load().learn("beta", []learnt{rec("198.18.1.20", 0), rec("2001:db8:1::20", 0)})
	if _, msg := serve(t, m, q); msg.Rcode != dns.RcodeNameError {
		t.Errorf("after goodbye: rcode = %s; want NXDOMAIN", dns.RcodeToString[msg.Rcode])
	}
	if got := lan.lookups("beta"); got != 1 {
		t.Errorf("lookups = %d; want 1: the goodbye is a negative entry", got)
	}
}

func TestBusy(t *testing.T) {
	lan := newFakeLAN()
	m := newTestMDNS(lan, func(m *MDNS) { m.Fall = fall.Root })
	res := m.res.Load()
	res.window = time.Hour // the flights below never end by themselves
	for i := range maxFlights {
		res.lookup(fmt.Sprintf("host%d", i), reasonMiss)
	}
	t.Cleanup(func() {
		for i := range maxFlights {
			host := fmt.Sprintf("host%d", i)
			res.mu.Lock()
			f := res.flights[host]
			res.mu.Unlock()
			res.end(host, f)
		}
	})
	counter := requests.WithLabelValues("", "", "busy_fallthrough")
	before := testutil.ToFloat64(counter)
	rcode, msg := serve(t, m, new(dns.Msg).SetQuestion("other.example.org.", dns.TypeA))
	if rcode != nextRcode || msg != nil {
		t.Errorf("with %d lookups in flight: rcode %d; want a fallthrough", maxFlights, rcode)
	}
	if got := testutil.ToFloat64(counter) - before; got != 1 {
		t.Errorf("busy_fallthrough grew by %v; want 1", got)
	}
}

func TestRequestsCounted(t *testing.T) {
	lan := newFakeLAN()
	m := newTestMDNS(lan, func(m *MDNS) { m.Fall = fall.Root })
	cases := []struct {
		qname  string
		qtype  uint16
		result string
	}{
		{"beta.example.org.", dns.TypeA, "lookup"},
		{"beta.example.org.", dns.TypeA, "answer"},
		{"beta.example.org.", dns.TypeMX, "nodata"},
		{"nosuch.example.org.", dns.TypeA, "fallthrough"},
	}
	for _, c := range cases {
		t.Run(c.result, func(t *testing.T) {
			counter := requests.WithLabelValues("", "", c.result)
			before := testutil.ToFloat64(counter)
			serve(t, m, new(dns.Msg).SetQuestion(c.qname, c.qtype))
			if got := testutil.ToFloat64(counter) - before; got != 1 {
				t.Errorf("requests_total{result=%q} grew by %v; want 1", c.result, got)
			}
		})
	}
}

// TestMulticastRetry: a responder whose unicast answer is lost (or who
// answers only multicast questions) is asked again for a multicast answer
// within the same lookup.
func TestMulticastRetry(t *testing.T) {
	lan := newFakeLAN()
	m := newTestMDNS(lan, nil)
	res := m.res.Load()
	var mu sync.Mutex
	var asked []bool // qu of each question sent
	res.query = func(host string, qu bool) error {
		mu.Lock()
		asked = append(asked, qu)
		mu.Unlock()
		if !qu {
			res.learn(host, lan.hosts[host])
		}
		return nil
	}
	res.window = time.Second
	_, msg := serve(t, m, new(dns.Msg).SetQuestion("beta.example.org.", dns.TypeA))
	if len(msg.Answer) != 1 {
		t.Errorf("answers = %v; want beta's A from the multicast retry", msg.Answer)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []bool{true, false}; !slices.Equal(asked, want) {
		t.Errorf("questions sent with QU = %v; want %v", asked, want)
	}
}
