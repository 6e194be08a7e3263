package tailnet

import (
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"

	"github.com/tailhorizon/tailhorizon/internal/corefile"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/embedded"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/listen"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/table"
)

func init() { plugin.Register(name, setup) }

func setup(c *caddy.Controller) error {
	t, err := parse(c)
	if err != nil {
		return plugin.Error(name, err)
	}
	if t.listenOn {
		t.listen = listen.Join(c)
	}
	c.OnStartup(t.onStartup)
	c.OnShutdown(t.onShutdown)
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
		zones, err := corefile.Zones(c, false)
		if err != nil {
			return nil, err
		}
		t.Zones = zones
		for c.NextBlock() {
			if err := parseOption(c, t); err != nil {
				return nil, err
			}
		}
	}
	if err := embedded.Check(c, t.node, t.socket); err != nil {
		return nil, err
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
		return table.ParseAlias(c, &t.tableConf)
	case "services":
		return table.ParseServices(c, &t.tableConf)
	case "records":
		return table.ParseRecords(c, &t.tableConf)
	case "tags":
		return table.ParseTags(c, &t.tableConf)
	case "listen":
		if c.NextArg() {
			return c.ArgErr()
		}
		t.listenOn = true
	case "cname":
		if c.NextArg() {
			return c.ArgErr()
		}
		t.tableConf.CNAME = true
	case "stale":
		d, err := corefile.Duration(c, 0, 0)
		if err != nil {
			return err
		}
		t.watch.Stale = d
	case "probe":
		d, err := corefile.DurationOrOff(c, 100*time.Millisecond, 0)
		if err != nil {
			return err
		}
		t.watch.Probe = d
	case "fallthrough":
		t.Fall.SetZonesFromArgs(c.RemainingArgs())
	default:
		if ok, err := embedded.ParseOption(c, &t.node); ok {
			return err
		}
		return c.Errf("unknown property %q", c.Val())
	}
	return nil
}
