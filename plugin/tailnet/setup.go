package tailnet

import (
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"

	"github.com/tailhorizon/tailhorizon/internal/corefile"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/embedded"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/listen"
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
	if err := checkNode(c, t); err != nil {
		return nil, err
	}
	return t, nil
}

// nodeConf returns t's embedded node configuration, making it first.
func (t *Tailnet) nodeConf() *embedded.Config {
	if t.node == nil {
		t.node = &embedded.Config{AuthKeyEnv: "TS_AUTHKEY"}
	}
	return t.node
}

// checkNode checks the embedded node's options, which go together.
func checkNode(c *caddy.Controller, t *Tailnet) error {
	switch {
	case t.node == nil:
		return nil
	case t.node.Hostname == "":
		return c.Err("the embedded node's options need 'node HOSTNAME'")
	case t.node.StateDir == "":
		return c.Err("node " + t.node.Hostname + " needs a state_dir")
	case t.socket != "":
		return c.Err("socket and node exclude each other: ask tailscaled, or run a node")
	}
	return nil
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
		return parseAlias(c, &t.tableConf)
	case "services":
		return parseServices(c, &t.tableConf)
	case "records":
		return parseRecords(c, &t.tableConf)
	case "tags":
		return parseTags(c, &t.tableConf)
	case "node":
		if !c.NextArg() {
			return c.ArgErr()
		}
		if !embedded.Built {
			return c.Err("node " + c.Val() + ": this coredns was built without the embedded node (tag tailhorizon_nonode); ask tailscaled instead")
		}
		t.nodeConf().Hostname = c.Val()
	case "state_dir", "control_url", "authkey_file", "authkey_env":
		n := t.nodeConf()
		field := map[string]*string{"state_dir": &n.StateDir, "control_url": &n.ControlURL,
			"authkey_file": &n.AuthKeyFile, "authkey_env": &n.AuthKeyEnv}[c.Val()]
		if !c.NextArg() {
			return c.ArgErr()
		}
		*field = c.Val()
	case "advertise_tags":
		tags := c.RemainingArgs()
		if len(tags) == 0 {
			return c.ArgErr()
		}
		for _, tag := range tags {
			if !strings.HasPrefix(tag, "tag:") {
				return c.Errf("advertise_tags %q: tags start with tag:", tag)
			}
		}
		t.nodeConf().Tags = tags
	case "ephemeral":
		if c.NextArg() {
			return c.ArgErr()
		}
		t.nodeConf().Ephemeral = true
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
		return c.Errf("unknown property %q", c.Val())
	}
	return nil
}
