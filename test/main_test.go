// Package test holds tailhorizon's end-to-end tests: the bundled plugins,
// started in this process as coredns starts them, against a real tailnet on
// loopback and queried by real DNS clients.
package test

import (
	"fmt"
	"os"
	"testing"

	"github.com/tailhorizon/tailhorizon/internal/bundle"
	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

func TestMain(m *testing.M) {
	if err := bundle.Install(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(tailnettest.RunInNetns(m))
}
