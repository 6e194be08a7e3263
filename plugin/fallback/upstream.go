package fallback

import (
	"crypto/tls"
	"fmt"
	"net"
	"strconv"

	"github.com/coredns/coredns/plugin/forward"
	pkgparse "github.com/coredns/coredns/plugin/pkg/parse"
	"github.com/coredns/coredns/plugin/pkg/proxy"
	"github.com/coredns/coredns/plugin/pkg/transport"
)

// upstreams are the public servers the fallback asks. They are served by
// CoreDNS's own forward plugin, so health checks, failover between
// upstreams, retries over TCP and DNS-over-TLS work as they do there.
type upstreams struct {
	addrs         []string    // as written in the Corefile
	tlsConfig     *tls.Config // for tls:// upstreams; nil uses the system's CAs
	tlsServerName string      // for tls:// upstreams; "" uses the address
	forceTCP      bool
	preferUDP     bool

	proxies []*proxy.Proxy
	fwd     *forward.Forward // nil until start
}

// checkAddrs checks upstream addresses as written in the Corefile, and
// returns them as host:port with their transport.
func checkAddrs(addrs ...string) ([]string, error) {
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

// build checks the addresses and makes the proxies, without starting them.
func (u *upstreams) build() error {
	hosts, err := checkAddrs(u.addrs...)
	if err != nil {
		return err
	}
	u.proxies = nil
	for _, host := range hosts {
		trans, addr := pkgparse.Transport(host)
		p := proxy.NewProxy(name, addr, trans)
		if trans == transport.TLS {
			cfg := &tls.Config{}
			if u.tlsConfig != nil {
				cfg = u.tlsConfig.Clone()
			}
			cfg.ServerName = u.tlsServerName
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			p.SetTLSConfig(cfg)
		}
		u.proxies = append(u.proxies, p)
	}
	return nil
}

// start hands the proxies to a forward instance, which begins health
// checking them.
func (u *upstreams) start() {
	f := forward.New()
	f.SetProxyOptions(proxy.Options{ForceTCP: u.forceTCP, PreferUDP: u.preferUDP, HCRecursionDesired: true, HCDomain: "."})
	for _, p := range u.proxies {
		f.SetProxy(p)
	}
	u.fwd = f
}

func (u *upstreams) stop() error {
	if u.fwd == nil {
		return nil
	}
	return u.fwd.OnShutdown()
}
