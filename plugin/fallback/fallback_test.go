package fallback

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
)

// publicIP is what the fake public upstream answers for every A query.
const publicIP = "203.0.113.10"

// loopUpstream is a real DNS server on loopback standing in for the public
// authority; it records the names it was asked.
type loopUpstream struct {
	*dnstest.Server
	mu    sync.Mutex
	asked []string
}

func newUpstream(t testing.TB) *loopUpstream {
	u := &loopUpstream{}
	u.Server = dnstest.NewMultipleServer(func(w dns.ResponseWriter, r *dns.Msg) {
		u.mu.Lock()
		u.asked = append(u.asked, r.Question[0].Name)
		u.mu.Unlock()
		m := new(dns.Msg).SetReply(r)
		m.Authoritative = true
		if r.Question[0].Qtype == dns.TypeA {
			m.Answer = []dns.RR{test.A(r.Question[0].Name + " 60 IN A " + publicIP)}
		}
		if opt := r.IsEdns0(); opt != nil {
			m.SetEdns0(opt.UDPSize(), false)
		}
		w.WriteMsg(m)
	})
	t.Cleanup(u.Close)
	return u
}

func (u *loopUpstream) names() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.asked...)
}

// newTestFallback starts a fallback for example.org in front of next,
// asking the upstream at addr.
func newTestFallback(t testing.TB, addr string, next plugin.Handler, configure func(*Fallback)) *Fallback {
	t.Helper()
	f := New()
	f.Zones = []string{"example.org."}
	f.Next = next
	f.up.Addrs = []string{addr}
	if configure != nil {
		configure(f)
	}
	if err := f.up.Build(); err != nil {
		t.Fatal(err)
	}
	f.up.Start()
	t.Cleanup(func() { f.up.Stop() })
	return f
}

// chain is a stand-in for the plugins after fallback: it answers with
// rcode (and an A record for NOERROR), as source when source is set, or
// returns rcode without writing when write is false.
func chain(rcode int, source policy.Source, write bool) plugin.Handler {
	return plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		if !write {
			return rcode, nil
		}
		m := new(dns.Msg)
		m.SetRcode(r, rcode)
		if rcode == dns.RcodeSuccess {
			m.Answer = []dns.RR{test.A(r.Question[0].Name + " 10 IN A 100.64.0.2")}
		}
		w.WriteMsg(m)
		policy.FromContext(ctx).Answered(source)
		return dns.RcodeSuccess, nil
	})
}

func TestServeDNS(t *testing.T) {
	up := newUpstream(t)
	cases := []struct {
		name      string
		next      plugin.Handler
		configure func(*Fallback)
		qname     string
		wantRcode int
		wantIP    string // the A record answered; "" for none
		wantAsked bool   // the upstream was asked
	}{
		{"chain answers", chain(dns.RcodeSuccess, policy.Tailnet, true), nil, "hub.example.org.", dns.RcodeSuccess, "100.64.0.2", false},
		{"chain NXDOMAIN goes public", chain(dns.RcodeNameError, 0, true), nil, "hub.example.org.", dns.RcodeSuccess, publicIP, true},
		{"chain SERVFAIL goes public", chain(dns.RcodeServerFailure, 0, true), nil, "hub.example.org.", dns.RcodeSuccess, publicIP, true},
		{"chain REFUSED goes public", chain(dns.RcodeRefused, 0, true), nil, "hub.example.org.", dns.RcodeSuccess, publicIP, true},
		{"chain fell off its end", nil, nil, "hub.example.org.", dns.RcodeSuccess, publicIP, true},
		{"SERVFAIL not in the on list", chain(dns.RcodeServerFailure, 0, true),
			func(f *Fallback) { f.rcodes = []int{dns.RcodeNameError} }, "hub.example.org.", dns.RcodeServerFailure, "", false},
		{"acme challenge always public", chain(dns.RcodeSuccess, policy.Tailnet, true), nil, "_acme-challenge.hub.example.org.", dns.RcodeSuccess, publicIP, true},
		{"public-only name skips the chain", chain(dns.RcodeSuccess, policy.Tailnet, true),
			func(f *Fallback) { f.rules.Add("www", []string{"public"}) }, "www.example.org.", dns.RcodeSuccess, publicIP, true},
		{"private name answered by the tailnet", chain(dns.RcodeSuccess, policy.Tailnet, true),
			func(f *Fallback) { f.rules.Add("registry", []string{"tailnet"}) }, "registry.example.org.", dns.RcodeSuccess, "100.64.0.2", false},
		{"private name never gets a public answer from the chain", chain(dns.RcodeSuccess, 0, true),
			func(f *Fallback) { f.rules.Add("registry", []string{"tailnet"}) }, "x.registry.example.org.", dns.RcodeNameError, "", false},
		{"private name never goes to the upstreams", chain(dns.RcodeNameError, 0, true),
			func(f *Fallback) { f.rules.Add("reg*", []string{"tailnet", "lan"}) }, "registry.example.org.", dns.RcodeNameError, "", false},
		{"name outside the zones", chain(dns.RcodeNameError, 0, true), nil, "hub.example.net.", dns.RcodeNameError, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newTestFallback(t, up.Addr, c.next, c.configure)
			before := len(up.names())
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			f.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion(c.qname, dns.TypeA))
			if rec.Msg == nil {
				t.Fatal("nothing written")
			}
			if rec.Msg.Rcode != c.wantRcode {
				t.Errorf("rcode = %s; want %s", dns.RcodeToString[rec.Msg.Rcode], dns.RcodeToString[c.wantRcode])
			}
			gotIP := ""
			if len(rec.Msg.Answer) > 0 {
				gotIP = rec.Msg.Answer[0].(*dns.A).A.String()
			}
			if gotIP != c.wantIP {
				t.Errorf("answer = %q; want %q", gotIP, c.wantIP)
			}
			if asked := len(up.names()) > before; asked != c.wantAsked {
				t.Errorf("upstream asked = %v; want %v", asked, c.wantAsked)
			}
		})
	}
}

func TestPolicyReachesTheChain(t *testing.T) {
	up := newUpstream(t)
	var got policy.Source
	next := plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		got = policy.FromContext(ctx).Allowed
		return chain(dns.RcodeSuccess, policy.LAN, true).ServeDNS(ctx, w, r)
	})
	f := newTestFallback(t, up.Addr, next, func(f *Fallback) {
		f.rules.Add("grafana", []string{"tailnet", "lan", "public"})
		f.rules.Add("nas", []string{"lan"})
	})
	f.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), new(dns.Msg).SetQuestion("a.nas.example.org.", dns.TypeA))
	if got != policy.LAN {
		t.Errorf("the chain saw allowed sources %v; want lan", got)
	}
}

func TestUpstreamDown(t *testing.T) {
	// A closed port on loopback: nothing answers there.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()
	f := newTestFallback(t, dead, chain(dns.RcodeNameError, 0, true), nil)
	q := new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA)
	q.SetEdns0(1232, false)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	f.ServeDNS(context.Background(), rec, q)
	if rec.Msg == nil || rec.Msg.Rcode != dns.RcodeServerFailure {
		t.Fatalf("got %v; want SERVFAIL", rec.Msg)
	}
	if code, text := replyEDE(rec.Msg); code != dns.ExtendedErrorCodeNoReachableAuthority || text == "" {
		t.Errorf("EDE = %d %q; want %d with the reason", code, text, dns.ExtendedErrorCodeNoReachableAuthority)
	}
}

func TestEDEOnFallbackAnswers(t *testing.T) {
	up := newUpstream(t)
	f := newTestFallback(t, up.Addr, chain(dns.RcodeNameError, 0, true), func(f *Fallback) { f.ede = true })
	q := new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA)
	q.SetEdns0(1232, false)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	f.ServeDNS(context.Background(), rec, q)
	if code, text := replyEDE(rec.Msg); code != dns.ExtendedErrorCodeOther || text != "answered by the fallback upstreams: nxdomain" {
		t.Errorf("EDE = %d %q; want the reason nxdomain", code, text)
	}
	rec = dnstest.NewRecorder(&test.ResponseWriter{})
	f.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA))
	if rec.Msg.IsEdns0() != nil {
		t.Error("a query without EDNS got an OPT record")
	}
}

func TestOriginal(t *testing.T) {
	cases := []struct {
		original bool
		want     string
	}{
		{false, "rewritten.example.org."},
		{true, "hub.example.org."},
	}
	for _, c := range cases {
		up := newUpstream(t)
		rewrite := plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
			r.Question[0].Name = "rewritten.example.org."
			return chain(dns.RcodeNameError, 0, true).ServeDNS(ctx, w, r)
		})
		f := newTestFallback(t, up.Addr, rewrite, func(f *Fallback) { f.original = c.original })
		f.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA))
		if got := up.names(); len(got) != 1 || got[0] != c.want {
			t.Errorf("original=%v: upstream asked %v; want %s", c.original, got, c.want)
		}
	}
}

// replyEDE returns the first Extended DNS Error of m, if any.
func replyEDE(m *dns.Msg) (uint16, string) {
	if opt := m.IsEdns0(); opt != nil {
		for _, o := range opt.Option {
			if e, ok := o.(*dns.EDNS0_EDE); ok {
				return e.InfoCode, e.ExtraText
			}
		}
	}
	return 0, ""
}

// TestMaxTTL: upstream answers carry at most max_ttl, so a name answered
// publicly while its peer was offline is asked again soon.
func TestMaxTTL(t *testing.T) {
	up := newUpstream(t)
	cases := []struct {
		maxTTL uint32
		want   uint32
	}{
		{0, 60},
		{10, 10},
		{600, 60},
	}
	for _, c := range cases {
		f := newTestFallback(t, up.Addr, chain(dns.RcodeNameError, 0, true), func(f *Fallback) { f.maxTTL = c.maxTTL })
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		f.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA))
		if len(rec.Msg.Answer) != 1 || rec.Msg.Answer[0].Header().Ttl != c.want {
			t.Errorf("max_ttl %d: answer %v; want TTL %d", c.maxTTL, rec.Msg.Answer, c.want)
		}
	}
}

// TestNotAQuery: zone transfers are refused and other opcodes are not
// implemented, for private names too, and neither reaches the chain or
// the upstreams, where a REFUSED would be asked again publicly.
func TestNotAQuery(t *testing.T) {
	up := newUpstream(t)
	cases := []struct {
		name   string
		qname  string
		qtype  uint16
		opcode int
		rcode  int
	}{
		{"AXFR", "example.org.", dns.TypeAXFR, dns.OpcodeQuery, dns.RcodeRefused},
		{"IXFR", "example.org.", dns.TypeIXFR, dns.OpcodeQuery, dns.RcodeRefused},
		{"NOTIFY", "example.org.", dns.TypeSOA, dns.OpcodeNotify, dns.RcodeNotImplemented},
		{"NOTIFY for a private name", "registry.example.org.", dns.TypeA, dns.OpcodeNotify, dns.RcodeNotImplemented},
		{"UPDATE", "example.org.", dns.TypeSOA, dns.OpcodeUpdate, dns.RcodeNotImplemented},
	}
	reached := false
	next := plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		reached = true
		return dns.RcodeRefused, nil
	})
	f := newTestFallback(t, up.Addr, next, func(f *Fallback) { f.rules.Add("registry", []string{"tailnet"}) })
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			reached = false
			before := len(up.names())
			q := new(dns.Msg).SetQuestion(c.qname, c.qtype)
			q.Opcode = c.opcode
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			f.ServeDNS(context.Background(), rec, q)
			if rec.Msg == nil || rec.Msg.Rcode != c.rcode {
				t.Fatalf("got %v; want %s", rec.Msg, dns.RcodeToString[c.rcode])
			}
			if reached || len(up.names()) > before {
				t.Errorf("reached the chain %v, asked the upstream %v; want neither", reached, len(up.names()) > before)
			}
		})
	}
}

// TestPrivateNXDOMAINHasSOA: the NXDOMAIN of a private name carries an SOA
// (RFC 2308 §3), whichever way the chain failed to answer it.
func TestPrivateNXDOMAINHasSOA(t *testing.T) {
	up := newUpstream(t)
	tailnetSOA := test.SOA("example.org. 1 IN SOA hub.example.org. hostmaster.example.org. 7 7200 1800 86400 1")
	publicSOA := test.SOA("example.org. 60 IN SOA ns1.example.org. hostmaster.example.org. 3 7200 1800 86400 60")
	passes := plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		if d := policy.FromContext(ctx); d.WantsSOA() {
			d.SOA = tailnetSOA
		}
		return dns.RcodeServerFailure, nil // fell off the chain's end
	})
	public := plugin.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg).SetRcode(r, dns.RcodeNameError)
		m.Ns = []dns.RR{test.NS("example.org. 60 IN NS ns1.example.org."), publicSOA}
		w.WriteMsg(m)
		return dns.RcodeSuccess, nil
	})
	cases := []struct {
		name string
		next plugin.Handler
		want string
	}{
		{"the SOA of the source that passed it on", passes, tailnetSOA.String()},
		{"the chain's SOA", public, publicSOA.String()},
		{"nothing answered: an SOA for the zone", nil, "example.org.\t1\tIN\tSOA\texample.org. hostmaster.example.org. 0 7200 1800 86400 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newTestFallback(t, up.Addr, c.next, func(f *Fallback) { f.rules.Add("registry", []string{"tailnet", "lan"}) })
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			f.ServeDNS(context.Background(), rec, new(dns.Msg).SetQuestion("registry.example.org.", dns.TypeA))
			if rec.Msg == nil || rec.Msg.Rcode != dns.RcodeNameError {
				t.Fatalf("got %v; want NXDOMAIN", rec.Msg)
			}
			if len(rec.Msg.Ns) != 1 || rec.Msg.Ns[0].String() != c.want {
				t.Errorf("authority %v; want only %s", rec.Msg.Ns, c.want)
			}
		})
	}
}

// truncatingUpstream answers TXT queries with n records of 200 bytes, in
// full over TCP and cut to 512 bytes with TC over UDP, whatever buffer
// the query offers, as an authority with a small UDP limit does. It
// records the transport of each query.
func truncatingUpstream(t *testing.T, n int) (addr string, protos func() []string) {
	var mu sync.Mutex
	var asked []string
	s := dnstest.NewMultipleServer(func(w dns.ResponseWriter, r *dns.Msg) {
		proto := "udp"
		if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
			proto = "tcp"
		}
		mu.Lock()
		asked = append(asked, proto)
		mu.Unlock()
		m := new(dns.Msg).SetReply(r)
		m.Authoritative = true
		for i := range n {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
				Txt: []string{fmt.Sprintf("%03d%s", i, strings.Repeat("x", 197))}})
		}
		if proto == "udp" {
			m.Truncate(dns.MinMsgSize)
		}
		w.WriteMsg(m)
	})
	t.Cleanup(s.Close)
	return s.Addr, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), asked...) }
}

// TestTruncatedRetriedOverTCP: an answer an upstream truncates over UDP
// is asked for again over TCP when the client has room for more, and
// passed on truncated when it has not.
func TestTruncatedRetriedOverTCP(t *testing.T) {
	cases := []struct {
		name      string
		tcp       bool   // the client asks over TCP
		edns      uint16 // the client's buffer; 0 for no EDNS
		wantTC    bool
		wantAsked string // the transports the upstream saw
	}{
		{"EDNS 4096: asked again over TCP, the whole answer", false, 4096, false, "udp tcp"},
		{"EDNS 1232: asked again over TCP", false, 1232, false, "udp tcp"},
		{"no EDNS: truncated, the client retries itself", false, 0, true, "udp"},
		{"over TCP: the whole answer at once", true, 0, false, "tcp"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr, protos := truncatingUpstream(t, 5)
			f := newTestFallback(t, addr, chain(dns.RcodeNameError, 0, true), nil)
			q := new(dns.Msg).SetQuestion("big.example.org.", dns.TypeTXT)
			if c.edns > 0 {
				q.SetEdns0(c.edns, false)
			}
			rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: c.tcp})
			f.ServeDNS(context.Background(), rec, q)
			if rec.Msg == nil {
				t.Fatal("nothing written")
			}
			wantAnswers := 5
			if c.wantTC {
				wantAnswers = len(rec.Msg.Answer) // whatever fit 512 bytes
			}
			if rec.Msg.Truncated != c.wantTC || len(rec.Msg.Answer) != wantAnswers {
				t.Errorf("TC %v with %d answers; want TC %v and %d", rec.Msg.Truncated, len(rec.Msg.Answer), c.wantTC, wantAnswers)
			}
			if got := strings.Join(protos(), " "); got != c.wantAsked {
				t.Errorf("upstream asked over %q; want %q", got, c.wantAsked)
			}
		})
	}
}
