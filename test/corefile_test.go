package test

import (
	"strings"
	"testing"

	"github.com/coredns/caddy"
)

// TestCorefileErrors checks that a bad block stops the server with a
// message that names the plugin, the file, the line and the fault.
func TestCorefileErrors(t *testing.T) {
	cases := []struct {
		name, corefile, want string
		plugin               string // "" for tailnet
	}{
		{"unknown option", ".:0 {\n  tailnet example.org {\n    ttl 10\n    sokcet /x\n  }\n}\n",
			`Corefile:4 - Error during parsing: unknown property "sokcet"`, ""},
		{"bad ttl", ".:0 {\n  tailnet example.org {\n    ttl forever\n  }\n}\n",
			`Corefile:3 - Error during parsing: ttl "forever": want a whole number from 0 to 3600`, ""},
		{"bad alias", ".:0 {\n  tailnet example.org {\n    alias registry\n  }\n}\n",
			"Corefile:3 - Error during parsing: Wrong argument count", ""},
		{"an interface written as mdns's zone", "example.org:0 {\n  mdns nosuch0 {\n    fallthrough\n  }\n}\n",
			`Corefile:2 - Error during parsing: zone "nosuch0" is not inside this server block's zones (example.org.); to ask on network interface nosuch0, write 'interface nosuch0' in the block`, "mdns"},
		{"a tailnet zone outside the block", "example.org:0 {\n  tailnet example.com\n}\n",
			`Corefile:2 - Error during parsing: zone "example.com" is not inside this server block's zones (example.org.)`, ""},
		{"a reverse zone outside the block", "example.org:0 {\n  tailnet example.org 100.64.0.0/10\n}\n",
			`Corefile:2 - Error during parsing: zone "100.64.0.0/10" is not inside this server block's zones (example.org.)`, ""},
		{"alias to itself", ".:0 {\n  tailnet example.org {\n    alias hub hub\n  }\n}\n",
			`Corefile:3 - Error during parsing: alias "hub" to itself`, ""},
		{"alias loop", ".:0 {\n  tailnet example.org {\n    alias a b\n    alias b a\n  }\n}\n",
			`Corefile:4 - Error during parsing: alias "b" to "a": "a" is an alias itself`, ""},
		{"upstream port out of range", "example.org:0 {\n  fallback {\n    to 127.0.0.1:99999\n  }\n}\n",
			`Corefile:3 - Error during parsing: to: 127.0.0.1:99999: want a port from 1 to 65535`, "fallback"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			startMu.Lock()
			inst, err := caddy.Start(caddy.CaddyfileInput{Contents: []byte(c.corefile), Filepath: "Corefile", ServerTypeName: "dns"})
			startMu.Unlock()
			if err == nil {
				inst.Stop()
				inst.ShutdownCallbacks()
				t.Fatal("started; want an error")
			}
			plugin := c.plugin
			if plugin == "" {
				plugin = "tailnet"
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "plugin/"+plugin) {
				t.Errorf("error = %q; want it to contain %q and name plugin/%s", err, c.want, plugin)
			}
		})
	}
}
