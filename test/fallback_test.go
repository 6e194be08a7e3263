package test

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/fixture"
	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// fallbackCorefile serves example.org from the tailnet at socket, with the
// public authority at upstream behind the fallback. tailnet is written
// first and without fallthrough: only the directive order puts fallback
// in front of it.
func fallbackCorefile(socket, upstream string) string {
	return fmt.Sprintf(`.:0 {
    bind 127.0.0.1
    tailnet example.org {
        socket %s
        ttl 10
        alias registry beta
    }
    fallback example.org {
        to %s
        policy registry tailnet
        policy www public
    }
}
`, socket, upstream)
}

func TestFallback(t *testing.T) {
	tn := tailnettest.Start(t)
	hub := tn.AddNode(t, "hub")
	beta := tn.AddNode(t, "beta")
	api := hub.ServeLocalAPI(t)
	auth := startAuthority(t)
	_, srv := startCoreDNS(t, fallbackCorefile(api.Path, auth))
	ask := func(name string, qtype uint16) func() *dns.Msg {
		return func() *dns.Msg { return exchange(t, srv, name, qtype) }
	}
	waitFor(t, 20*time.Second, "beta answered from the tailnet", ask("beta.example.org", dns.TypeA),
		func(r *dns.Msg) bool { return hasA(r, beta.IPv4) })

	cases := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		answer string // the data of the one answer; "" for none
	}{
		{"online peer gets its tailnet address", "grafana.hub.example.org", dns.TypeA, dns.RcodeSuccess, hub.IPv4.String()},
		{"unknown name gets the public answer, though tailnet has no fallthrough", "blog.example.org", dns.TypeA, dns.RcodeSuccess, vpsIPv4},
		{"public-only name skips the tailnet", "www.example.org", dns.TypeA, dns.RcodeSuccess, wwwIPv4},
		{"acme challenge goes public", "_acme-challenge.hub.example.org", dns.TypeTXT, dns.RcodeSuccess, `"public-token"`},
		{"private name while its peer is online", "registry.example.org", dns.TypeA, dns.RcodeSuccess, beta.IPv4.String()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := exchange(t, srv, c.qname, c.qtype)
			if r.Rcode != c.rcode || answerData(r) != c.answer {
				t.Errorf("got %s %q; want %s %q", dns.RcodeToString[r.Rcode], answerData(r), dns.RcodeToString[c.rcode], c.answer)
			}
		})
	}

	t.Run("offline peer gets the public answer within 1s", func(t *testing.T) {
		beta.Close()
		took := waitFor(t, 10*time.Second, "beta answered by the public zone", ask("beta.example.org", dns.TypeA),
			func(r *dns.Msg) bool { return answerData(r) == vpsIPv4 })
		t.Logf("public answer %s after beta left", took)
		if took > time.Second {
			t.Errorf("public answer after %s; want within 1s", took)
		}
	})
	t.Run("private name with its peer offline is NXDOMAIN, not the public answer", func(t *testing.T) {
		r := exchange(t, srv, "registry.example.org", dns.TypeA)
		if r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
			t.Errorf("got %s %v; want NXDOMAIN", dns.RcodeToString[r.Rcode], r.Answer)
		}
	})
}

func TestFallbackUpstreamDown(t *testing.T) {
	tn := tailnettest.Start(t)
	hub := tn.AddNode(t, "hub")
	api := hub.ServeLocalAPI(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close() // nothing answers there now
	_, srv := startCoreDNS(t, fallbackCorefile(api.Path, dead))
	waitFor(t, 20*time.Second, "hub answered", func() *dns.Msg { return exchange(t, srv, "hub.example.org", dns.TypeA) },
		func(r *dns.Msg) bool { return hasA(r, hub.IPv4) })

	r := exchange(t, srv, "blog.example.org", dns.TypeA)
	if r.Rcode != dns.RcodeServerFailure {
		t.Fatalf("rcode = %s; want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	var reason string
	for _, o := range r.IsEdns0().Option {
		if e, ok := o.(*dns.EDNS0_EDE); ok && e.InfoCode == dns.ExtendedErrorCodeNoReachableAuthority {
			reason = e.ExtraText
		}
	}
	if reason == "" {
		t.Errorf("no Extended DNS Error with the reason in %v", r)
	}
	if r := exchange(t, srv, "hub.example.org", dns.TypeA); !hasA(r, hub.IPv4) {
		t.Errorf("after the upstream failed, hub: %v; want the server still answering", answers(r))
	}
}

// answerData returns the data of the single answer record, or "".
func answerData(r *dns.Msg) string {
	if len(r.Answer) != 1 {
		return ""
	}
	h := r.Answer[0].Header().String()
	return r.Answer[0].String()[len(h):]
}

// TestFallbackTLS: the upstream is reached over DNS-over-TLS, verified
// against its CA and server name.
func TestFallbackTLS(t *testing.T) {
	auth, ca := startTLSAuthority(t, "ns.example.net")
	_, srv := startCoreDNS(t, fmt.Sprintf(`example.org:0 {
    bind 127.0.0.1
    fallback {
        to tls://%s
        tls %s
        tls_servername ns.example.net
    }
}
`, auth, ca))
	r := exchange(t, srv, "blog.example.org", dns.TypeA)
	if answerData(r) != vpsIPv4 {
		t.Errorf("got %s %v; want the public %s over TLS", dns.RcodeToString[r.Rcode], r.Answer, vpsIPv4)
	}
}

// TestFallbackTruncation: an answer too large for UDP comes back truncated,
// and the client's retry over TCP gets all of it from the upstream.
func TestFallbackTruncation(t *testing.T) {
	port := fixture.Port(t) // one port for UDP and TCP
	startCoreDNS(t, fmt.Sprintf("example.org:%d {\n    bind 127.0.0.1\n    fallback {\n        to %s\n    }\n}\n", port, startAuthority(t)))
	srv := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	q := new(dns.Msg).SetQuestion("big.example.org.", dns.TypeTXT) // no EDNS: 512 bytes
	udp, _, err := (&dns.Client{Net: "udp", Timeout: 2 * time.Second}).Exchange(q, srv)
	if err != nil {
		t.Fatal(err)
	}
	if !udp.Truncated {
		t.Errorf("over UDP: truncated = false, %d bytes; want a truncated answer", udp.Len())
	}
	tcp, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(q, srv)
	if err != nil {
		t.Fatal(err)
	}
	if tcp.Truncated || len(tcp.Answer) != 1 || len(tcp.Answer[0].(*dns.TXT).Txt) != 4 {
		t.Errorf("over TCP: %v; want the whole TXT record", tcp.Answer)
	}
}

// startTruncatingAuthority serves example.org TXT answers of n 200-byte
// records on loopback: whole over TCP, cut to 512 bytes with TC over UDP
// whatever buffer the query offers, as an authority with a small UDP
// limit does. It returns the address and a count of its TCP queries.
func startTruncatingAuthority(t *testing.T, n int) (string, *atomic.Int32) {
	t.Helper()
	tcpQueries := new(atomic.Int32)
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		m.Authoritative = true
		for i := range n {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60},
				Txt: []string{fmt.Sprintf("%03d%s", i, strings.Repeat("x", 197))}})
		}
		if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
			tcpQueries.Add(1)
		} else {
			m.Truncate(dns.MinMsgSize)
		}
		w.WriteMsg(m)
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(fixture.Port(t)))
	for _, proto := range []string{"udp", "tcp"} {
		started := make(chan struct{})
		s := &dns.Server{Addr: addr, Net: proto, Handler: handler, NotifyStartedFunc: func() { close(started) }}
		go s.ListenAndServe()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatalf("the %s authority did not start", proto)
		}
		t.Cleanup(func() { s.Shutdown() })
	}
	return addr, tcpQueries
}

// TestFallbackTCPRetry: when the upstream truncates over UDP an answer the
// client has room for, fallback asks again over TCP and returns all of it;
// a client with less room gets it truncated to its own buffer.
func TestFallbackTCPRetry(t *testing.T) {
	const records = 12 // about 2.7 kB: more than 1232 bytes, less than 4096
	auth, tcpQueries := startTruncatingAuthority(t, records)
	port := fixture.Port(t)
	startCoreDNS(t, fmt.Sprintf("example.org:%d {\n    bind 127.0.0.1\n    fallback {\n        to %s\n    }\n}\n", port, auth))
	srv := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cases := []struct {
		name    string
		bufsize uint16
		wantTC  bool
	}{
		{"EDNS 4096: the whole answer over UDP", 4096, false},
		{"EDNS 1232: truncated to the client's buffer", 1232, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := tcpQueries.Load()
			q := new(dns.Msg).SetQuestion("big.example.org.", dns.TypeTXT)
			q.SetEdns0(c.bufsize, false)
			r, _, err := (&dns.Client{Net: "udp", UDPSize: c.bufsize, Timeout: 2 * time.Second}).Exchange(q, srv)
			if err != nil {
				t.Fatal(err)
			}
			if r.Truncated != c.wantTC || (!c.wantTC && len(r.Answer) != records) || r.Len() > int(c.bufsize) {
				t.Errorf("TC %v, %d answers, %d bytes; want TC %v, all %d answers without TC, at most %d bytes", r.Truncated, len(r.Answer), r.Len(), c.wantTC, records, c.bufsize)
			}
			if tcpQueries.Load() == before {
				t.Error("the upstream was not asked over TCP")
			}
		})
	}
	t.Run("kdig", func(t *testing.T) {
		if _, err := exec.LookPath("kdig"); err != nil {
			t.Skip("kdig not installed (apt-get install knot-dnsutils)")
		}
		out, err := exec.Command("kdig", "@127.0.0.1", "-p", strconv.Itoa(port), "+notcp", "+ignore", "+bufsize=4096", "+short", "+time=2", "+retry=0",
			"big.example.org", "TXT").CombinedOutput()
		if n := strings.Count(strings.TrimSpace(string(out)), "\n") + 1; err != nil || n != records {
			t.Errorf("kdig: %d records, %v:\n%s; want %d", n, err, out, records)
		}
	})
}
