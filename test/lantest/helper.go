package lantest

import (
	"encoding/json"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/mdns"
	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The helper process is the test binary started again, in a host's
// namespace, with envHelper naming what it does and envArgs its arguments.
const (
	envHelper = "TAILHORIZON_LAN_HELPER"
	envArgs   = "TAILHORIZON_LAN_ARGS"
)

// helperLife bounds a helper's life, whatever happens to the test.
const helperLife = 5 * time.Minute

// IsHelper reports whether this process is a helper. TestMain calls it
// first:
//
//	if lantest.IsHelper() { os.Exit(lantest.HelperMain()) }
func IsHelper() bool { return os.Getenv(envHelper) != "" }

// ResponderArgs configures a hashicorp/mdns responder.
type ResponderArgs struct {
	Iface   string       // interface to answer on
	Host    string       // host name, without ".local"
	Addrs   []netip.Addr // its addresses
	Service string       // service type it offers, e.g. "_workstation._tcp"
}

// SpoofArgs configures a spoofer: it sends Count copies of one mDNS
// response, from Src:5353 to the IPv4 group, then exits.
type SpoofArgs struct {
	Iface   string
	Src     netip.Addr // an address of the host; need not be on the LAN's prefix
	Records []string   // the answer records, in zone file format
	Count   int
	TTL     int // the IP TTL; 0 for 255. 254 is what a packet sent from one router away arrives with
}

// RawArgs configures a raw responder: it answers every question for
// Host.local in the family of Src with Records, from Src:5353, with IP TTL
// (hop limit) TTL, to the mDNS group (by unicast to the asker with
// Unicast), until it is stopped. It prints "answered" for each answer.
type RawArgs struct {
	Iface   string
	Host    string     // without ".local"
	Src     netip.Addr // an address of the host; need not be on the LAN's prefix
	Records []string   // the answer records, in zone file format: no NSEC unless listed
	TTL     int        // the IP TTL; 0 for 255
	Unicast bool
}

// RunResponder starts a hashicorp/mdns responder in h's namespace and
// waits until it serves.
func (h *Host) RunResponder(t testing.TB, args ResponderArgs) *Process {
	t.Helper()
	p := h.startHelper(t, "responder", args)
	if !p.waitLine("ready", 15*time.Second) {
		t.Fatalf("responder in %s did not start:\n%s", h.Netns, p.Output())
	}
	return p
}

// RunRaw starts a raw responder in h's namespace and waits until it
// listens.
func (h *Host) RunRaw(t testing.TB, args RawArgs) *Process {
	t.Helper()
	p := h.startHelper(t, "raw", args)
	if !p.waitLine("ready", 15*time.Second) {
		t.Fatalf("raw responder in %s did not start:\n%s", h.Netns, p.Output())
	}
	return p
}

// Spoof runs a spoofer in h's namespace and waits until it is done.
func (h *Host) Spoof(t testing.TB, args SpoofArgs) {
	t.Helper()
	p := h.startHelper(t, "spoof", args)
	select {
	case <-p.Exited():
	case <-time.After(15 * time.Second):
		t.Fatalf("spoofer in %s did not finish:\n%s", h.Netns, p.Output())
	}
	if p.cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("spoofer in %s failed:\n%s", h.Netns, p.Output())
	}
}

func (h *Host) startHelper(t testing.TB, mode string, args any) *Process {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	return h.Start(t, []string{envHelper + "=" + mode, envArgs + "=" + string(b)}, exe)
}

// HelperMain runs the helper this process was started as and returns its
// exit code.
func HelperMain() int {
	var err error
	switch mode := os.Getenv(envHelper); mode {
	case "responder":
		var a ResponderArgs
		if err = json.Unmarshal([]byte(os.Getenv(envArgs)), &a); err == nil {
			err = respond(a)
		}
	case "spoof":
		var a SpoofArgs
		if err = json.Unmarshal([]byte(os.Getenv(envArgs)), &a); err == nil {
			err = spoof(a)
		}
	case "raw":
		var a RawArgs
		if err = json.Unmarshal([]byte(os.Getenv(envArgs)), &a); err == nil {
			err = rawRespond(a)
		}
	default:
		err = fmt.Errorf("unknown helper %q", mode)
	}
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	return 0
}

// respond serves a host and a service with hashicorp/mdns until stdin
// closes, SIGTERM comes, or helperLife passes. hashicorp/mdns answers by
// unicast with the system's default TTL, and mdns hears only TTL 255
// (RFC 6762 §11), so the namespace's default is set to 255 first.
func respond(a ResponderArgs) error {
	for _, f := range []string{"/proc/sys/net/ipv4/ip_default_ttl", "/proc/sys/net/ipv6/conf/all/hop_limit", "/proc/sys/net/ipv6/conf/" + a.Iface + "/hop_limit"} {
		if err := os.WriteFile(f, []byte("255"), 0o644); err != nil {
			return err
		}
	}
	ifi, err := net.InterfaceByName(a.Iface)
	if err != nil {
		return err
	}
	var ips []net.IP
	for _, addr := range a.Addrs {
		ips = append(ips, addr.AsSlice())
	}
	svc, err := mdns.NewMDNSService(a.Host, a.Service, "local.", a.Host+".local.", 9, ips, []string{"tailhorizon test"})
	if err != nil {
		return err
	}
	srv, err := mdns.NewServer(&mdns.Config{Zone: svc, Iface: ifi, Logger: stdlog.New(os.Stdout, "", 0)})
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	fmt.Println("ready")
	waitForEnd()
	return nil
}

// waitForEnd returns when stdin closes, SIGTERM comes or helperLife passes.
func waitForEnd() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	eof := make(chan struct{})
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := os.Stdin.Read(buf); err != nil {
				close(eof)
				return
			}
		}
	}()
	select {
	case <-stop:
	case <-eof:
	case <-time.After(helperLife):
	}
}

// spoof sends the records from a.Src, a.Count times, 20 ms apart.
func spoof(a SpoofArgs) error {
	ifi, err := net.InterfaceByName(a.Iface)
	if err != nil {
		return err
	}
	pkt, err := response(a.Records)
	if err != nil {
		return err
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: a.Src.AsSlice(), Port: 5353})
	if err != nil {
		return err
	}
	defer c.Close()
	p := ipv4.NewPacketConn(c)
	if err := p.SetMulticastInterface(ifi); err != nil {
		return err
	}
	p.SetMulticastTTL(ttlOr255(a.TTL))
	group := &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}
	for range a.Count {
		if _, err := p.WriteTo(pkt, nil, group); err != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("sent", a.Count)
	return nil
}

// response packs an unsolicited mDNS response with the records, in the
// zone file syntax.
func response(records []string) ([]byte, error) {
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Response: true, Authoritative: true}}
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			return nil, err
		}
		m.Answer = append(m.Answer, rr)
	}
	return m.Pack()
}

func ttlOr255(ttl int) int {
	if ttl == 0 {
		return 255
	}
	return ttl
}

// rawRespond answers the questions for a.Host.local, as RawArgs says,
// until stdin closes, SIGTERM comes, or helperLife passes.
func rawRespond(a RawArgs) error {
	ifi, err := net.InterfaceByName(a.Iface)
	if err != nil {
		return err
	}
	pkt, err := response(a.Records)
	if err != nil {
		return err
	}
	c, err := listenRaw(a, ifi)
	if err != nil {
		return err
	}
	defer c.close()
	name := dns.CanonicalName(a.Host + ".local.")
	go func() {
		buf := make([]byte, 9000)
		for {
			n, from, err := c.read(buf)
			if err != nil {
				return
			}
			var q dns.Msg
			if q.Unpack(buf[:n]) != nil || q.Response || !asks(&q, name) {
				continue
			}
			to := c.group
			if a.Unicast {
				to = from
			}
			if err := c.write(pkt, to); err != nil {
				fmt.Println("error:", err)
				continue
			}
			fmt.Println("answered", from)
		}
	}()
	fmt.Println("ready")
	waitForEnd()
	return nil
}

// rawConn is a raw responder's socket on port 5353, of either family.
type rawConn struct {
	group net.Addr
	read  func([]byte) (int, net.Addr, error)
	write func([]byte, net.Addr) error // from a.Src, by IP_PKTINFO, whatever the socket is bound to
	close func() error
}

// listenRaw listens on port 5353 of the family of a.Src, joined to its
// mDNS group on ifi, sending with the IP TTL (hop limit) a asks for.
func listenRaw(a RawArgs, ifi *net.Interface) (*rawConn, error) {
	ttl := ttlOr255(a.TTL)
	if a.Src.Is6() {
		c, err := net.ListenUDP("udp6", &net.UDPAddr{Port: 5353})
		if err != nil {
			return nil, err
		}
		p := ipv6.NewPacketConn(c)
		group := &net.UDPAddr{IP: net.ParseIP("ff02::fb"), Port: 5353, Zone: ifi.Name}
		if err := errors.Join(p.JoinGroup(ifi, group), p.SetMulticastInterface(ifi), p.SetMulticastLoopback(false),
			p.SetMulticastHopLimit(ttl), p.SetHopLimit(ttl)); err != nil {
			c.Close()
			return nil, err
		}
		return &rawConn{group: group, close: c.Close,
			read: func(b []byte) (int, net.Addr, error) { n, _, from, err := p.ReadFrom(b); return n, from, err },
			write: func(b []byte, to net.Addr) error {
				_, err := p.WriteTo(b, &ipv6.ControlMessage{Src: a.Src.AsSlice(), IfIndex: ifi.Index}, to)
				return err
			}}, nil
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: 5353})
	if err != nil {
		return nil, err
	}
	p := ipv4.NewPacketConn(c)
	group := &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}
	if err := errors.Join(p.JoinGroup(ifi, group), p.SetMulticastInterface(ifi), p.SetMulticastLoopback(false),
		p.SetMulticastTTL(ttl), p.SetTTL(ttl)); err != nil {
		c.Close()
		return nil, err
	}
	return &rawConn{group: group, close: c.Close,
		read: func(b []byte) (int, net.Addr, error) { n, _, from, err := p.ReadFrom(b); return n, from, err },
		write: func(b []byte, to net.Addr) error {
			_, err := p.WriteTo(b, &ipv4.ControlMessage{Src: a.Src.AsSlice(), IfIndex: ifi.Index}, to)
			return err
		}}, nil
}

// asks reports whether q has a question for name, a canonical name.
func asks(q *dns.Msg, name string) bool {
	for _, qq := range q.Question {
		if dns.CanonicalName(qq.Name) == name {
			return true
		}
	}
	return false
}
