package lan

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testListener is one interface, index 2, on 198.18.1.0/24 and
// 2001:db8:1::/64, without sockets.
func testListener() *listener {
	return &listener{ifaces: map[int]*iface{2: {
		index: 2, name: "veth0", has4: true, has6: true,
		prefixes: []netip.Prefix{netip.MustParsePrefix("198.18.1.0/24"), netip.MustParsePrefix("2001:db8:1::/64")},
	}}}
}

// response packs an mDNS response with rrs in its answer section.
func response(t *testing.T, edit func(*dns.Msg), rrs ...string) []byte {
	t.Helper()
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}}
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	if edit != nil {
		edit(m)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInspect(t *testing.T) {
	lan := newFakeLAN()
	r := lan.resolver(time.Second)
	r.cache.fail("beta", t0)    // asked for before
	r.cache.fail("printer", t0) // asked for before
	r.maxTTL = 2 * time.Minute  // the cap
	onLink := netip.MustParseAddr("198.18.1.2")
	cacheFlush := func(m *dns.Msg) { m.Answer[0].Header().Class |= 0x8000 }
	cases := []struct {
		name    string
		pkt     []byte
		ifIndex int
		src     netip.Addr
		want    map[string][]Record
		rejects []string
	}{
		{"A and AAAA", response(t, nil, "beta.local. 120 IN A 198.18.1.20", "Beta.Local. 120 IN AAAA 2001:db8:1::20"), 2, onLink,
			map[string][]Record{"beta": {rec("198.18.1.20", 120), rec("2001:db8:1::20", 120)}}, nil},
		{"cache-flush bit", response(t, cacheFlush, "beta.local. 120 IN A 198.18.1.20"), 2, onLink,
			map[string][]Record{"beta": {{Addr: netip.MustParseAddr("198.18.1.20"), TTL: 120, Flush: true}}}, nil},
		{"TTL capped", response(t, nil, "beta.local. 4500 IN A 198.18.1.20"), 2, onLink,
			map[string][]Record{"beta": {rec("198.18.1.20", 120)}}, nil},
		{"goodbye", response(t, nil, "beta.local. 0 IN A 198.18.1.20"), 2, onLink,
			map[string][]Record{"beta": {rec("198.18.1.20", 0)}}, nil},
		{"IPv6 link-local source", response(t, nil, "beta.local. 120 IN A 198.18.1.20"), 2, netip.MustParseAddr("fe80::1%veth0"),
			map[string][]Record{"beta": {rec("198.18.1.20", 120)}}, nil},
		{"other records and names are skipped", response(t, nil, "beta.local. 120 IN A 198.18.1.20",
			"_http._tcp.local. 120 IN PTR x._http._tcp.local.", "beta.example.org. 120 IN A 198.18.1.21", "a.beta.local. 120 IN A 198.18.1.22"), 2, onLink,
			map[string][]Record{"beta": {rec("198.18.1.20", 120)}}, nil},
		{"additional section counts", response(t, func(m *dns.Msg) { m.Extra, m.Answer = m.Answer, nil }, "beta.local. 120 IN A 198.18.1.20"), 2, onLink,
			map[string][]Record{"beta": {rec("198.18.1.20", 120)}}, nil},
		{"off-link source, to the group: on-link by RFC 6762 §11", response(t, nil, "beta.local. 120 IN A 198.18.1.20"), 2, netip.MustParseAddr("198.51.100.7"),
			map[string][]Record{"beta": {rec("198.18.1.20", 120)}}, nil},
		{"other interface", response(t, nil, "beta.local. 120 IN A 198.18.1.20"), 3, onLink,
			nil, []string{rejectInterface}},
		{"unsolicited host", response(t, nil, "gamma.local. 120 IN A 198.18.1.66"), 2, onLink,
			nil, []string{rejectUnasked}},
		{"link-local address", response(t, nil, "beta.local. 120 IN A 169.254.3.4", "beta.local. 120 IN AAAA fe80::4"), 2, onLink,
			nil, []string{rejectAddress, rejectAddress}},
		{"tailnet address", response(t, nil, "beta.local. 120 IN A 100.64.0.5", "beta.local. 120 IN AAAA fd7a:115c:a1e0::5"), 2, onLink,
			nil, []string{rejectAddress, rejectAddress}},
		{"loopback address", response(t, nil, "beta.local. 120 IN A 127.0.0.1"), 2, onLink,
			nil, []string{rejectAddress}},
		{"a query is no answer", response(t, func(m *dns.Msg) { m.Response = false }, "beta.local. 120 IN A 198.18.1.20"), 2, onLink,
			nil, nil},
		{"non-zero rcode", response(t, func(m *dns.Msg) { m.Rcode = dns.RcodeNameError }, "beta.local. 120 IN A 198.18.1.20"), 2, onLink,
			nil, []string{rejectMalformed}},
		{"non-zero opcode", response(t, func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }, "beta.local. 120 IN A 198.18.1.20"), 2, onLink,
			nil, []string{rejectMalformed}},
		{"truncated packet", response(t, nil, "beta.local. 120 IN A 198.18.1.20")[:20], 2, onLink,
			nil, []string{rejectMalformed}},
		{"garbage", []byte("\x00\x00\x84\x00\x00\x00\x00\x05garbage"), 2, onLink,
			nil, []string{rejectMalformed}},
		{"empty", nil, 2, onLink,
			nil, []string{rejectMalformed}},
		{"compression-pointer loop", pointerAnswer(12), 2, onLink,
			nil, []string{rejectMalformed}},
		{"pointer past the end", pointerAnswer(0xff), 2, onLink,
			nil, []string{rejectMalformed}},
		{"answer count past the records sent: those sent count", countAnswers(response(t, nil, "beta.local. 120 IN A 198.18.1.20"), 9), 2, onLink,
			map[string][]Record{"beta": {rec("198.18.1.20", 120)}}, nil},
		{"largest TTL capped", response(t, nil, "beta.local. 4294967295 IN A 198.18.1.20"), 2, onLink,
			map[string][]Record{"beta": {rec("198.18.1.20", 120)}}, nil},
		{"other class", response(t, nil, "beta.local. 120 CH A 198.18.1.20"), 2, onLink,
			nil, nil},
		{"escaped dot in the host", response(t, nil, `be\.ta.local. 120 IN A 198.18.1.20`), 2, onLink,
			nil, nil},
		{"authority section (a probe) does not count", response(t, func(m *dns.Msg) { m.Ns, m.Answer = m.Answer, nil }, "beta.local. 120 IN A 198.18.1.20"), 2, onLink,
			nil, nil},
		{"IPv4-mapped, multicast and unspecified addresses", response(t, nil, "beta.local. 120 IN AAAA ::ffff:198.18.1.20",
			"beta.local. 120 IN A 224.0.0.251", "beta.local. 120 IN AAAA ff02::fb", "beta.local. 120 IN A 0.0.0.0"), 2, onLink,
			nil, []string{rejectAddress, rejectAddress, rejectAddress, rejectAddress}},
		{"off-link address dropped, the LAN one kept", response(t, nil, "beta.local. 120 IN A 172.19.0.1", "beta.local. 120 IN A 198.18.1.20",
			"beta.local. 120 IN AAAA 2001:db8:99::20", "beta.local. 120 IN AAAA 2001:db8:1::20"), 2, onLink,
			map[string][]Record{"beta": {rec("198.18.1.20", 120), rec("2001:db8:1::20", 120)}}, []string{rejectOffLinkAddress, rejectOffLinkAddress}},
		{"NSEC: no AAAA", response(t, nil, "beta.local. 120 IN A 198.18.1.20", "beta.local. 120 IN NSEC beta.local. A"), 2, onLink,
			map[string][]Record{"beta": {rec("198.18.1.20", 120), {NoAAAA: true, TTL: 120}}}, nil},
		{"NSEC: no A", response(t, nil, "beta.local. 120 IN NSEC beta.local. AAAA"), 2, onLink,
			map[string][]Record{"beta": {{NoA: true, TTL: 120}}}, nil},
		{"NSEC that denies no address", response(t, nil, "beta.local. 120 IN NSEC beta.local. A AAAA"), 2, onLink,
			nil, nil},
		{"NSEC of a host nobody asked for", response(t, nil, "gamma.local. 120 IN NSEC gamma.local. A"), 2, onLink,
			nil, []string{rejectUnasked}},
	}
	l := testListener()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := packet{ifIndex: c.ifIndex, src: c.src, dst: group, hops: 255}
			got, rejects := r.inspect(l, c.pkt, p)
			if !equalLearnt(got, c.want) {
				t.Errorf("learnt %v; want %v", got, c.want)
			}
			if !slices.Equal(rejects, c.rejects) {
				t.Errorf("rejects %v; want %v", rejects, c.rejects)
			}
			if c.want == nil { // through the socket readers' path, the cache stays as it was
				r.receive(l, c.pkt, p)
				if got := addrs(r.cache, "beta", t0); r.cache.len() != 2 || !slices.Equal(got, []string{"negative"}) {
					t.Errorf("after receive: %d hosts, beta %v; want the 2 asked for, beta negative", r.cache.len(), got)
				}
			}
		})
	}
}

// group is the IPv4 mDNS group, as a destination address.
var group = netip.MustParseAddr("224.0.0.251")

// TestInspectPacket: the IP TTL must be 255, and a unicast response needs
// a source on the link; one to the group is on-link whatever its source
// (RFC 6762 §11).
func TestInspectPacket(t *testing.T) {
	r := newFakeLAN().resolver(time.Second)
	r.cache.fail("beta", t0)
	r.maxTTL = 2 * time.Minute
	pkt := response(t, nil, "beta.local. 120 IN A 198.18.1.20")
	self := netip.MustParseAddr("198.18.1.1") // this host's address on the link
	onLink, offLink := netip.MustParseAddr("198.18.1.2"), netip.MustParseAddr("198.51.100.7")
	cases := []struct {
		name   string
		p      packet
		reject string // "" for learnt
	}{
		{"to the group, on-link source", packet{2, onLink, group, 255}, ""},
		{"to the group, secondary address as source", packet{2, offLink, group, 255}, ""},
		{"to the group, TTL 254: forwarded by a router", packet{2, onLink, group, 254}, rejectTTL},
		{"to the group, TTL 1", packet{2, onLink, group, 1}, rejectTTL},
		{"TTL unknown (the socket does not say)", packet{2, onLink, group, 0}, ""},
		{"unicast, on-link source", packet{2, onLink, self, 255}, ""},
		{"unicast, off-link source", packet{2, offLink, self, 255}, rejectOffLink},
		{"unicast, tailnet source", packet{2, netip.MustParseAddr("100.64.0.9"), self, 255}, rejectOffLink},
		{"unicast, TTL 64", packet{2, onLink, self, 64}, rejectTTL},
		{"destination unknown: as unicast", packet{2, offLink, netip.Addr{}, 255}, rejectOffLink},
		{"another multicast group, off-link source", packet{2, offLink, netip.MustParseAddr("224.0.0.1"), 255}, rejectOffLink},
		{"IPv6 to the group, hop limit 254", packet{2, netip.MustParseAddr("2001:db8:1::2"), netip.MustParseAddr("ff02::fb"), 254}, rejectTTL},
		{"IPv6 to the group, off-link source", packet{2, netip.MustParseAddr("2001:db8:99::2"), netip.MustParseAddr("ff02::fb"), 255}, ""},
		{"IPv6 unicast, link-local source", packet{2, netip.MustParseAddr("fe80::2%veth0"), netip.MustParseAddr("2001:db8:1::1"), 255}, ""},
		{"IPv6 unicast, off-link source", packet{2, netip.MustParseAddr("2001:db8:99::2"), netip.MustParseAddr("2001:db8:1::1"), 255}, rejectOffLink},
	}
	l := testListener()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, rejects := r.inspect(l, pkt, c.p)
			var want []string
			if c.reject != "" {
				want = []string{c.reject}
			}
			if !slices.Equal(rejects, want) || (c.reject == "") != (len(got["beta"]) == 1) {
				t.Errorf("learnt %v, rejects %v; want learnt %v, rejects %v", got, rejects, c.reject == "", want)
			}
		})
	}
}

// pointerAnswer is a response with one A record whose owner name is a
// compression pointer to offset off: 12 points at itself, a loop.
func pointerAnswer(off byte) []byte {
	return []byte{0, 0, 0x84, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xc0, off, 0, 1, 0, 1, 0, 0, 0, 120, 0, 4, 198, 18, 1, 20}
}

// countAnswers sets the answer count of packet pkt to n.
func countAnswers(pkt []byte, n uint16) []byte {
	binary.BigEndian.PutUint16(pkt[6:], n)
	return pkt
}

func equalLearnt(a, b map[string][]Record) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestReceive: a spoofed or unsolicited answer never reaches the cache; an
// answer for a lookup in flight ends the lookup.
func TestReceive(t *testing.T) {
	lan := newFakeLAN()
	r := lan.resolver(time.Hour)
	r.query = func(string, bool) error { return nil } // the LAN stays silent
	l := testListener()
	done := r.lookup("beta", reasonMiss).any
	onLink := packet{ifIndex: 2, src: netip.MustParseAddr("198.18.1.2"), dst: group, hops: 255}
	forged := onLink
	forged.hops = 254
	r.receive(l, response(t, nil, "beta.local. 120 IN A 198.18.1.66"), forged)
	r.receive(l, response(t, nil, "gamma.local. 120 IN A 198.18.1.66"), onLink)
	select {
	case <-done:
		t.Fatal("the lookup ended on rejected answers")
	default:
	}
	r.receive(l, response(t, nil, "beta.local. 120 IN A 198.18.1.20"), onLink)
	<-done
	if got := addrs(r.cache, "beta", t0); !slices.Equal(got, []string{"198.18.1.20"}) {
		t.Errorf("beta = %v; want only the on-link answer", got)
	}
	if r.cache.has("gamma") {
		t.Error("the unsolicited gamma.local got into the cache")
	}
}

func TestOnLink(t *testing.T) {
	ifc := testListener().ifaces[2]
	cases := []struct {
		src  string
		want bool
	}{
		{"198.18.1.77", true},
		{"198.18.2.1", false},
		{"2001:db8:1::99", true},
		{"2001:db8:2::1", false},
		{"fe80::1234", true},
		{"100.64.0.1", false},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			if got := ifc.onLink(netip.MustParseAddr(c.src)); got != c.want {
				t.Errorf("onLink(%s) = %v; want %v", c.src, got, c.want)
			}
		})
	}
}
