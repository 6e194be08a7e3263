package test

import (
	"strings"
	"testing"

	"github.com/coredns/caddy"
)

// TestCorefileErrors checks that a bad tailnet block stops the server with
// a message that names the file, the line and the fault.
func TestCorefileErrors(t *testing.T) {
	cases := []struct {
		name, corefile, want string
	}{
		{"unknown option", ".:0 {\n  tailnet example.org {\n    ttl 10\n    sokcet /x\n  }\n}\n",
			`Corefile:4 - Error during parsing: unknown property "sokcet"`},
		{"bad ttl", ".:0 {\n  tailnet example.org {\n    ttl forever\n  }\n}\n",
			`Corefile:3 - Error during parsing: ttl "forever": want a whole number from 0 to 3600`},
		{"bad alias", ".:0 {\n  tailnet example.org {\n    alias registry\n  }\n}\n",
			"Corefile:3 - Error during parsing: Wrong argument count"},
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
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "plugin/tailnet") {
				t.Errorf("error = %q; want it to contain %q and name plugin/tailnet", err, c.want)
			}
		})
	}
}
