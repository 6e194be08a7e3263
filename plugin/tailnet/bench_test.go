package tailnet

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	_ "github.com/coredns/coredns/plugin/hosts"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
	"github.com/tailhorizon/tailhorizon/test/fixture"
)

// bigSnapshot is a live tailnet of n online peers called host0, host1, ...
func bigSnapshot(n int) *watch.Snapshot {
	s := testSnapshot()
	s.Nodes = s.Nodes[:1]
	for i := range n {
		v4 := netip.AddrFrom4([4]byte{100, 64 + byte(i>>16), byte(i >> 8), byte(i)})
		v6 := netip.AddrFrom16([16]byte{0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0, 14: byte(i >> 8), 15: byte(i)})
		s.Nodes = append(s.Nodes, testNode(i+2, fmt.Sprintf("host%d.tail-scale.ts.net.", i), true,
			[]string{v4.String(), v6.String()}, "tag:group"))
	}
	return s
}

// BenchmarkServeDNS answers grafana.hostN.example.org from tailnets of
// several sizes; compare with BenchmarkHosts, stock CoreDNS hosts with the
// same number of names, measured in the same run.
func BenchmarkServeDNS(b *testing.B) {
	for _, peers := range []int{3, 1000, 10000} {
		b.Run(fmt.Sprintf("peers=%d", peers), func(b *testing.B) {
			tn := newTestTailnet(bigSnapshot(peers), func(tn *Tailnet) { tn.tableConf.Tags = false })
			benchHandler(b, tn, fmt.Sprintf("grafana.host%d.example.org.", peers/2))
		})
	}
}

func BenchmarkHosts(b *testing.B) {
	for _, names := range []int{3, 1000, 10000} {
		b.Run(fmt.Sprintf("names=%d", names), func(b *testing.B) {
			benchHandler(b, stockHosts(b, names), fmt.Sprintf("host%d.example.org.", names/2))
		})
	}
}

func benchHandler(b *testing.B, h plugin.Handler, qname string) {
	ctx := context.Background()
	q := new(dns.Msg).SetQuestion(qname, dns.TypeA)
	w := &test.ResponseWriter{}
	rec := dnstest.NewRecorder(w)
	if _, err := h.ServeDNS(ctx, rec, q); err != nil || rec.Msg == nil || len(rec.Msg.Answer) == 0 {
		b.Fatalf("no answer for %s: %v", qname, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeDNS(ctx, w, q)
	}
}

// stockHosts builds CoreDNS's hosts plugin with names inline entries, the
// way a Corefile would.
func stockHosts(b *testing.B, names int) plugin.Handler {
	var sb strings.Builder
	sb.WriteString("hosts {\n")
	for i := range names {
		fmt.Fprintf(&sb, "100.%d.%d.%d host%d.example.org\n", 64+(i>>16), byte(i>>8), byte(i), i)
	}
	sb.WriteString("}\n")
	c := fixture.Controller(sb.String())
	setup, err := caddy.DirectiveAction("dns", "hosts")
	if err != nil {
		b.Fatal(err)
	}
	if err := setup(c); err != nil {
		b.Fatal(err)
	}
	return dnsserver.GetConfig(c).Plugin[0](test.NextHandler(dns.RcodeNameError, nil))
}

// TestServeDNSAllocs keeps the hot path's allocations in budget: the reply,
// its question and answer slices, and the record.
func TestServeDNSAllocs(t *testing.T) {
	tn := newTestTailnet(bigSnapshot(1000), nil)
	q := new(dns.Msg).SetQuestion("grafana.host500.example.org.", dns.TypeA)
	w := &test.ResponseWriter{}
	got := testing.AllocsPerRun(1000, func() { tn.ServeDNS(context.Background(), w, q) })
	const budget = 5
	if got > budget {
		t.Errorf("ServeDNS allocates %v times per query; want at most %d", got, budget)
	}
}
