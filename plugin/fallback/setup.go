package fallback

import (
	"net/netip"
	"strings"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	pkgtls "github.com/coredns/coredns/plugin/pkg/tls"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/corefile"
	"github.com/tailhorizon/tailhorizon/plugin/fallback/internal/upstream"
)

func init() { plugin.Register(name, setup) }

func setup(c *caddy.Controller) error {
	f, err := parse(c)
	if err != nil {
		return plugin.Error(name, err)
	}
	c.OnStartup(func() error {
		f.up.Start()
		return nil
	})
	c.OnShutdown(f.up.Stop)
	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		f.Next = next
		return f
	})
	return nil
}

// parse reads one fallback block.
func parse(c *caddy.Controller) (*Fallback, error) {
	f := New()
	i := 0
	for c.Next() {
		if i > 0 {
			return nil, plugin.ErrOnce
		}
		i++
		zones, err := corefile.Zones(c, false)
		if err != nil {
			return nil, err
		}
		f.Zones = zones
		for c.NextBlock() {
			if err := parseOption(c, f); err != nil {
				return nil, err
			}
		}
	}
	if len(f.up.Addrs) == 0 {
		return nil, c.Err("fallback needs upstreams: add 'to ADDRESS...'")
	}
	if err := f.up.Build(); err != nil {
		return nil, c.Errf("to: %v", err)
	}
	return f, nil
}

func parseOption(c *caddy.Controller, f *Fallback) error {
	switch c.Val() {
	case "on":
		args := c.RemainingArgs()
		if len(args) == 0 {
			return c.ArgErr()
		}
		f.rcodes = nil
		for _, a := range args {
			rc, ok := dns.StringToRcode[strings.ToUpper(a)]
			if !ok || rc == dns.RcodeSuccess {
				return c.Errf("on %q: want rcodes such as NXDOMAIN SERVFAIL REFUSED", a)
			}
			f.rcodes = append(f.rcodes, rc)
		}
	case "to":
		args := c.RemainingArgs()
		if len(args) == 0 {
			return c.ArgErr()
		}
		if _, err := upstream.CheckAddrs(args...); err != nil {
			return c.Errf("to: %v", err) // here, to name the line
		}
		f.up.Addrs = append(f.up.Addrs, args...)
	case "tls":
		cfg, err := pkgtls.NewTLSConfigFromArgs(c.RemainingArgs()...)
		if err != nil {
			return c.Errf("tls: %v", err)
		}
		f.up.TLSConfig = cfg
	case "max_ttl":
		v, err := corefile.Int(c, 0, 86400)
		if err != nil {
			return err
		}
		f.maxTTL = uint32(v)
	case "tls_servername":
		if !c.NextArg() {
			return c.ArgErr()
		}
		f.up.TLSServerName = c.Val()
	case "force_tcp", "prefer_udp", "original", "ede":
		option := c.Val()
		if c.NextArg() {
			return c.ArgErr()
		}
		switch option {
		case "force_tcp":
			f.up.ForceTCP = true
		case "prefer_udp":
			f.up.PreferUDP = true
		case "original":
			f.original = true
		case "ede":
			f.ede = true
		}
	case "explain":
		f.explain = true
		for _, a := range c.RemainingArgs() {
			p, err := parseNetwork(a)
			if err != nil {
				return c.Errf("explain %q: want a network such as 100.64.0.0/10 or an address", a)
			}
			f.explainNets = append(f.explainNets, p)
		}
	case "policy":
		args := c.RemainingArgs()
		if len(args) < 2 {
			return c.ArgErr()
		}
		if err := f.rules.Add(args[0], args[1:]); err != nil {
			return c.Err(err.Error())
		}
	default:
		return c.Errf("unknown property %q", c.Val())
	}
	return nil
}

// parseNetwork parses a CIDR prefix, or an address as the prefix of it
// alone.
func parseNetwork(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}
