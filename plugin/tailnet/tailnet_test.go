package tailnet

import (
	"context"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
)

// nextRcode is what the next plugin returns, so a test sees a fallthrough.
const nextRcode = dns.RcodeRefused

const soaLine = "example.org. 10 IN SOA self.example.org. hostmaster.example.org. 1700000000 7200 1800 86400 10"

func newTestTailnet(s *watch.Snapshot, configure func(*Tailnet)) *Tailnet {
	t := New()
	t.ttl = 10 // apart from the default, so that the cases show which TTL is which
	t.Zones = []string{"example.org.", "100.in-addr.arpa.", "0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa."}
	t.Next = test.NextHandler(nextRcode, nil)
	t.tableConf.Aliases = map[string]string{"registry": "hub", "git": "nosuchhost"}
	if configure != nil {
		configure(t)
	}
	if s != nil {
		t.update(s)
	}
	return t
}

func TestServeDNS(t *testing.T) {
	cases := []struct {
		name string
		tc   test.Case
	}{
		{"host A", test.Case{Qname: "hub.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("hub.example.org. 10 IN A 100.64.0.2")}}},
		{"host AAAA", test.Case{Qname: "hub.example.org.", Qtype: dns.TypeAAAA,
			Answer: []dns.RR{test.AAAA("hub.example.org. 10 IN AAAA fd7a:115c:a1e0::2")}}},
		{"deep wildcard", test.Case{Qname: "a.grafana.hub.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("a.grafana.hub.example.org. 10 IN A 100.64.0.2")}}},
		{"mixed case keeps the query's case", test.Case{Qname: "Grafana.HUB.example.ORG.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("Grafana.HUB.example.ORG. 10 IN A 100.64.0.2")}}},
		{"host with capitals in its MagicDNS name", test.Case{Qname: "registry-box.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("registry-box.example.org. 10 IN A 100.64.0.3")}}},
		{"self", test.Case{Qname: "self.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("self.example.org. 10 IN A 100.64.0.1")}}},
		{"corefile alias wins over tag", test.Case{Qname: "x.registry.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("x.registry.example.org. 10 IN A 100.64.0.2")}}},
		{"tag alias with two peers", test.Case{Qname: "web.example.org.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("web.example.org. 10 IN A 100.64.0.3"), test.A("web.example.org. 10 IN A 100.64.0.5")}}},
		{"tag alias AAAA from the one peer that has one", test.Case{Qname: "web.example.org.", Qtype: dns.TypeAAAA,
			Answer: []dns.RR{test.AAAA("web.example.org. 10 IN AAAA fd7a:115c:a1e0::3")}}},
		{"ANY gets A and AAAA (RFC 8482)", test.Case{Qname: "hub.example.org.", Qtype: dns.TypeANY,
			Answer: []dns.RR{test.A("hub.example.org. 10 IN A 100.64.0.2"), test.AAAA("hub.example.org. 10 IN AAAA fd7a:115c:a1e0::2")}}},
		{"ANY of a v4-only peer gets its A", test.Case{Qname: "beta.example.org.", Qtype: dns.TypeANY,
			Answer: []dns.RR{test.A("beta.example.org. 10 IN A 100.64.0.5")}}},
		{"apex ANY gets SOA and NS", test.Case{Qname: "example.org.", Qtype: dns.TypeANY,
			Answer: []dns.RR{test.NS("example.org. 10 IN NS self.example.org."), test.SOA(soaLine)}}},
		{"NODATA for another type", test.Case{Qname: "hub.example.org.", Qtype: dns.TypeMX,
			Ns: []dns.RR{test.SOA(soaLine)}}},
		{"NODATA for AAAA of a v4-only peer", test.Case{Qname: "beta.example.org.", Qtype: dns.TypeAAAA,
			Ns: []dns.RR{test.SOA(soaLine)}}},
		{"NXDOMAIN with SOA", test.Case{Qname: "nosuch.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
			Ns: []dns.RR{test.SOA(soaLine)}}},
		{"alias to an unknown host is NXDOMAIN", test.Case{Qname: "git.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
			Ns: []dns.RR{test.SOA(soaLine)}}},
		{"offline peer without fallthrough", test.Case{Qname: "alpha.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError,
			Ns: []dns.RR{test.SOA(soaLine)}}},
		{"apex SOA", test.Case{Qname: "example.org.", Qtype: dns.TypeSOA,
			Answer: []dns.RR{test.SOA(soaLine)}}},
		{"apex NS", test.Case{Qname: "example.org.", Qtype: dns.TypeNS,
			Answer: []dns.RR{test.NS("example.org. 10 IN NS self.example.org.")}}},
		{"apex A is NODATA", test.Case{Qname: "example.org.", Qtype: dns.TypeA,
			Ns: []dns.RR{test.SOA(soaLine)}}},
		{"reverse zone NS names this node in the forward zone", test.Case{Qname: "100.in-addr.arpa.", Qtype: dns.TypeNS,
			Answer: []dns.RR{test.NS("100.in-addr.arpa. 10 IN NS self.example.org.")}}},
		{"reverse zone SOA names this node in the forward zone", test.Case{Qname: "0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa.", Qtype: dns.TypeSOA,
			Answer: []dns.RR{test.SOA("0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa. 10 IN SOA self.example.org. hostmaster.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa. 1700000000 7200 1800 86400 10")}}},
		{"PTR v4", test.Case{Qname: "2.0.64.100.in-addr.arpa.", Qtype: dns.TypePTR,
			Answer: []dns.RR{test.PTR("2.0.64.100.in-addr.arpa. 10 IN PTR hub.example.org.")}}},
		{"PTR v6", test.Case{Qname: "3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa.", Qtype: dns.TypePTR,
			Answer: []dns.RR{test.PTR("3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa. 10 IN PTR registry-box.example.org.")}}},
		{"PTR of an unknown address", test.Case{Qname: "9.9.64.100.in-addr.arpa.", Qtype: dns.TypePTR, Rcode: dns.RcodeNameError,
			Ns: []dns.RR{test.SOA("100.in-addr.arpa. 10 IN SOA self.example.org. hostmaster.100.in-addr.arpa. 1700000000 7200 1800 86400 10")}}},
	}
	tn := newTestTailnet(testSnapshot(), nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			rcode, err := tn.ServeDNS(context.Background(), rec, c.tc.Msg())
			if err != nil || rcode != dns.RcodeSuccess {
				t.Fatalf("ServeDNS = %d, %v; want 0, nil", rcode, err)
			}
			if rec.Msg == nil {
				t.Fatal("nothing written")
			}
			if !rec.Msg.Authoritative {
				t.Error("answer is not authoritative")
			}
			if err := test.SortAndCheck(rec.Msg, c.tc); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestFallthrough(t *testing.T) {
	notRunning := testSnapshot()
	notRunning.Running = false
	down := testSnapshot()
	down.State = watch.Down
	cases := []struct {
		name  string
		snap  *watch.Snapshot
		qname string
		fall  fall.F
		want  bool // the query reaches the next plugin
	}{
		{"unknown name", testSnapshot(), "nosuch.example.org.", fall.Root, true},
		{"unknown name outside the fallthrough zones", testSnapshot(), "nosuch.example.org.", fallZones("example.net."), false},
		{"offline peer", testSnapshot(), "alpha.example.org.", fall.Root, true},
		{"online peer", testSnapshot(), "hub.example.org.", fall.Root, false},
		{"this node not Running", notRunning, "hub.example.org.", fall.Root, true},
		{"tailscaled gone past the stale period", down, "hub.example.org.", fall.Root, true},
		{"before the first table", nil, "hub.example.org.", fall.Root, true},
		{"name outside the zones", testSnapshot(), "hub.example.net.", fall.Zero, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tn := newTestTailnet(c.snap, func(tn *Tailnet) { tn.Fall = c.fall })
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			rcode, _ := tn.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion(c.qname, dns.TypeA))
			if got := rcode == nextRcode && rec.Msg == nil; got != c.want {
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

func TestStaleAnswersHaveShortTTL(t *testing.T) {
	s := testSnapshot()
	s.State, s.LostAt, s.StaleUntil = watch.Stale, time.Now(), time.Now().Add(time.Minute).UnixNano()
	tn := newTestTailnet(s, func(tn *Tailnet) { tn.ttl = 60 })
	tc := test.Case{Qname: "hub.example.org.", Qtype: dns.TypeA,
		Answer: []dns.RR{test.A("hub.example.org. 5 IN A 100.64.0.2")}}
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	tn.ServeDNS(context.Background(), rec, tc.Msg())
	if err := test.SortAndCheck(rec.Msg, tc); err != nil {
		t.Error(err)
	}
}

// TestStalePeriodEnds: a stale table is served for its stale period
// only, even if nothing else happens.
func TestStalePeriodEnds(t *testing.T) {
	s := testSnapshot()
	s.State, s.LostAt, s.StaleUntil = watch.Stale, time.Now().Add(-time.Minute), time.Now().Add(-time.Second).UnixNano()
	tn := newTestTailnet(s, func(tn *Tailnet) { tn.Fall = fall.Root })
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if rcode, _ := tn.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA)); rcode != nextRcode || rec.Msg != nil {
		t.Errorf("a stale table past its period answered (rcode %d); want a fallthrough", rcode)
	}
}

func TestCNAME(t *testing.T) {
	cases := []struct {
		name string
		tc   test.Case
	}{
		{"name below a host", test.Case{Qname: "grafana.hub.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.CNAME("grafana.hub.example.org. 10 IN CNAME hub.example.org."),
			test.A("hub.example.org. 10 IN A 100.64.0.2"),
		}}},
		{"alias", test.Case{Qname: "registry.example.org.", Qtype: dns.TypeAAAA, Answer: []dns.RR{
			test.AAAA("hub.example.org. 10 IN AAAA fd7a:115c:a1e0::2"),
			test.CNAME("registry.example.org. 10 IN CNAME hub.example.org."),
		}}},
		{"ANY of an alias", test.Case{Qname: "registry.example.org.", Qtype: dns.TypeANY, Answer: []dns.RR{
			test.A("hub.example.org. 10 IN A 100.64.0.2"),
			test.AAAA("hub.example.org. 10 IN AAAA fd7a:115c:a1e0::2"),
			test.CNAME("registry.example.org. 10 IN CNAME hub.example.org."),
		}}},
		{"the host itself has no CNAME", test.Case{Qname: "hub.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("hub.example.org. 10 IN A 100.64.0.2"),
		}}},
		{"tag groups stay flat", test.Case{Qname: "x.web.example.org.", Qtype: dns.TypeAAAA, Answer: []dns.RR{
			test.AAAA("x.web.example.org. 10 IN AAAA fd7a:115c:a1e0::3"),
		}}},
		{"NODATA has no dangling CNAME", test.Case{Qname: "www.beta.example.org.", Qtype: dns.TypeAAAA,
			Ns: []dns.RR{test.SOA(soaLine)}}},
	}
	tn := newTestTailnet(testSnapshot(), func(tn *Tailnet) { tn.tableConf.CNAME = true })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			tn.ServeDNS(context.Background(), rec, c.tc.Msg())
			if err := test.SortAndCheck(rec.Msg, c.tc); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestProbeFailureFallsThrough(t *testing.T) {
	s := testSnapshot()
	tn := newTestTailnet(s, func(tn *Tailnet) { tn.Fall = fall.Root; tn.watch.Probe = time.Second })
	q := new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	tn.ServeDNS(context.Background(), rec, q)
	hub := s.Nodes[1]
	if hub.Health.Asked() == 0 {
		t.Fatal("a query did not mark hub as asked for, so the probe would skip it")
	}
	hub.Health.Record(false, time.Now().Add(time.Minute).UnixNano())
	rec = dnstest.NewRecorder(&test.ResponseWriter{})
	if rcode, _ := tn.ServeDNS(context.Background(), rec, q); rcode != nextRcode || rec.Msg != nil {
		t.Errorf("a peer failing its probe got rcode %d; want a fallthrough", rcode)
	}
}

func TestRequestsCounted(t *testing.T) {
	tn := newTestTailnet(testSnapshot(), func(tn *Tailnet) { tn.Fall = fall.Root })
	checkCounted(t, tn, []countCase{
		{"hub.example.org.", dns.TypeA, "answer"},
		{"hub.example.org.", dns.TypeMX, "nodata"},
		{"nosuch.example.org.", dns.TypeA, "fallthrough"},
		{"alpha.example.org.", dns.TypeA, "offline_fallthrough"},
	})
}

// countCase is a query and the result it must be counted as.
type countCase struct {
	qname  string
	qtype  uint16
	result string
}

// checkCounted asks tn each question and checks that requests_total grew
// by one for its result.
func checkCounted(t *testing.T, tn *Tailnet, cases []countCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.result, func(t *testing.T) {
			counter := requests.WithLabelValues("", "", c.result)
			before := testutil.ToFloat64(counter)
			tn.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), new(dns.Msg).SetQuestion(c.qname, c.qtype))
			if got := testutil.ToFloat64(counter) - before; got != 1 {
				t.Errorf("requests_total{result=%q} grew by %v; want 1", c.result, got)
			}
		})
	}
}

func TestPolicy(t *testing.T) {
	cases := []struct {
		name     string
		allowed  policy.Source
		wantNext bool
	}{
		{"tailnet allowed", policy.Tailnet | policy.Public, false},
		{"public only skips the tailnet", policy.Public, true},
	}
	tn := newTestTailnet(testSnapshot(), nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &policy.Decision{Allowed: c.allowed}
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			rcode, _ := tn.ServeDNS(policy.NewContext(context.Background(), d), rec, new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA))
			if gotNext := rcode == nextRcode && rec.Msg == nil; gotNext != c.wantNext {
				t.Errorf("went to the next plugin = %v; want %v", gotNext, c.wantNext)
			}
			if answered := d.AnsweredBy == policy.Tailnet; answered == c.wantNext {
				t.Errorf("AnsweredBy = %v; want tailnet only when it answered", d.AnsweredBy)
			}
		})
	}
}

// TestNotAQuery: zone transfers are refused and other opcodes are not
// implemented, in the zone and its reverse zones, whatever the name.
func TestNotAQuery(t *testing.T) {
	cases := []struct {
		name   string
		qname  string
		qtype  uint16
		opcode int
		rcode  int
	}{
		{"AXFR", "example.org.", dns.TypeAXFR, dns.OpcodeQuery, dns.RcodeRefused},
		{"IXFR", "example.org.", dns.TypeIXFR, dns.OpcodeQuery, dns.RcodeRefused},
		{"AXFR of a reverse zone", "100.in-addr.arpa.", dns.TypeAXFR, dns.OpcodeQuery, dns.RcodeRefused},
		{"NOTIFY", "example.org.", dns.TypeSOA, dns.OpcodeNotify, dns.RcodeNotImplemented},
		{"NOTIFY for a host", "hub.example.org.", dns.TypeA, dns.OpcodeNotify, dns.RcodeNotImplemented},
		{"UPDATE", "example.org.", dns.TypeSOA, dns.OpcodeUpdate, dns.RcodeNotImplemented},
	}
	tn := newTestTailnet(testSnapshot(), func(tn *Tailnet) { tn.Fall = fall.Root })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := new(dns.Msg).SetQuestion(c.qname, c.qtype)
			q.Opcode = c.opcode
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			rcode, err := tn.ServeDNS(context.Background(), rec, q)
			if err != nil || rcode != dns.RcodeSuccess || rec.Msg == nil {
				t.Fatalf("ServeDNS = %d, %v, wrote %v; want 0, nil and a reply", rcode, err, rec.Msg)
			}
			if rec.Msg.Rcode != c.rcode || len(rec.Msg.Answer) > 0 {
				t.Errorf("got %s with %d answers; want %s and none", dns.RcodeToString[rec.Msg.Rcode], len(rec.Msg.Answer), dns.RcodeToString[c.rcode])
			}
		})
	}
}

// TestApex: the tailnet owns SOA and NS at the apex; every other type
// there is the public zone's, passed on with fallthrough (and counted as
// a fallthrough), NODATA without.
func TestApex(t *testing.T) {
	cases := []struct {
		name     string
		qname    string
		qtype    uint16
		fall     fall.F
		wantNext bool
		result   string
	}{
		{"SOA is ours", "example.org.", dns.TypeSOA, fall.Root, false, "answer"},
		{"NS is ours", "example.org.", dns.TypeNS, fall.Root, false, "answer"},
		{"A goes to the public zone", "example.org.", dns.TypeA, fall.Root, true, "fallthrough"},
		{"MX goes to the public zone", "Example.ORG.", dns.TypeMX, fall.Root, true, "fallthrough"},
		{"HTTPS goes to the public zone", "example.org.", dns.TypeHTTPS, fall.Root, true, "fallthrough"},
		{"A without fallthrough is NODATA", "example.org.", dns.TypeA, fall.Zero, false, "nodata"},
		{"A outside the fallthrough zones is NODATA", "example.org.", dns.TypeA, fallZones("example.net."), false, "nodata"},
		{"reverse zone apex TXT goes on", "100.in-addr.arpa.", dns.TypeTXT, fall.Root, true, "fallthrough"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tn := newTestTailnet(testSnapshot(), func(tn *Tailnet) { tn.Fall = c.fall })
			counter := requests.WithLabelValues("", "", c.result)
			before := testutil.ToFloat64(counter)
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			rcode, _ := tn.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion(c.qname, c.qtype))
			if gotNext := rcode == nextRcode && rec.Msg == nil; gotNext != c.wantNext {
				t.Fatalf("went to the next plugin = %v; want %v", gotNext, c.wantNext)
			}
			if !c.wantNext && (rec.Msg.Rcode != dns.RcodeSuccess || (c.result == "nodata") != (len(rec.Msg.Answer) == 0)) {
				t.Errorf("got %s with %d answers; want NOERROR, %s", dns.RcodeToString[rec.Msg.Rcode], len(rec.Msg.Answer), c.result)
			}
			if got := testutil.ToFloat64(counter) - before; got != 1 {
				t.Errorf("requests_total{result=%q} grew by %v; want 1", c.result, got)
			}
		})
	}
}

// TestNameserver: in a reverse zone, this node under the forward zone;
// with only reverse zones, its MagicDNS name; before the first table, ns
// below the forward zone.
func TestNameserver(t *testing.T) {
	cases := []struct {
		name  string
		zones []string
		snap  *watch.Snapshot
		zone  string
		want  string
	}{
		{"forward zone", []string{"example.org.", "100.in-addr.arpa."}, testSnapshot(), "example.org.", "self.example.org."},
		{"reverse zone", []string{"example.org.", "100.in-addr.arpa."}, testSnapshot(), "100.in-addr.arpa.", "self.example.org."},
		{"reverse zone without a forward zone", []string{"100.in-addr.arpa."}, testSnapshot(), "100.in-addr.arpa.", "self.tail-scale.ts.net."},
		{"reverse zone before the first table", []string{"example.org.", "100.in-addr.arpa."}, nil, "100.in-addr.arpa.", "ns.example.org."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tn := newTestTailnet(c.snap, func(tn *Tailnet) { tn.Zones = c.zones })
			if got := tn.nameserver(c.zone, tn.table.Load()); got != c.want {
				t.Errorf("nameserver(%s) = %s; want %s", c.zone, got, c.want)
			}
		})
	}
}

// TestPassLeavesSOA: a private name passed on leaves the zone's SOA for
// the fallback's NXDOMAIN; a public one leaves nothing.
func TestPassLeavesSOA(t *testing.T) {
	cases := []struct {
		name    string
		allowed policy.Source
		qname   string
		want    bool
	}{
		{"private name, peer offline", policy.Tailnet | policy.LAN, "alpha.example.org.", true},
		{"private name, no such host", policy.Tailnet, "nosuch.example.org.", true},
		{"public allowed", policy.All, "alpha.example.org.", false},
	}
	tn := newTestTailnet(testSnapshot(), func(tn *Tailnet) { tn.Fall = fall.Root })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := &policy.Decision{Allowed: c.allowed}
			tn.ServeDNS(policy.NewContext(context.Background(), d), dnstest.NewRecorder(&test.ResponseWriter{}), new(dns.Msg).SetQuestion(c.qname, dns.TypeA))
			if got := d.SOA != nil; got != c.want {
				t.Fatalf("left an SOA = %v; want %v", got, c.want)
			}
			if c.want && d.SOA.String() != test.SOA(soaLine).String() {
				t.Errorf("SOA %v; want %s", d.SOA, soaLine)
			}
		})
	}
}
