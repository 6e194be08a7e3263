// Package install runs the install routes that README.md names, as a user
// runs them: `make build`, the static build line, `make release` (a
// linux/arm64 binary under qemu-user and the .deb) and stock CoreDNS built
// with our plugins through plugin.cfg; and it checks the device recipes for
// macOS and Windows (packaging/), which no test here can run.
package install

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"testing"

	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// TestMain builds stock CoreDNS with our plugins before the tests move into
// their network namespace: on a fresh machine that build fetches CoreDNS's
// dependencies through the Go module proxy, and the namespace has no route
// out. Inside it, the build is found in its cache (pluginCfgBinary).
func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv("TAILHORIZON_IN_NETNS") == "" && !testing.Short() && runs("TestInstallPluginCfg") {
		if _, err := pluginCfgBinary(); err != nil {
			// TestInstallPluginCfg tries again, and fails with the cause.
			fmt.Fprintf(os.Stderr, "install: the plugin.cfg build: %v\n", err)
		}
	}
	os.Exit(tailnettest.RunInNetns(m))
}

// runs reports whether -test.run selects the top-level test name.
func runs(name string) bool {
	f := flag.Lookup("test.run")
	if f == nil || f.Value.String() == "" {
		return true
	}
	re, err := regexp.Compile(f.Value.String())
	return err == nil && re.MatchString(name)
}
