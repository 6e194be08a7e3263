package embedded

import (
	"strings"

	"github.com/coredns/caddy"
)

// ParseOption reads the embedded node's option c.Val() into *cfg, making
// the Config first, and reports whether it is one of the node's options.
func ParseOption(c *caddy.Controller, cfg **Config) (bool, error) {
	switch c.Val() {
	case "node":
		if !c.NextArg() {
			return true, c.ArgErr()
		}
		if !Built {
			return true, c.Err("node " + c.Val() + ": this coredns was built without the embedded node (tag tailhorizon_nonode); ask tailscaled instead")
		}
		nodeConf(cfg).Hostname = c.Val()
	case "state_dir", "control_url", "authkey_file", "authkey_env":
		n := nodeConf(cfg)
		field := map[string]*string{"state_dir": &n.StateDir, "control_url": &n.ControlURL,
			"authkey_file": &n.AuthKeyFile, "authkey_env": &n.AuthKeyEnv}[c.Val()]
		if !c.NextArg() {
			return true, c.ArgErr()
		}
		*field = c.Val()
	case "advertise_tags":
		tags := c.RemainingArgs()
		if len(tags) == 0 {
			return true, c.ArgErr()
		}
		for _, tag := range tags {
			if !strings.HasPrefix(tag, "tag:") {
				return true, c.Errf("advertise_tags %q: tags start with tag:", tag)
			}
		}
		nodeConf(cfg).Tags = tags
	case "ephemeral":
		if c.NextArg() {
			return true, c.ArgErr()
		}
		nodeConf(cfg).Ephemeral = true
	default:
		return false, nil
	}
	return true, nil
}

// nodeConf returns *cfg, making it first: the auth key is read from
// TS_AUTHKEY unless the Corefile says otherwise.
func nodeConf(cfg **Config) *Config {
	if *cfg == nil {
		*cfg = &Config{AuthKeyEnv: "TS_AUTHKEY"}
	}
	return *cfg
}

// Check checks the embedded node's options, which go together; cfg is nil
// without a node, socket the block's tailscaled socket ("" for none).
func Check(c *caddy.Controller, cfg *Config, socket string) error {
	switch {
	case cfg == nil:
		return nil
	case cfg.Hostname == "":
		return c.Err("the embedded node's options need 'node HOSTNAME'")
	case cfg.StateDir == "":
		return c.Err("node " + cfg.Hostname + " needs a state_dir")
	case socket != "":
		return c.Err("socket and node exclude each other: ask tailscaled, or run a node")
	}
	return nil
}
