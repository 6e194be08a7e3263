package corefile

import (
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
)

// option returns a controller positioned on the option of "plugin {\n option\n}".
func option(t *testing.T, line string) *caddy.Controller {
	t.Helper()
	c := caddy.NewTestController("dns", "plugin {\n"+line+"\n}")
	c.Next()
	if !c.NextBlock() {
		t.Fatalf("no option in %q", line)
	}
	return c
}

func TestInt(t *testing.T) {
	cases := []struct {
		line    string
		want    int
		wantErr string
	}{
		{"ttl 30", 30, ""},
		{"ttl 3601", 0, `ttl "3601": want a whole number from 0 to 3600`},
		{"ttl x", 0, "want a whole number"},
		{"ttl", 0, "Wrong argument count"},
		{"ttl 1 2", 0, "Wrong argument count"},
	}
	for _, c := range cases {
		got, err := Int(option(t, c.line), 0, 3600)
		if got != c.want || !errContains(err, c.wantErr) {
			t.Errorf("Int(%q) = %d, %v; want %d, %q", c.line, got, err, c.want, c.wantErr)
		}
	}
}

func TestDuration(t *testing.T) {
	cases := []struct {
		line    string
		hi      time.Duration
		want    time.Duration
		wantErr string
	}{
		{"probe 5s", 0, 5 * time.Second, ""},
		{"probe 1ms", 0, 0, "must be at least 100ms"},
		{"timeout 10s", 5 * time.Second, 0, "want a duration from 100ms to 5s"},
		{"probe soon", 0, 0, `probe "soon"`},
	}
	for _, c := range cases {
		got, err := Duration(option(t, c.line), 100*time.Millisecond, c.hi)
		if got != c.want || !errContains(err, c.wantErr) {
			t.Errorf("Duration(%q) = %s, %v; want %s, %q", c.line, got, err, c.want, c.wantErr)
		}
	}
}

func TestAlias(t *testing.T) {
	var aliases map[string]string
	if err := Alias(option(t, "alias Registry hub"), &aliases); err != nil || aliases["registry"] != "hub" {
		t.Errorf("Alias = %v, %v; want registry -> hub", aliases, err)
	}
	for _, line := range []string{"alias a.b hub", "alias x", `alias a\.b hub`, "alias hub HUB", "alias registry nas", "alias reg registry", "alias hub nas"} {
		if err := Alias(option(t, line), &aliases); err == nil {
			t.Errorf("Alias(%q) = nil; want an error", line)
		}
	}
}

func TestZones(t *testing.T) {
	cases := []struct {
		name    string
		keys    []string // the server block's keys, as dnsserver gives them
		args    string
		want    string // the zones, space-separated
		wantErr string
	}{
		{"the block's zones by default", []string{"dns://example.org.:53"}, "", "example.org.", ""},
		{"a zone of the block", []string{"dns://example.org.:53"}, "example.org", "example.org.", ""},
		{"a zone below the block's", []string{"dns://example.org.:53"}, "lan.example.org", "lan.example.org.", ""},
		{"any zone in a root block", []string{"dns://.:53"}, "example.com 100.64.0.0/10", "", ""},
		{"a reverse zone of the block", []string{"dns://example.org.:53", "dns://10.in-addr.arpa.:53"}, "example.org 10.0.0.0/8", "example.org. 10.in-addr.arpa.", ""},
		{"no keys: no check", nil, "example.com", "example.com.", ""},
		{"a zone outside the block", []string{"dns://example.org.:53", "dns://example.net.:53"}, "example.com", "",
			`zone "example.com" is not inside this server block's zones (example.org. example.net.)`},
		{"a reverse zone outside the block", []string{"dns://example.org.:53"}, "example.org 10.0.0.0/8", "", `zone "10.0.0.0/8" is not inside`},
		{"an interface, with a hint", []string{"dns://example.org.:53"}, "eth0", "", "write 'interface eth0' in the block"},
		{"loopback names an interface", []string{"dns://example.org.:53"}, "lo", "", "write 'interface lo' in the block"},
		{"not an interface: no hint", []string{"dns://example.org.:53"}, "example.com", "", "(example.org.)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctl := caddy.NewTestController("dns", "plugin "+c.args)
			ctl.ServerBlockKeys = c.keys
			ctl.Next()
			got, err := Zones(ctl, true)
			if !errContains(err, c.wantErr) {
				t.Fatalf("Zones(%q) error = %v; want %q", c.args, err, c.wantErr)
			}
			if err == nil && c.want != "" && strings.Join(got, " ") != c.want {
				t.Errorf("Zones(%q) = %v; want %s", c.args, got, c.want)
			}
			if err != nil && c.name == "not an interface: no hint" && strings.Contains(err.Error(), "interface") {
				t.Errorf("error %v hints at an interface", err)
			}
		})
	}
}

func errContains(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}
