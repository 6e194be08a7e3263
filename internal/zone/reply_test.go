package zone

import (
	"net"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

func TestReply(t *testing.T) {
	soa := SOA("example.org.", "hub.example.org.", 42, 10)
	a := &dns.A{Hdr: Header("hub.example.org.", dns.TypeA, 10), A: net.IPv4(100, 64, 0, 2)}
	cases := []struct {
		name    string
		rcode   int
		answer  []dns.RR
		wantSOA bool
	}{
		{"answer: records, no SOA", dns.RcodeSuccess, []dns.RR{a}, false},
		{"NODATA: NOERROR and the SOA", dns.RcodeSuccess, nil, true},
		{"NXDOMAIN: the SOA", dns.RcodeNameError, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA)
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			if err := Reply(rec, req, tc.rcode, tc.answer, soa); err != nil {
				t.Fatal(err)
			}
			m := rec.Msg
			if m.Rcode != tc.rcode || !m.Authoritative || m.Id != req.Id || len(m.Answer) != len(tc.answer) {
				t.Fatalf("reply %v; want rcode %s, AA, the query's ID and %d answers", m, dns.RcodeToString[tc.rcode], len(tc.answer))
			}
			if got := len(m.Ns) == 1 && m.Ns[0] == dns.RR(soa); got != tc.wantSOA {
				t.Errorf("authority %v; want the SOA: %v", m.Ns, tc.wantSOA)
			}
		})
	}
}

func TestSOA(t *testing.T) {
	soa := SOA("example.org.", "hub.example.org.", 42, 10)
	want := "example.org.\t10\tIN\tSOA\thub.example.org. hostmaster.example.org. 42 7200 1800 86400 10"
	if soa.String() != want {
		t.Errorf("SOA %q; want %q", soa, want)
	}
}

func TestReject(t *testing.T) {
	query := func(qtype uint16) *dns.Msg { return new(dns.Msg).SetQuestion("example.org.", qtype) }
	withOpcode := func(m *dns.Msg, op int) *dns.Msg { m.Opcode = op; return m }
	cases := []struct {
		name  string
		req   *dns.Msg
		want  bool
		rcode int
	}{
		{"a query is answered", query(dns.TypeA), false, 0},
		{"ANY is a query", query(dns.TypeANY), false, 0},
		{"AXFR is refused", query(dns.TypeAXFR), true, dns.RcodeRefused},
		{"IXFR is refused", query(dns.TypeIXFR), true, dns.RcodeRefused},
		{"NOTIFY is not implemented", withOpcode(query(dns.TypeSOA), dns.OpcodeNotify), true, dns.RcodeNotImplemented},
		{"UPDATE is not implemented", withOpcode(query(dns.TypeSOA), dns.OpcodeUpdate), true, dns.RcodeNotImplemented},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			if got := Reject(rec, tc.req); got != tc.want {
				t.Fatalf("Reject = %v; want %v", got, tc.want)
			}
			if !tc.want {
				if rec.Msg != nil {
					t.Errorf("wrote %v; want nothing", rec.Msg)
				}
				return
			}
			if m := rec.Msg; m == nil || m.Rcode != tc.rcode || m.Id != tc.req.Id || !m.Response || m.Authoritative || len(m.Answer)+len(m.Ns) > 0 {
				t.Errorf("reply %v; want rcode %s, no records", m, dns.RcodeToString[tc.rcode])
			}
		})
	}
}
