// Package corefile reads the option arguments that tailhorizon's plugins
// share, with the same checks and the same error messages in each.
package corefile

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/zone"
)

// Int reads the one argument of the current option as a whole number from
// lo to hi.
func Int(c *caddy.Controller, lo, hi int) (int, error) {
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

// Duration reads the one argument of the current option as a duration
// from lo to hi; hi 0 means no upper bound.
func Duration(c *caddy.Controller, lo, hi time.Duration) (time.Duration, error) {
	return duration(c, c.Val(), c.RemainingArgs(), lo, hi)
}

// DurationOrOff is Duration for an option that "off" turns off: it returns
// 0 for "off".
func DurationOrOff(c *caddy.Controller, lo, hi time.Duration) (time.Duration, error) {
	option, args := c.Val(), c.RemainingArgs()
	if len(args) == 1 && args[0] == "off" {
		return 0, nil
	}
	return duration(c, option, args, lo, hi)
}

func duration(c *caddy.Controller, option string, args []string, lo, hi time.Duration) (time.Duration, error) {
	if len(args) != 1 {
		return 0, c.ArgErr()
	}
	d, err := time.ParseDuration(args[0])
	if err != nil {
		return 0, c.Errf("%s %q: %v", option, args[0], err)
	}
	switch {
	case d < lo && hi == 0:
		return 0, c.Errf("%s %q: must be at least %s", option, args[0], lo)
	case d < lo || (hi > 0 && d > hi):
		return 0, c.Errf("%s %q: want a duration from %s to %s", option, args[0], lo, hi)
	}
	return d, nil
}

// Alias reads "alias NAME HOST" into aliases, lowercase, allocating the
// map if needed. An alias names a host, never itself or another alias, so
// aliases never chain or loop, and each is given once.
func Alias(c *caddy.Controller, aliases *map[string]string) error {
	args := c.RemainingArgs()
	if len(args) != 2 {
		return c.ArgErr()
	}
	return AddAlias(c, aliases, args[0], args[1])
}

// AddAlias checks the alias NAME HOST as Alias does, and adds it.
func AddAlias(c *caddy.Controller, aliases *map[string]string, name, host string) error {
	alias, target := strings.ToLower(name), strings.ToLower(host)
	if !IsLabel(alias) || !IsLabel(target) {
		return c.Errf("alias %q to %q: both must be single DNS labels", name, host)
	}
	if alias == target {
		return c.Errf("alias %q to itself", name)
	}
	if _, dup := (*aliases)[alias]; dup {
		return c.Errf("alias %q given twice", name)
	}
	if _, chain := (*aliases)[target]; chain {
		return c.Errf("alias %q to %q: %q is an alias itself; an alias names a host", name, host, host)
	}
	for a, h := range *aliases {
		if h == alias {
			return c.Errf("alias %q: alias %q points to it; an alias names a host", name, a)
		}
	}
	if *aliases == nil {
		*aliases = map[string]string{}
	}
	(*aliases)[alias] = target
	return nil
}

// IsLabel reports whether s is one DNS label, without dots or escapes.
func IsLabel(s string) bool {
	if s == "" || len(s) > 63 || strings.ContainsAny(s, `\.`) {
		return false
	}
	_, ok := dns.IsDomainName(s)
	return ok
}

// Zones reads the zones of a directive from its arguments, normalized, or
// takes the server block's without any. Each argument must fall inside one
// of the block's zones (any, in a root block): the block is never asked
// for another name, so such a zone is a mistake, such as an interface
// written where a zone goes. With interfaceOption, an argument that names
// a network interface, or looks like one, gets a hint to use the
// interface option instead.
func Zones(c *caddy.Controller, interfaceOption bool) ([]string, error) {
	args := c.RemainingArgs()
	var block []string
	for _, k := range c.ServerBlockKeys {
		block = append(block, plugin.Host(k).NormalizeExact()...)
	}
	for _, arg := range args {
		for _, z := range plugin.Host(arg).NormalizeExact() {
			if len(block) == 0 || zone.Match(block, z) != "" {
				continue
			}
			msg := "zone %q is not inside this server block's zones (%s)"
			if interfaceOption && looksLikeInterface(arg) {
				msg += "; to ask on network interface " + arg + ", write 'interface " + arg + "' in the block"
			}
			return nil, c.Errf(msg, arg, strings.Join(block, " "))
		}
	}
	return plugin.OriginsFromArgsOrServerBlock(args, c.ServerBlockKeys), nil
}

// looksLikeInterface reports whether s names a network interface of this
// machine, or is a single label ending in a digit, as eth0, enp3s0 and
// wlan0 are.
func looksLikeInterface(s string) bool {
	if _, err := net.InterfaceByName(s); err == nil {
		return true
	}
	return IsLabel(s) && s[len(s)-1] >= '0' && s[len(s)-1] <= '9'
}
