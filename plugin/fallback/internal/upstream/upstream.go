// Package upstream holds fallback's public upstreams: their addresses
// and transports, the forward instance that serves them, and how a query
// is asked of them.
package upstream

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/forward"
	pkgparse "github.com/coredns/coredns/plugin/pkg/parse"
	"github.com/coredns/coredns/plugin/pkg/proxy"
	"github.com/coredns/coredns/plugin/pkg/transport"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

// owner is the plugin the proxies are named for in forward's metrics.
const owner = "fallback"

// Servers are the public servers the fallback asks. They are served by
// CoreDNS's own forward plugin, so health checks, failover between
// upstreams, retries over TCP and DNS-over-TLS work as they do there.
// The fields are set while parsing; Build, then Start, then Stop.
type Servers struct {
	Addrs         []string    // as written in the Corefile
	TLSConfig     *tls.Config // for tls:// upstreams; nil uses the system's CAs
	TLSServerName string      // for tls:// upstreams; "" uses the address
	ForceTCP      bool
	PreferUDP     bool

	proxies []*proxy.Proxy
	fwd     *forward.Forward // nil until start
}

// CheckAddrs checks upstream addresses as written in the Corefile, and
// returns them as host:port with their transport.
func CheckAddrs(addrs ...string) ([]string, error) {
	hosts, err := pkgparse.HostPortOrFile(addrs...)
	if err != nil {
		return nil, err
	}
	for _, host := range hosts {
		trans, addr := pkgparse.Transport(host)
		switch trans {
		case transport.DNS, transport.TLS:
		default:
			return nil, fmt.Errorf("%s: only dns:// and tls:// upstreams are supported", host)
		}
		_, port, err := net.SplitHostPort(addr)
		if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%s: want a port from 1 to 65535", host)
		}
	}
	return hosts, nil
}

// Build checks the addresses and makes the proxies, without starting them.
func (u *Servers) Build() error {
	hosts, err := CheckAddrs(u.Addrs...)
	if err != nil {
		return err
	}
	u.proxies = nil
	for _, host := range hosts {
		trans, addr := pkgparse.Transport(host)
		p := proxy.NewProxy(owner, addr, trans)
		if trans == transport.TLS {
			cfg := &tls.Config{}
			if u.TLSConfig != nil {
				cfg = u.TLSConfig.Clone()
			}
			cfg.ServerName = u.TLSServerName
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			p.SetTLSConfig(cfg)
		}
		u.proxies = append(u.proxies, p)
	}
	return nil
}

// Start hands the proxies to a forward instance, which begins health
// checking them.
func (u *Servers) Start() {
	f := forward.New()
	f.SetProxyOptions(proxy.Options{ForceTCP: u.ForceTCP, PreferUDP: u.PreferUDP, HCRecursionDesired: true, HCDomain: "."})
	for _, p := range u.proxies {
		f.SetProxy(p)
	}
	u.fwd = f
}

// Stop stops the health checks; it is a no-op before Start.
func (u *Servers) Stop() error {
	if u.fwd == nil {
		return nil
	}
	return u.fwd.OnShutdown()
}

// Started reports whether Start was called.
func (u *Servers) Started() bool { return u.fwd != nil }

// Proxies returns how many upstreams Build made.
func (u *Servers) Proxies() int { return len(u.proxies) }

// Query asks the upstreams for qname of qtype, with EDNS, as from a UDP
// client on loopback, and returns their answer; nil when none answered.
func (u *Servers) Query(ctx context.Context, qname string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg).SetQuestion(qname, qtype)
	q.SetEdns0(dns.DefaultMsgSize, false)
	w := &captureWriter{}
	_, err := u.fwd.ServeDNS(ctx, w, q)
	return w.msg, err
}

// Ask asks the upstreams and writes their answer to w, over the client's transport. An upstream that
// truncates a UDP answer the client has room for (its EDNS buffer is
// larger than 512 bytes and than the truncated answer) is asked again over
// TCP, as a recursive resolver would, and the whole answer is written: the
// server truncates it for the client only as far as the client's buffer
// requires.
func (u *Servers) Ask(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	if u.ForceTCP || state.Proto() != "udp" || state.Size() <= dns.MinMsgSize {
		return u.fwd.ServeDNS(ctx, w, r)
	}
	tw := &tcWriter{ResponseWriter: w, room: state.Size()}
	rcode, err := u.fwd.ServeDNS(ctx, tw, r)
	if tw.held == nil {
		return rcode, err
	}
	if rcode, err = u.fwd.ServeDNS(ctx, tcpWriter{w}, r); plugin.ClientWrite(rcode) && err == nil {
		return rcode, nil
	}
	w.WriteMsg(tw.held) // no answer over TCP: the truncated one is better than none
	return dns.RcodeSuccess, nil
}

// tcWriter holds back a truncated answer that the client has room for more
// of, so that it can be asked for again over TCP.
type tcWriter struct {
	dns.ResponseWriter
	room int      // the client's buffer, in bytes
	held *dns.Msg // the truncated answer held back; nil if none
}

func (w *tcWriter) WriteMsg(m *dns.Msg) error {
	if m.Truncated && m.Len() < w.room {
		w.held = m
		return nil
	}
	return w.ResponseWriter.WriteMsg(m)
}

// tcpWriter makes a UDP client look like a TCP one, which makes forward
// ask the upstreams over TCP.
type tcpWriter struct{ dns.ResponseWriter }

func (w tcpWriter) RemoteAddr() net.Addr {
	a, _ := w.ResponseWriter.RemoteAddr().(*net.UDPAddr)
	if a == nil {
		return &net.TCPAddr{}
	}
	return &net.TCPAddr{IP: a.IP, Port: a.Port, Zone: a.Zone}
}

// captureWriter keeps the message written to it, as from a UDP client on
// loopback.
type captureWriter struct {
	dns.ResponseWriter // nil: only the methods below are called
	msg                *dns.Msg
}

func (w *captureWriter) WriteMsg(m *dns.Msg) error { w.msg = m; return nil }
func (w *captureWriter) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (w *captureWriter) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (w *captureWriter) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	w.msg = m
	return len(b), nil
}
