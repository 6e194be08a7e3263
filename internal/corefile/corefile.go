// Package corefile reads the option arguments that tailhorizon's plugins
// share, with the same checks and the same error messages in each.
package corefile

import (
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"

	"github.com/miekg/dns"
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
// map if needed.
func Alias(c *caddy.Controller, aliases *map[string]string) error {
	args := c.RemainingArgs()
	if len(args) != 2 {
		return c.ArgErr()
	}
	alias, host := strings.ToLower(args[0]), strings.ToLower(args[1])
	if !IsLabel(alias) || !IsLabel(host) {
		return c.Errf("alias %q to %q: both must be single DNS labels", args[0], args[1])
	}
	if *aliases == nil {
		*aliases = map[string]string{}
	}
	(*aliases)[alias] = host
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
