package tailnet

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
	t, err := parse(c)
	if err != nil {
		return plugin.Error(name, err)
	}
	c.OnStartup(func() error {
		t.watcher = acquire(t)
		return nil
	})
	c.OnShutdown(func() error {
		if t.watcher != nil {
			release(t, t.watcher)
			t.watcher = nil
		}
		return nil
	})
	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		t.Next = next
		return t
	})
	return nil
}

// parse reads one tailnet block.
func parse(c *caddy.Controller) (*Tailnet, error) {
	t := New()
	i := 0
	for c.Next() {
		if i > 0 {
			return nil, plugin.ErrOnce
		}
		i++
		t.Zones = plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), c.ServerBlockKeys)
		for c.NextBlock() {
			if err := parseOption(c, t); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

func parseOption(c *caddy.Controller, t *Tailnet) error {
	switch c.Val() {
	case "socket":
		if !c.NextArg() {
			return c.ArgErr()
		}
		t.socket = c.Val()
	case "ttl":
		v, err := intArg(c, 0, 3600)
		if err != nil {
			return err
		}
		t.ttl = uint32(v)
	case "alias":
		args := c.RemainingArgs()
		if len(args) != 2 {
			return c.ArgErr()
		}
		alias, host := strings.ToLower(args[0]), strings.ToLower(args[1])
		if !isLabel(alias) || !isLabel(host) {
			return c.Errf("alias %q to %q: both must be single DNS labels", args[0], args[1])
		}
		if t.tableConf.aliases == nil {
			t.tableConf.aliases = map[string]string{}
		}
		t.tableConf.aliases[alias] = host
	case "tags":
		args := c.RemainingArgs()
		switch {
		case len(args) > 1:
			return c.ArgErr()
		case len(args) == 1 && args[0] == "off":
			t.tableConf.tags = false
		case len(args) == 1:
			t.tableConf.tags, t.tableConf.tagPrefix = true, strings.ToLower(args[0])
		default:
			t.tableConf.tags, t.tableConf.tagPrefix = true, ""
		}
	case "cname":
		if c.NextArg() {
			return c.ArgErr()
		}
		t.cname = true
	case "stale":
		d, err := durationArg(c, 0)
		if err != nil {
			return err
		}
		t.stale = d
	case "probe":
		d, err := durationArg(c, 100*time.Millisecond)
		if err != nil {
			return err
		}
		t.probe = d
	case "fallthrough":
		t.Fall.SetZonesFromArgs(c.RemainingArgs())
	default:
		return c.Errf("unknown property %q", c.Val())
	}
	return nil
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

func durationArg(c *caddy.Controller, least time.Duration) (time.Duration, error) {
	option := c.Val()
	args := c.RemainingArgs()
	if len(args) != 1 {
		return 0, c.ArgErr()
	}
	d, err := time.ParseDuration(args[0])
	if err != nil {
		return 0, c.Errf("%s %q: %v", option, args[0], err)
	}
	if d < least {
		return 0, c.Errf("%s %q: must be at least %s", option, args[0], least)
	}
	return d, nil
}

// isLabel reports whether s is one DNS label, without dots.
func isLabel(s string) bool {
	if s == "" || strings.Contains(s, ".") {
		return false
	}
	_, ok := dns.IsDomainName(s)
	return ok && len(s) <= 63
}
