// Command coredns is CoreDNS with the tailhorizon plugins and only the
// built-in plugins that tailhorizon documents.
package main

import (
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/acl"
	_ "github.com/coredns/coredns/plugin/any"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/debug"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/file"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metadata"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/template"
	_ "github.com/coredns/coredns/plugin/view"
	_ "github.com/coredns/coredns/plugin/whoami"

	_ "github.com/tailhorizon/tailhorizon/plugin/tailnet"
)

// version is tailhorizon's release, set at build time with
// -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := dnsserver.SetDirectives(directives); err != nil {
		panic(err)
	}
	caddy.AppVersion = appVersion(coremain.CoreVersion, version)
	coremain.Run()
}

// appVersion names tailhorizon's release in the version line, next to the
// CoreDNS release it is built on: "CoreDNS-1.15.0+tailhorizon-v0.1.0".
func appVersion(core, th string) string {
	return core + "+tailhorizon-" + th
}
