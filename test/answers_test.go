package test

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// askWith sends m to server over proto ("udp" or "tcp") from loopback.
func askWith(t *testing.T, server, proto string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: proto, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], proto, err)
	}
	return r
}

// TestDeviceAnswers asks the device chain (fallback, tailnet and mdns
// with fallthrough, the public authority behind fallback) what a DNS
// engineer would check: the apex, transfers, other opcodes.
func TestDeviceAnswers(t *testing.T) {
	tn := tailnettest.Start(t)
	dev := tn.AddNode(t, "dev") // the device, whose tailscaled the server asks
	hub := tn.AddNode(t, "hub")
	api := dev.ServeLocalAPI(t)
	auth := startAuthority(t)
	addLoopbackAddr(t, tailnetClient)
	srv := deployment(t, "device.Corefile", api.Path, auth,
		"        fallthrough\n    }\n}", "        fallthrough\n    }\n    mdns {\n        fallthrough\n    }\n}")
	waitLoaded(t, srv, hub.IPv4.String())

	query := func(name string, qtype uint16, opcode int) *dns.Msg {
		m := new(dns.Msg).SetQuestion(name, qtype)
		m.Opcode = opcode
		m.SetEdns0(1232, false)
		return m
	}
	cases := []struct {
		name   string
		proto  string
		msg    *dns.Msg
		rcode  int
		answer string // the answer section, rr data joined by spaces; "" for none
	}{
		{"apex A is the website's", "udp", query("example.org.", dns.TypeA, dns.OpcodeQuery), dns.RcodeSuccess, apexIPv4},
		{"apex MX is the public zone's", "udp", query("example.org.", dns.TypeMX, dns.OpcodeQuery), dns.RcodeSuccess, "10 mail.example.org."},
		{"apex SOA is the tailnet's", "udp", query("example.org.", dns.TypeSOA, dns.OpcodeQuery), dns.RcodeSuccess, "dev.example.org. hostmaster.example.org."},
		{"host ANY gets its addresses", "udp", query("hub.example.org.", dns.TypeANY, dns.OpcodeQuery), dns.RcodeSuccess, hub.IPv4.String() + " " + hub.IPv6.String()},
		{"apex ANY gets SOA and NS", "udp", query("example.org.", dns.TypeANY, dns.OpcodeQuery), dns.RcodeSuccess, "dev.example.org."},
		{"AXFR over UDP is refused", "udp", query("example.org.", dns.TypeAXFR, dns.OpcodeQuery), dns.RcodeRefused, ""},
		{"AXFR over TCP is refused", "tcp", query("example.org.", dns.TypeAXFR, dns.OpcodeQuery), dns.RcodeRefused, ""},
		{"IXFR over TCP is refused", "tcp", query("example.org.", dns.TypeIXFR, dns.OpcodeQuery), dns.RcodeRefused, ""},
		{"NOTIFY is not implemented", "udp", query("example.org.", dns.TypeSOA, dns.OpcodeNotify), dns.RcodeNotImplemented, ""},
		{"NOTIFY for a host is not implemented", "udp", query("hub.example.org.", dns.TypeA, dns.OpcodeNotify), dns.RcodeNotImplemented, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := askWith(t, srv, c.proto, c.msg)
			var data []string
			for _, rr := range r.Answer {
				data = append(data, strings.TrimSpace(rr.String()[len(rr.Header().String()):]))
			}
			got := strings.Join(data, " ")
			if r.Rcode != c.rcode || !strings.HasPrefix(got, c.answer) || (c.answer == "") != (got == "") {
				t.Errorf("got %s %q; want %s %q", dns.RcodeToString[r.Rcode], got, dns.RcodeToString[c.rcode], c.answer)
			}
		})
	}

	// Last: it takes hub off the tailnet.
	t.Run("private name with its host away: NXDOMAIN with the SOA", func(t *testing.T) {
		hub.Close()
		ask := func() *dns.Msg {
			return askWith(t, srv, "udp", query("registry.example.org.", dns.TypeA, dns.OpcodeQuery))
		}
		r := ask()
		waitFor(t, 10*time.Second, "registry NXDOMAIN", ask, func(m *dns.Msg) bool { r = m; return m.Rcode == dns.RcodeNameError })
		if len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA || r.Ns[0].(*dns.SOA).Ns != "dev.example.org." {
			t.Errorf("authority %v; want the tailnet's SOA", r.Ns)
		}
	})
}
