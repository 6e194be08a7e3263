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

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/plugin/mdns/internal/lan"
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
		{"ANY gets A and AAAA (RFC 8482)", test.Case{Qname: "beta.example.org.", Qtype: dns.TypeANY,
			Answer: []dns.RR{test.A("beta.example.org. 10 IN A 198.18.1.20"), test.AAAA("beta.example.org. 10 IN AAAA 2001:db8:1::20")}}},
		{"apex ANY gets SOA and NS", test.Case{Qname: "example.org.", Qtype: dns.TypeANY,
			Answer: []dns.RR{test.NS("example.org. 10 IN NS ns.example.org."), test.SOA(soaLine())}}},
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
	fake := newFakeLAN()
	m := newTestMDNS(fake, nil)
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
	if got := fake.lookups("a\\.b"); got != 0 {
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
			var fake *fakeLAN
			if c.lan {
				fake = newFakeLAN()
			}
			m := newTestMDNS(fake, func(m *MDNS) { m.Fall = c.fall })
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
	fake := newFakeLAN()
	m := newTestMDNS(fake, func(m *MDNS) { m.Fall = fall.Root })
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
	if got := fake.lookups("nosuch"); got != 1 {
		t.Errorf("lookups after 25 queries = %d; want 1", got)
	}
	fake.advance(11 * time.Second) // past the negative TTL, max(ttl, 1s)
	serve(t, m, q.Copy())
	if got := fake.lookups("nosuch"); got != 2 {
		t.Errorf("lookups after the negative entry expired = %d; want 2", got)
	}
}

func TestGoodbye(t *testing.T) {
	fake := newFakeLAN()
	m := newTestMDNS(fake, nil)
	q := new(dns.Msg).SetQuestion("beta.example.org.", dns.TypeA)
	if _, msg := serve(t, m, q); len(msg.Answer) != 1 {
		t.Fatalf("answers = %v; want one A", msg.Answer)
	}
	m.res.Load().Learn("beta", []lan.Record{rec("198.18.1.20", 0), rec("2001:db8:1::20", 0)})
	if _, msg := serve(t, m, q); msg.Rcode != dns.RcodeNameError {
		t.Errorf("after goodbye: rcode = %s; want NXDOMAIN", dns.RcodeToString[msg.Rcode])
	}
	if got := fake.lookups("beta"); got != 1 {
		t.Errorf("lookups = %d; want 1: the goodbye is a negative entry", got)
	}
}

func TestBusy(t *testing.T) {
	fake := newFakeLAN()
	m := newTestMDNS(fake, func(m *MDNS) { m.Fall = fall.Root })
	res := fake.resolver(time.Hour) // the flights below never end by themselves
	m.res.Store(res)
	for i := range lan.MaxFlights {
		res.Lookup(fmt.Sprintf("host%d", i))
	}
	t.Cleanup(func() { // both families end a flight
		for i := range lan.MaxFlights {
			res.Learn(fmt.Sprintf("host%d", i), []lan.Record{rec("198.18.1.20", 120), rec("2001:db8:1::20", 120)})
		}
	})
	counter := requests.WithLabelValues("", "", "busy_fallthrough")
	before := testutil.ToFloat64(counter)
	rcode, msg := serve(t, m, new(dns.Msg).SetQuestion("other.example.org.", dns.TypeA))
	if rcode != nextRcode || msg != nil {
		t.Errorf("with %d lookups in flight: rcode %d; want a fallthrough", lan.MaxFlights, rcode)
	}
	if got := testutil.ToFloat64(counter) - before; got != 1 {
		t.Errorf("busy_fallthrough grew by %v; want 1", got)
	}
}

func TestRequestsCounted(t *testing.T) {
	fake := newFakeLAN()
	m := newTestMDNS(fake, func(m *MDNS) { m.Fall = fall.Root })
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
	fake := newFakeLAN()
	m := newTestMDNS(fake, nil)
	var mu sync.Mutex
	var asked []bool // qu of each question sent
	m.res.Store(fake.resolverWith(time.Second, func(res *lan.Resolver, host string, qu bool) error {
		mu.Lock()
		asked = append(asked, qu)
		mu.Unlock()
		if !qu {
			res.Learn(host, fake.hosts[host])
		}
		return nil
	}))
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

// fakeTailnet is the tailnet handler of the server block, as HostKnown
// shows it.
type fakeTailnet struct {
	known  map[string]bool
	loaded bool // the tailnet has had a table
}

func (f fakeTailnet) HostKnown(label string) (bool, bool) { return f.known[label], f.loaded }

// TestWhatIsAsked: only a name that can be a LAN host is asked for on the
// LAN; any other goes to the next plugin at once, without a question.
func TestWhatIsAsked(t *testing.T) {
	tailnet := fakeTailnet{known: map[string]bool{"beta": true}, loaded: true}
	cases := []struct {
		name      string
		configure func(*MDNS)
		host      string
		asked     bool
	}{
		{"a host the tailnet knows", func(m *MDNS) { m.tailnet = tailnet }, "beta", true},
		{"a public-only name, with a tailnet", func(m *MDNS) { m.tailnet = tailnet }, "blog", false},
		{"a host of the hosts option, with a tailnet", func(m *MDNS) { m.tailnet, m.hosts["blog"] = tailnet, true }, "blog", true},
		{"an alias's target, with a tailnet", func(m *MDNS) { m.tailnet, m.hosts["office-printer"] = tailnet, true }, "printer", true},
		{"any name before the tailnet's first table", func(m *MDNS) { m.tailnet = fakeTailnet{} }, "blog", true},
		{"ask all, with a tailnet", func(m *MDNS) { m.tailnet, m.askAll = tailnet, true }, "blog", true},
		{"any name without a tailnet or hosts", nil, "blog", true},
		{"a host of the hosts option, without a tailnet", func(m *MDNS) { m.hosts["beta"], m.listed = true, true }, "beta", true},
		{"another name, without a tailnet, with hosts", func(m *MDNS) { m.hosts["beta"], m.listed = true, true }, "blog", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake := newFakeLAN()
			m := newTestMDNS(fake, func(m *MDNS) {
				m.Fall = fall.Root
				if c.configure != nil {
					c.configure(m)
				}
			})
			counter := requests.WithLabelValues("", "", "unlisted_fallthrough")
			before := testutil.ToFloat64(counter)
			serve(t, m, new(dns.Msg).SetQuestion(c.host+".example.org.", dns.TypeA))
			target := c.host
			if a, ok := m.aliases[c.host]; ok {
				target = a
			}
			if got := fake.lookups(target) > 0; got != c.asked {
				t.Errorf("asked the LAN for %s = %v; want %v", target, got, c.asked)
			}
			if got := testutil.ToFloat64(counter) - before; got != map[bool]float64{false: 1, true: 0}[c.asked] {
				t.Errorf("unlisted_fallthrough grew by %v; want %v", got, !c.asked)
			}
		})
	}
}

// TestUnlisted: a name that cannot be a LAN host gets
// NXDOMAIN without fallthrough, and a host in the cache (one a service
// browse found) is answered although nobody listed it.
func TestUnlisted(t *testing.T) {
	fake := newFakeLAN()
	m := newTestMDNS(fake, func(m *MDNS) { m.tailnet = fakeTailnet{loaded: true} })
	if _, msg := serve(t, m, new(dns.Msg).SetQuestion("blog.example.org.", dns.TypeA)); msg.Rcode != dns.RcodeNameError || len(msg.Ns) != 1 {
		t.Errorf("blog: %s, authority %v; want NXDOMAIN with the SOA", dns.RcodeToString[msg.Rcode], msg.Ns)
	}
	res := m.res.Load()
	if f := res.Lookup("beta"); f != nil { // as the browse does
		<-f.Done()
	}
	if _, msg := serve(t, m, new(dns.Msg).SetQuestion("beta.example.org.", dns.TypeA)); len(msg.Answer) != 1 {
		t.Errorf("beta, in the cache: %v; want its A", msg.Answer)
	}
	if got := fake.lookups("blog"); got != 0 {
		t.Errorf("lookups of blog = %d; want 0", got)
	}
}

// TestNotAQuery: zone transfers are refused and other opcodes are not
// implemented.
func TestNotAQuery(t *testing.T) {
	cases := []struct {
		name   string
		qtype  uint16
		opcode int
		rcode  int
	}{
		{"AXFR", dns.TypeAXFR, dns.OpcodeQuery, dns.RcodeRefused},
		{"IXFR", dns.TypeIXFR, dns.OpcodeQuery, dns.RcodeRefused},
		{"NOTIFY", dns.TypeSOA, dns.OpcodeNotify, dns.RcodeNotImplemented},
		{"UPDATE", dns.TypeSOA, dns.OpcodeUpdate, dns.RcodeNotImplemented},
	}
	m := newTestMDNS(newFakeLAN(), func(m *MDNS) { m.Fall = fall.Root })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := new(dns.Msg).SetQuestion("example.org.", c.qtype)
			q.Opcode = c.opcode
			rcode, msg := serve(t, m, q)
			if rcode != dns.RcodeSuccess || msg == nil || msg.Rcode != c.rcode || len(msg.Answer) > 0 {
				t.Errorf("ServeDNS = %d, reply %v; want 0 and a %s reply without answers", rcode, msg, dns.RcodeToString[c.rcode])
			}
		})
	}
}

// TestApex: SOA and NS at the apex are the plugin's; every other type
// there is the public zone's, passed on with fallthrough, NODATA without.
func TestApex(t *testing.T) {
	cases := []struct {
		name     string
		qtype    uint16
		fall     fall.F
		wantNext bool
	}{
		{"SOA is ours", dns.TypeSOA, fall.Root, false},
		{"NS is ours", dns.TypeNS, fall.Root, false},
		{"A goes to the public zone", dns.TypeA, fall.Root, true},
		{"MX goes to the public zone", dns.TypeMX, fall.Root, true},
		{"A without fallthrough is NODATA", dns.TypeA, fall.Zero, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newTestMDNS(newFakeLAN(), func(m *MDNS) { m.Fall = c.fall })
			rcode, msg := serve(t, m, new(dns.Msg).SetQuestion("example.org.", c.qtype))
			if gotNext := rcode == nextRcode && msg == nil; gotNext != c.wantNext {
				t.Fatalf("went to the next plugin = %v; want %v", gotNext, c.wantNext)
			}
			if !c.wantNext && msg.Rcode != dns.RcodeSuccess {
				t.Errorf("rcode %s; want NOERROR", dns.RcodeToString[msg.Rcode])
			}
		})
	}
}

// TestPassLeavesSOA: a private name passed on leaves the zone's SOA for
// the fallback's NXDOMAIN; a public one leaves nothing.
func TestPassLeavesSOA(t *testing.T) {
	m := newTestMDNS(newFakeLAN(), func(m *MDNS) { m.Fall = fall.Root })
	for _, c := range []struct {
		allowed policy.Source
		want    bool
	}{{policy.LAN, true}, {policy.All, false}} {
		d := &policy.Decision{Allowed: c.allowed}
		m.ServeDNS(policy.NewContext(context.Background(), d), dnstest.NewRecorder(&test.ResponseWriter{}), new(dns.Msg).SetQuestion("nosuch.example.org.", dns.TypeA))
		if got := d.SOA != nil && d.SOA.String() == test.SOA(soaLine()).String(); got != c.want {
			t.Errorf("allowed %v: left SOA %v; want one: %v", c.allowed, d.SOA, c.want)
		}
	}
}

// TestPassLeavesReason: a name passed on carries why in the query's
// policy, for the fallback's Extended DNS Error.
func TestPassLeavesReason(t *testing.T) {
	cases := []struct {
		name  string
		lan   bool
		qname string
		want  policy.Reason
	}{
		{"no answer on the LAN", true, "nosuch.example.org.", policy.LANTimeout},
		{"no resolver", false, "beta.example.org.", policy.LANDown},
		{"not a host name", true, `a\.b.example.org.`, policy.Unknown},
		{"answered", true, "beta.example.org.", policy.Unset},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var fake *fakeLAN
			if c.lan {
				fake = newFakeLAN()
			}
			m := newTestMDNS(fake, func(m *MDNS) { m.Fall = fall.Root })
			d := &policy.Decision{Allowed: policy.All}
			m.ServeDNS(policy.NewContext(context.Background(), d), dnstest.NewRecorder(&test.ResponseWriter{}), new(dns.Msg).SetQuestion(c.qname, dns.TypeA))
			if got := d.Why(policy.LAN); got != c.want {
				t.Errorf("Why(lan) = %q; want %q", got, c.want)
			}
		})
	}
}

// TestUnlistedReason: a host neither the tailnet nor the Corefile names
// is passed on unasked, as unlisted.
func TestUnlistedReason(t *testing.T) {
	m := newTestMDNS(newFakeLAN(), func(m *MDNS) { m.Fall = fall.Root; m.tailnet = fakeTailnet{loaded: true} })
	d := &policy.Decision{Allowed: policy.All}
	m.ServeDNS(policy.NewContext(context.Background(), d), dnstest.NewRecorder(&test.ResponseWriter{}), new(dns.Msg).SetQuestion("blog.example.org.", dns.TypeA))
	if got := d.Why(policy.LAN); got != policy.Unlisted {
		t.Errorf("Why(lan) = %q; want %q", got, policy.Unlisted)
	}
}
