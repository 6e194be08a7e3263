package table

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"tailscale.com/tailcfg"

	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
)

// node makes a node called host (a label) with addrs, IPv4 or IPv6.
func node(host string, online bool, addrs []string, tags ...string) *watch.Node {
	var ips []netip.Addr
	for _, a := range addrs {
		ips = append(ips, netip.MustParseAddr(a))
	}
	n := &watch.Node{Host: host, FQDN: host + ".tail-scale.ts.net.", Online: online, Tags: tags, Health: new(watch.Health)}
	n.SetAddrs(ips)
	return n
}

// snapshot is a small tailnet: this node, hub (online, hosts svc:cargo
// and tagged web), alpha (offline, hosts svc:docs), a peer called cargo
// whose name a service has too, and extra records.
func snapshot() *watch.Snapshot {
	self := node("self", true, []string{"100.64.0.1"})
	self.Self = true
	hub := node("hub", true, []string{"100.64.0.2", "fd7a:115c:a1e0::2"}, "tag:web")
	hub.Routes = []netip.Prefix{netip.MustParsePrefix("100.100.0.1/32")}
	alpha := node("alpha", false, []string{"100.64.0.4"}, "tag:web", "tag:hub")
	alpha.Routes = []netip.Prefix{netip.MustParsePrefix("100.100.0.2/32")}
	return &watch.Snapshot{
		State:   watch.Live,
		Running: true,
		Updated: time.Unix(1700000000, 0),
		Nodes:   []*watch.Node{self, hub, alpha},
		Suffix:  "tail-scale.ts.net",
		Services: []watch.Service{
			{Name: "cargo", Addrs: []netip.Addr{netip.MustParseAddr("100.100.0.1")}},
			{Name: "docs", Addrs: []netip.Addr{netip.MustParseAddr("100.100.0.2")}},
			{Name: "hub", Addrs: []netip.Addr{netip.MustParseAddr("100.100.0.3")}},
		},
		Records: watch.ParseRecords([]tailcfg.DNSRecord{
			{Name: "www.example.org", Value: "192.0.2.1"},
			{Name: "wiki.example.org", Value: "192.0.2.2"},
			{Name: "down.example.org", Value: "100.64.0.4"},
			{Name: "docs2.example.org", Value: "100.100.0.2"},
			{Name: "hub.example.org", Value: "192.0.2.9"},
			{Name: "mapped.tail-scale.ts.net", Value: "192.0.2.20"},
			{Name: "_x._tcp.srv.example.org", Type: "SRV", Value: "0 5 443 hub.example.org."},
		}),
	}
}

func config() Config {
	return Config{
		Aliases:  map[string]string{"wiki": "hub", "git": "nosuchhost", "reg": "hub"},
		SvcAlias: map[string]string{"crates": "cargo"},
		Services: true,
		Zones:    []string{"example.org."},
		Tags:     true,
		TTL:      10,
	}
}

// TestAnswer is the precedence of names, host > service > extra record >
// alias > tag name, and what each answers.
func TestAnswer(t *testing.T) {
	cases := []struct {
		name      string
		qname     string
		qtype     uint16
		configure func(*Config)
		kind      Kind
		reachable bool
		want      []string // the records, as dns.RR.String gives them
	}{
		{"host", "hub.example.org.", dns.TypeA, nil, Host, true, []string{"hub.example.org.\t10\tIN\tA\t100.64.0.2"}},
		{"below a host, case kept", "X.Hub.example.org.", dns.TypeAAAA, nil, Host, true, []string{"X.Hub.example.org.\t10\tIN\tAAAA\tfd7a:115c:a1e0::2"}},
		{"a host has no other type", "hub.example.org.", dns.TypeMX, nil, Host, true, nil},
		{"offline host", "alpha.example.org.", dns.TypeA, nil, Host, false, nil},
		{"service VIP", "cargo.example.org.", dns.TypeA, nil, Service, true, []string{"cargo.example.org.\t10\tIN\tA\t100.100.0.1"}},
		{"service with no reachable host", "docs.example.org.", dns.TypeA, nil, Service, false, nil},
		{"services off", "cargo.example.org.", dns.TypeA, func(c *Config) { c.Services = false }, Missing, false, nil},
		{"alias to a service", "crates.example.org.", dns.TypeA, nil, Service, true, []string{"crates.example.org.\t10\tIN\tA\t100.100.0.1"}},
		{"record", "www.example.org.", dns.TypeA, nil, Record, true, []string{"www.example.org.\t10\tIN\tA\t192.0.2.1"}},
		{"a host wins over a record", "hub.example.org.", dns.TypeA, nil, Host, true, []string{"hub.example.org.\t10\tIN\tA\t100.64.0.2"}},
		{"a record wins over an alias", "wiki.example.org.", dns.TypeA, nil, Record, true, []string{"wiki.example.org.\t10\tIN\tA\t192.0.2.2"}},
		{"an alias", "reg.example.org.", dns.TypeA, nil, Host, true, []string{"reg.example.org.\t10\tIN\tA\t100.64.0.2"}},
		{"an alias with CNAME", "reg.example.org.", dns.TypeA, func(c *Config) { c.CNAME = true }, Host, true,
			[]string{"reg.example.org.\t10\tIN\tCNAME\thub.example.org.", "hub.example.org.\t10\tIN\tA\t100.64.0.2"}},
		{"an alias of an unknown host", "git.example.org.", dns.TypeA, nil, Missing, false, nil},
		{"tag name", "web.example.org.", dns.TypeA, nil, Host, true, []string{"web.example.org.\t10\tIN\tA\t100.64.0.2"}},
		{"tags off", "web.example.org.", dns.TypeA, func(c *Config) { c.Tags = false }, Missing, false, nil},
		{"a record of an offline node's address", "down.example.org.", dns.TypeA, nil, Record, false, nil},
		{"a record of a VIP with no reachable host", "docs2.example.org.", dns.TypeA, nil, Record, false, nil},
		{"empty non-terminal", "_tcp.srv.example.org.", dns.TypeA, nil, Record, true, nil},
		{"records off", "www.example.org.", dns.TypeA, func(c *Config) { c.Records = RecordsOff }, Missing, false, nil},
		{"MagicDNS records not moved", "mapped.example.org.", dns.TypeA, nil, Missing, false, nil},
		{"MagicDNS records moved", "mapped.example.org.", dns.TypeA, func(c *Config) { c.Records = RecordsMagicDNS }, Record, true,
			[]string{"mapped.example.org.\t10\tIN\tA\t192.0.2.20"}},
		{"unknown", "nosuch.example.org.", dns.TypeA, nil, Missing, false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config()
			if c.configure != nil {
				c.configure(&cfg)
			}
			tbl := Build(snapshot(), cfg)
			q := Question{Owner: c.qname, Name: strings.ToLower(c.qname), Zone: "example.org.", Type: c.qtype}
			a := tbl.Answer(q, time.Now().UnixNano())
			var got []string
			for _, rr := range a.RRs {
				got = append(got, rr.String())
			}
			if a.Kind != c.kind || a.Reachable != c.reachable || strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got %v, reachable %v, %q; want %v, reachable %v, %q", a.Kind, a.Reachable, got, c.kind, c.reachable, c.want)
			}
		})
	}
}

// TestAnswerAsksTheProbe: with the probe on, a query marks the nodes it
// reaches as asked for, unreachable ones too; without it, none.
func TestAnswerAsksTheProbe(t *testing.T) {
	for _, probe := range []bool{false, true} {
		t.Run(fmt.Sprintf("probe=%v", probe), func(t *testing.T) {
			s := snapshot()
			cfg := config()
			cfg.Probe = probe
			tbl := Build(s, cfg)
			tbl.Answer(Question{Owner: "web.example.org.", Name: "web.example.org.", Zone: "example.org.", Type: dns.TypeA}, time.Now().UnixNano())
			for _, n := range s.Nodes[1:] {
				if asked := n.Health.Asked() != 0; asked != probe {
					t.Errorf("%s asked for = %v; want %v", n.Host, asked, probe)
				}
			}
		})
	}
}

// TestLookups: the table's other answers, and a nil table's.
func TestLookups(t *testing.T) {
	s := snapshot()
	tbl := Build(s, config())
	if got := tbl.Node(netip.MustParseAddr("fd7a:115c:a1e0::2")); got != s.Nodes[1] {
		t.Errorf("Node(hub's IPv6) = %v; want hub", got)
	}
	if got := tbl.Node(netip.MustParseAddr("100.100.0.1")); got != nil {
		t.Errorf("Node(a VIP) = %v; want nil", got)
	}
	for label, want := range map[string]bool{"hub": true, "alpha": true, "reg": true, "web": false, "cargo": false, "crates": false, "git": false} {
		if got := tbl.IsHost(label); got != want {
			t.Errorf("IsHost(%q) = %v; want %v", label, got, want)
		}
	}
	if !tbl.Serving() || tbl.Stale() || tbl.Serial() != 1700000000 || tbl.Self() != s.Nodes[0] {
		t.Errorf("Serving %v, Stale %v, Serial %d, Self %v; want true, false, 1700000000, self", tbl.Serving(), tbl.Stale(), tbl.Serial(), tbl.Self())
	}
	var none *Table
	if none.Serving() || none.Stale() || none.Serial() != 0 || none.Self() != nil {
		t.Errorf("nil table: Serving %v, Stale %v, Serial %d, Self %v; want false, false, 0, nil", none.Serving(), none.Stale(), none.Serial(), none.Self())
	}
}

// BenchmarkTableRebuild measures what one tailnet change costs at 10,000 peers.
func BenchmarkTableRebuild(b *testing.B) {
	s := &watch.Snapshot{State: watch.Live, Running: true}
	for i := range 10000 {
		v4 := netip.AddrFrom4([4]byte{100, 64 + byte(i>>16), byte(i >> 8), byte(i)})
		v6 := netip.AddrFrom16([16]byte{0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0, 14: byte(i >> 8), 15: byte(i)})
		s.Nodes = append(s.Nodes, node(fmt.Sprintf("host%d", i), true, []string{v4.String(), v6.String()}, "tag:group"))
	}
	cfg := Config{Tags: true, Aliases: map[string]string{"registry": "host1"}}
	b.ReportAllocs()
	for b.Loop() {
		Build(s, cfg)
	}
}
