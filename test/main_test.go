// Package test holds tailhorizon's end-to-end tests: the bundled plugins,
// started in this process as coredns starts them, against a real tailnet on
// loopback and queried by real DNS clients.
package test

import (
	"fmt"
	"os"
	"testing"

	"github.com/tailhorizon/tailhorizon/cmd/coredns/bundle"
	"github.com/tailhorizon/tailhorizon/cmd/demo/world"
	"github.com/tailhorizon/tailhorizon/test/decoy"
	"github.com/tailhorizon/tailhorizon/test/lantest"
	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

func TestMain(m *testing.M) {
	if world.IsWorld() { // the demo world, in its own namespace (TestDemo)
		os.Exit(world.WorldMain())
	}
	if lantest.IsHelper() { // a responder or spoofer in a LAN host's namespace
		os.Exit(lantest.HelperMain())
	}
	if err := bundle.Install(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The suite must not depend on the machine's tailscaled, running or not.
	stop, err := decoy.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := tailnettest.RunInNetns(m)
	stop()
	os.Exit(code)
}
