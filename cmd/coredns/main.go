// Command coredns is CoreDNS with the tailhorizon plugins and only the
// built-in plugins that tailhorizon documents (see cmd/coredns/bundle).
package main

import (
	"fmt"
	"os"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/coremain"

	"github.com/tailhorizon/tailhorizon/cmd/coredns/bundle"
)

// version is tailhorizon's release, set at build time with
// -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// coredns -explain NAME asks a running coredns why NAME gets its answer.
	if len(os.Args) > 1 && (os.Args[1] == "-explain" || os.Args[1] == "--explain") {
		os.Exit(explainMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	if err := bundle.Install(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	caddy.AppVersion = appVersion(coremain.CoreVersion, version)
	coremain.Run()
}

// appVersion names tailhorizon's release in the version line, next to the
// CoreDNS release it is built on: "CoreDNS-1.15.0+tailhorizon-v0.1.0".
func appVersion(core, th string) string {
	return core + "+tailhorizon-" + th
}
