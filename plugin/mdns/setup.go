package mdns

import (
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"
)

func init() { plugin.Register(name, setup) }

func setup(c *caddy.Controller) error {
	m, err := parse(c)
	if err != nil {
		return plugin.Error(name, err)
	}
	var res *resolver // set between OnStartup and OnShutdown
	c.OnStartup(func() error {
		res = acquire(m)
		m.res.Store(res)
		return nil
	})
	c.OnShutdown(func() error {
		if res != nil {
			m.res.Store(nil)
			release(m, res)
			res = nil
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
		m.Zones = plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), c.ServerBlockKeys)
		for c.NextBlock() {
			if err := parseOption(c, m); err != nil {
				return nil, err
			}
		}
	}
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
		m.conf.interfaces = append(m.conf.interfaces, args...)
	case "timeout":
		m.timeout, err = durationArg(c, 10*time.Millisecond, 5*time.Second)
	case "ttl":
		var v int
		v, err = intArg(c, 0, 3600)
		m.ttl = uint32(v)
	case "max_ttl":
		m.conf.maxTTL, err = durationArg(c, time.Second, 24*time.Hour)
	case "size":
		m.conf.size, err = intArg(c, 1, 10_000_000)
	case "alias":
		args := c.RemainingArgs()
		if len(args) != 2 {
			return c.ArgErr()
		}
		alias, host := strings.ToLower(args[0]), strings.ToLower(args[1])
		if !isLabel(alias) || !isLabel(host) {
			return c.Errf("alias %q to %q: both must be single DNS labels", args[0], args[1])
		}
		if m.aliases == nil {
			m.aliases = map[string]string{}
		}
		m.aliases[alias] = host
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
		m.conf.services = append(m.conf.services, args...)
	case "fallthrough":
		m.Fall.SetZonesFromArgs(c.RemainingArgs())
	default:
		return c.Errf("unknown property %q", c.Val())
	}
	return err
}

func intArg(c *caddy.Controller, lo, hi int) (int, error) {
	option := c.Val()
	args := c.RemainingArgs()
	if len(args) != 1 {
		return 0, c.ArgErr()
	}
	v, err := strconv.Atoi(args[0])
	if err != nil || v < lo || v > hi {
		return 0, c.Errf("%s %q: want a whole number from %d to %d", option, args[0], lo, hi)
	}
	return v, nil
}

func durationArg(c *caddy.Controller, lo, hi time.Duration) (time.Duration, error) {
	option := c.Val()
	args := c.RemainingArgs()
	if len(args) != 1 {
		return 0, c.ArgErr()
	}
	d, err := time.ParseDuration(args[0])
	if err != nil {
		return 0, c.Errf("%s %q: %v", option, args[0], err)
	}
	if d < lo || d > hi {
		return 0, c.Errf("%s %q: want a duration from %s to %s", option, args[0], lo, hi)
	}
	return d, nil
}

// isLabel reports whether s is one DNS label, without dots or escapes.
func isLabel(s string) bool {
	_, ok := dns.IsDomainName(s)
	return ok && isHost(s)
}
