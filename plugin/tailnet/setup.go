package tailnet

import (
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"

	"github.com/tailhorizon/tailhorizon/internal/corefile"
)

func init() { plugin.Register(name, setup) }

func setup(c *caddy.Controller) error {
	t, err := parse(c)
	if err != nil {
		return plugin.Error(name, err)
	}
	if t.listenOn {
		t.listen = joinListenGroup(c, t)
	}
	c.OnStartup(func() error {
		if t.listen != nil {
			if err := t.listen.start(t); err != nil {
				return plugin.Error(name, err)
			}
		}
		t.watcher = acquire(t)
		return nil
	})
	c.OnShutdown(func() error {
		if t.listen != nil {
			t.listen.stop(t)
		}
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
		v, err := corefile.Int(c, 0, 3600)
		if err != nil {
			return err
		}
		t.ttl = uint32(v)
	case "alias":
		return corefile.Alias(c, &t.tableConf.aliases)
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
	case "listen":
		if c.NextArg() {
			return c.ArgErr()
		}
		t.listenOn = true
	case "cname":
		if c.NextArg() {
			return c.ArgErr()
		}
		t.cname = true
	case "stale":
		d, err := corefile.Duration(c, 0, 0)
		if err != nil {
			return err
		}
		t.stale = d
	case "probe":
		d, err := corefile.Duration(c, 100*time.Millisecond, 0)
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
