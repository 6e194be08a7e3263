package table

import (
	"strings"

	"github.com/coredns/caddy"

	"github.com/tailhorizon/tailhorizon/internal/corefile"
)

// The Corefile options of a table's Config: each Parse function reads
// its option's arguments into cfg, with errors naming the line.

// ParseAlias reads "alias NAME HOST" or "alias NAME svc:SERVICE". A host
// alias is checked as every alias is (corefile.AddAlias); a service alias
// may share its service's name, and no NAME is given twice.
func ParseAlias(c *caddy.Controller, cfg *Config) error {
	args := c.RemainingArgs()
	if len(args) != 2 {
		return c.ArgErr()
	}
	name := strings.ToLower(args[0])
	svc, isService := strings.CutPrefix(strings.ToLower(args[1]), "svc:")
	if _, dup := cfg.SvcAlias[name]; dup {
		return c.Errf("alias %q given twice", args[0])
	}
	if !isService {
		return corefile.AddAlias(c, &cfg.Aliases, args[0], args[1])
	}
	if _, dup := cfg.Aliases[name]; dup {
		return c.Errf("alias %q given twice", args[0])
	}
	if !corefile.IsLabel(name) || !corefile.IsLabel(svc) {
		return c.Errf("alias %q to %q: both must be single DNS labels", args[0], args[1])
	}
	if cfg.SvcAlias == nil {
		cfg.SvcAlias = map[string]string{}
	}
	cfg.SvcAlias[name] = svc
	return nil
}

// ParseServices reads "services on|off".
func ParseServices(c *caddy.Controller, cfg *Config) error {
	args := c.RemainingArgs()
	if len(args) != 1 {
		return c.ArgErr()
	}
	switch args[0] {
	case "on", "off":
		cfg.Services = args[0] == "on"
		return nil
	}
	return c.Errf("services %q: want on or off", args[0])
}

// ParseRecords reads "records on|off|magicdns".
func ParseRecords(c *caddy.Controller, cfg *Config) error {
	args := c.RemainingArgs()
	if len(args) != 1 {
		return c.ArgErr()
	}
	mode, ok := map[string]RecordMode{"on": RecordsOn, "off": RecordsOff, "magicdns": RecordsMagicDNS}[args[0]]
	if !ok {
		return c.Errf("records %q: want on, off or magicdns", args[0])
	}
	cfg.Records = mode
	return nil
}

// ParseTags reads "tags [PREFIX|off]".
func ParseTags(c *caddy.Controller, cfg *Config) error {
	args := c.RemainingArgs()
	switch {
	case len(args) > 1:
		return c.ArgErr()
	case len(args) == 1 && args[0] == "off":
		cfg.Tags = false
	case len(args) == 1:
		cfg.Tags, cfg.TagPrefix = true, strings.ToLower(args[0])
	default:
		cfg.Tags, cfg.TagPrefix = true, ""
	}
	return nil
}
