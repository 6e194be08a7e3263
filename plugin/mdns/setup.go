package mdns

import (
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"

	"github.com/tailhorizon/tailhorizon/internal/corefile"
	"github.com/tailhorizon/tailhorizon/plugin/mdns/internal/lan"
)

func init() { plugin.Register(name, setup) }

func setup(c *caddy.Controller) error {
	m, err := parse(c)
	if err != nil {
		return plugin.Error(name, err)
	}
	c.OnStartup(func() error {
		m.res.Store(lan.Acquire(&m.opts))
		return nil
	})
	c.OnShutdown(func() error {
		if m.res.Swap(nil) != nil {
			lan.Release(&m.opts)
		}
		return nil
	})
	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		m.Next = next
		return m
	})
	return nil
}

// parse reads one mdns block.
func parse(c *caddy.Controller) (*MDNS, error) {
	m := New()
	i := 0
	for c.Next() {
		if i > 0 {
			return nil, plugin.ErrOnce
		}
		i++
		zones, err := corefile.Zones(c, true)
		if err != nil {
			return nil, err
		}
		m.Zones = zones
		for c.NextBlock() {
			if err := parseOption(c, m); err != nil {
				return nil, err
			}
		}
	}
	m.sync()
	return m, nil
}

func parseOption(c *caddy.Controller, m *MDNS) error {
	var err error
	switch c.Val() {
	case "interface":
		args := c.RemainingArgs()
		if len(args) == 0 {
			return c.ArgErr()
		}
		m.opts.Interfaces = append(m.opts.Interfaces, args...)
	case "timeout":
		m.timeout, err = corefile.Duration(c, 10*time.Millisecond, 5*time.Second)
	case "ttl":
		var v int
		v, err = corefile.Int(c, 0, 3600)
		m.ttl = uint32(v)
	case "max_ttl":
		m.opts.MaxTTL, err = corefile.Duration(c, time.Second, 24*time.Hour)
	case "size":
		m.opts.Size, err = corefile.Int(c, 1, 10_000_000)
	case "alias":
		err = corefile.Alias(c, &m.aliases)
	case "services":
		args := c.RemainingArgs()
		if len(args) == 0 {
			return c.ArgErr()
		}
		for _, s := range args {
			if !strings.HasPrefix(s, "_") || !strings.HasSuffix(s, "._tcp") && !strings.HasSuffix(s, "._udp") {
				return c.Errf("services %q: want a service type like _workstation._tcp", s)
			}
		}
		m.opts.Services = append(m.opts.Services, args...)
	case "fallthrough":
		m.Fall.SetZonesFromArgs(c.RemainingArgs())
	default:
		return c.Errf("unknown property %q", c.Val())
	}
	return err
}
