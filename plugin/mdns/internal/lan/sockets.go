package lan

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The mDNS group and port (RFC 6762 §3).
var (
	group4 = &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353}
	group6 = &net.UDPAddr{IP: net.ParseIP("ff02::fb"), Port: 5353}
)

// listener is the open mDNS sockets and the interfaces they serve. It is
// immutable and safe for concurrent use; a rescan publishes a new one with
// the same sockets.
type listener struct {
	c4     *ipv4.PacketConn // nil without IPv4
	c6     *ipv6.PacketConn // nil without IPv6
	ifaces map[int]*iface   // by index; never empty
}

// iface is one interface the resolver listens and asks on.
type iface struct {
	index      int
	name       string
	prefixes   []netip.Prefix // the interface's addresses with their prefix lengths
	has4, has6 bool
}

// onLink reports whether src is on the link of ifc: inside one of its
// prefixes, or an IPv6 link-local address (which arrived on this link).
func (ifc *iface) onLink(src netip.Addr) bool {
	return src.Is6() && src.IsLinkLocalUnicast() || ifc.covers(src)
}

// covers reports whether a is inside one of ifc's prefixes.
func (ifc *iface) covers(a netip.Addr) bool {
	a = a.WithZone("")
	for _, p := range ifc.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// pickInterfaces returns the interfaces to use: the ones named, or by
// default every interface that is up, multicast-capable, not loopback and
// not Tailscale's.
func pickInterfaces(names []string) []*iface {
	all, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []*iface
	for _, ni := range all {
		if len(names) > 0 && !slices.Contains(names, ni.Name) {
			continue
		}
		if ni.Flags&net.FlagUp == 0 || ni.Flags&net.FlagMulticast == 0 || ni.Flags&net.FlagLoopback != 0 {
			continue
		}
		ifc := &iface{index: ni.Index, name: ni.Name}
		addrs, _ := ni.Addrs()
		tailscale := strings.HasPrefix(ni.Name, "tailscale") || strings.HasPrefix(ni.Name, "ts")
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			addr, _ := netip.AddrFromSlice(ipn.IP)
			addr = addr.Unmap()
			ones, _ := ipn.Mask.Size()
			ifc.prefixes = append(ifc.prefixes, netip.PrefixFrom(addr, ones).Masked())
			ifc.has4 = ifc.has4 || addr.Is4()
			ifc.has6 = ifc.has6 || addr.Is6()
			tailscale = tailscale || isTailnet(addr)
		}
		if (tailscale && len(names) == 0) || len(ifc.prefixes) == 0 {
			continue
		}
		out = append(out, ifc)
	}
	return out
}

// tailnetRanges are Tailscale's address ranges (100.64.0.0/10 and
// fd7a:115c:a1e0::/48): a LAN answer never carries them.
var tailnetRanges = [...]netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fd7a:115c:a1e0::/48"),
}

// isTailnet reports whether a is in one of Tailscale's ranges.
func isTailnet(a netip.Addr) bool {
	return tailnetRanges[0].Contains(a) || tailnetRanges[1].Contains(a)
}

// rescan reads the interfaces, opens the sockets on the first call that
// finds one, joins the group on new interfaces, and publishes the result.
func (r *Resolver) rescan(names []string) {
	ifcs := pickInterfaces(names)
	old := r.lst.Load()
	if len(ifcs) == 0 {
		if old != nil || !r.warned {
			log.Warningf("no multicast interface to ask on (%s); LAN names are not answered until there is one", r.describe())
		}
		r.warned = true
		listeningGauge.WithLabelValues(r.key).Set(0)
		r.lst.Store(nil)
		return
	}
	l := &listener{ifaces: map[int]*iface{}}
	if r.c4 == nil && r.c6 == nil {
		if err := r.open(); err != nil {
			if !r.warned {
				log.Warningf("listen for mDNS: %v; LAN names are not answered until it succeeds", err)
				r.warned = true
			}
			return
		}
	}
	l.c4, l.c6 = r.c4, r.c6
	var joined []string
	for _, ifc := range ifcs {
		ni := &net.Interface{Index: ifc.index, Name: ifc.name}
		ok := false
		if l.c4 != nil && ifc.has4 {
			ok = l.c4.JoinGroup(ni, group4) == nil || (old != nil && old.ifaces[ifc.index] != nil) || ok
		}
		if l.c6 != nil && ifc.has6 {
			ok = l.c6.JoinGroup(ni, group6) == nil || (old != nil && old.ifaces[ifc.index] != nil) || ok
		}
		if ok {
			l.ifaces[ifc.index] = ifc
			joined = append(joined, ifc.name)
		}
	}
	listeningGauge.WithLabelValues(r.key).Set(float64(len(l.ifaces)))
	if len(l.ifaces) == 0 {
		r.lst.Store(nil)
		return
	}
	if old == nil || len(old.ifaces) != len(l.ifaces) {
		log.Infof("asking for LAN names on %s", strings.Join(joined, ", "))
		r.warned = false
	}
	r.lst.Store(l)
}

func (r *Resolver) describe() string {
	if r.key == "" {
		return "every up, multicast, non-loopback, non-Tailscale interface"
	}
	return r.key
}

// open opens the mDNS sockets, port 5353 shared with any other responder
// on the host, and starts their readers.
func (r *Resolver) open() error {
	lc := net.ListenConfig{Control: reusePort}
	if pc, err := lc.ListenPacket(r.ctx, "udp4", "0.0.0.0:5353"); err == nil {
		c := ipv4.NewPacketConn(pc)
		c.SetControlMessage(ipv4.FlagInterface|ipv4.FlagDst, true)
		c.SetControlMessage(ipv4.FlagTTL, true) // where unsupported (Windows), TTLs go unchecked
		c.SetMulticastTTL(255)
		r.c4 = c
		r.wg.Go(func() {
			r.read(pc, func(b []byte) (int, packet, error) {
				n, cm, src, err := c.ReadFrom(b)
				return n, packet4(cm, src), err
			})
		})
	}
	if pc, err := lc.ListenPacket(r.ctx, "udp6", "[::]:5353"); err == nil {
		c := ipv6.NewPacketConn(pc)
		c.SetControlMessage(ipv6.FlagInterface|ipv6.FlagDst, true)
		c.SetControlMessage(ipv6.FlagHopLimit, true)
		c.SetMulticastHopLimit(255)
		r.c6 = c
		r.wg.Go(func() {
			r.read(pc, func(b []byte) (int, packet, error) {
				n, cm, src, err := c.ReadFrom(b)
				return n, packet6(cm, src), err
			})
		})
	} else if r.c4 == nil {
		return fmt.Errorf("udp port 5353: %w", err)
	}
	return nil
}

// packet4 and packet6 return what a control message says of a packet
// from src; without one, the packet arrived on no interface listened on.
func packet4(cm *ipv4.ControlMessage, src net.Addr) packet {
	p := packet{src: addrOf(src)}
	if cm != nil {
		p.ifIndex, p.hops = cm.IfIndex, cm.TTL
		p.dst, _ = netip.AddrFromSlice(cm.Dst.To4())
	}
	return p
}

func packet6(cm *ipv6.ControlMessage, src net.Addr) packet {
	p := packet{src: addrOf(src)}
	if cm != nil {
		p.ifIndex, p.hops = cm.IfIndex, cm.HopLimit
		p.dst, _ = netip.AddrFromSlice(cm.Dst)
		p.dst = p.dst.Unmap()
	}
	return p
}

// addrOf returns the address of a UDP source, or the zero Addr.
func addrOf(a net.Addr) netip.Addr {
	if ua, ok := a.(*net.UDPAddr); ok {
		return ua.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// closeListener closes the sockets, which ends their readers.
func (r *Resolver) closeListener() {
	r.lst.Store(nil)
	if r.c4 != nil {
		r.c4.Close()
	}
	if r.c6 != nil {
		r.c6.Close()
	}
	listeningGauge.WithLabelValues(r.key).Set(0)
}

// read receives packets until the socket is closed. It runs until the
// resolver's ctx is cancelled, then returns nil.
func (r *Resolver) read(pc net.PacketConn, readFrom func([]byte) (int, packet, error)) error {
	buf := make([]byte, 9000) // the largest mDNS message (RFC 6762 §17)
	for {
		n, p, err := readFrom(buf)
		if r.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			select { // a transient error; do not spin on it
			case <-r.ctx.Done():
				return nil
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		l := r.lst.Load()
		if !p.src.IsValid() || l == nil {
			continue
		}
		r.receive(l, buf[:n], p)
	}
}

// send asks every interface, on both families, for the A and AAAA records
// of host.local, as a querier on port 5353 (RFC 6762 §5.2), for a unicast
// answer if qu is set.
func (l *listener) send(host string, qu bool) error {
	class := uint16(dns.ClassINET)
	if qu {
		class |= 0x8000 // RFC 6762 §18.12
	}
	m := new(dns.Msg)
	m.Question = []dns.Question{
		{Name: host + ".local.", Qtype: dns.TypeA, Qclass: class},
		{Name: host + ".local.", Qtype: dns.TypeAAAA, Qclass: class},
	}
	pkt, err := m.Pack()
	if err != nil {
		return fmt.Errorf("pack question for %s.local: %w", host, err)
	}
	var errs []error
	sent := false
	for _, ifc := range l.ifaces {
		if l.c4 != nil && ifc.has4 {
			_, err := l.c4.WriteTo(pkt, &ipv4.ControlMessage{IfIndex: ifc.index}, group4)
			sent, errs = sent || err == nil, append(errs, err)
		}
		if l.c6 != nil && ifc.has6 {
			_, err := l.c6.WriteTo(pkt, &ipv6.ControlMessage{IfIndex: ifc.index}, &net.UDPAddr{IP: group6.IP, Port: 5353, Zone: ifc.name})
			sent, errs = sent || err == nil, append(errs, err)
		}
	}
	if !sent {
		return fmt.Errorf("send question for %s.local: %w", host, errors.Join(errs...))
	}
	return nil
}
