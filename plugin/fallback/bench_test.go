package fallback

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/forward"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/pkg/proxy"
	"github.com/coredns/coredns/plugin/pkg/transport"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
)

// BenchmarkUpstream asks a real upstream on loopback through each way a
// query reaches it: stock CoreDNS forward (the baseline, in the same run),
// and fallback after a chain that fell off its end, after a chain that said
// NXDOMAIN, and for a public-only name that skips the chain. The upstream
// runs in the test process, so its cost is in every figure: compare the
// differences.
func BenchmarkUpstream(b *testing.B) {
	q := new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA)
	cases := []struct {
		name    string
		handler func(b *testing.B, upstream string) plugin.Handler
	}{
		{"path=forward", func(b *testing.B, up string) plugin.Handler { return stockForward(b, up) }},
		{"path=fallback_fell_off", func(b *testing.B, up string) plugin.Handler { return newTestFallback(b, up, nil, nil) }},
		{"path=fallback_nxdomain", func(b *testing.B, up string) plugin.Handler {
			return newTestFallback(b, up, chain(dns.RcodeNameError, 0, true), nil)
		}},
		{"path=fallback_public_only", func(b *testing.B, up string) plugin.Handler {
			return newTestFallback(b, up, chain(dns.RcodeSuccess, policy.Tailnet, true), func(f *Fallback) { f.rules.Add("hub", []string{"public"}) })
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			// Each case has an upstream of its own, so that none
			// inherits another's sockets.
			benchServe(b, c.handler(b, benchUpstream(b).Addr), q)
		})
	}
}

// BenchmarkChainAnswers is what fallback adds when the chain answers (a
// tailnet or LAN hit): the chain alone, and fallback in front of it.
func BenchmarkChainAnswers(b *testing.B) {
	up := benchUpstream(b)
	q := new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA)
	next := chain(dns.RcodeSuccess, policy.Tailnet, true)
	b.Run("path=chain", func(b *testing.B) { benchServe(b, next, q) })
	b.Run("path=fallback_chain", func(b *testing.B) { benchServe(b, newTestFallback(b, up.Addr, next, nil), q) })
	// With a status directive in the block: the source of each name is
	// followed, for the switch timeline.
	b.Run("path=fallback_chain_switches", func(b *testing.B) {
		benchServe(b, newTestFallback(b, up.Addr, next, func(f *Fallback) { f.RecordSwitches() }), q)
	})
}

// benchUpstream is a loopback DNS server that answers every query with
// one A record, doing as little as it can.
func benchUpstream(tb testing.TB) *dnstest.Server {
	s := dnstest.NewMultipleServer(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		m.Authoritative = true
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: upstreamIP}}
		w.WriteMsg(m)
	})
	tb.Cleanup(s.Close)
	return s
}

var upstreamIP = net.ParseIP(publicIP)

// stockForward is CoreDNS's forward plugin with one plain-DNS upstream.
func stockForward(b *testing.B, addr string) *forward.Forward {
	f := forward.New()
	f.SetProxy(proxy.NewProxy("forward", addr, transport.DNS))
	b.Cleanup(func() { f.OnShutdown() })
	return f
}

// benchServe measures h answering copies of q, after checking that it
// answers at all.
func benchServe(b *testing.B, h plugin.Handler, q *dns.Msg) {
	ctx := context.Background()
	if rcode, err := h.ServeDNS(ctx, &test.ResponseWriter{}, q.Copy()); err != nil || !plugin.ClientWrite(rcode) {
		b.Fatalf("ServeDNS = %d, %v", rcode, err)
	}
	// Queries run 8 per CPU at once, so that the CPUs stay busy as under
	// dnsperf: one at a time, ns/op counted mostly wake-ups on loopback
	// and moved by 20% with the order of the cases. cpu-ns/op is the CPU
	// the process (both ends) spent per query.
	b.ReportAllocs()
	b.SetParallelism(8)
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &test.ResponseWriter{}
		for pb.Next() {
			h.ServeDNS(ctx, w, q.Copy())
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
