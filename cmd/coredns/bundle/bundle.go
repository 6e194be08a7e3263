// Package bundle is the set of plugins in tailhorizon's coredns binary and
// their order. The binary and the end-to-end tests import it, so both run
// the same plugins in the same order.
package bundle

import (
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
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

	_ "github.com/tailhorizon/tailhorizon/plugin/fallback"
	_ "github.com/tailhorizon/tailhorizon/plugin/mdns"
	_ "github.com/tailhorizon/tailhorizon/plugin/status"
	_ "github.com/tailhorizon/tailhorizon/plugin/tailnet"
)

// Directives is the execution order of every plugin in this binary. A
// plugin sees the effects of the plugins above it. tailhorizon's plugins
// sit after cache (so their answers are cached) and hosts (so a local
// override wins), and before the static sources (template, file) and
// forward, which stand for the public answer and catch what they pass on.
// fallback comes first of ours: it runs the rest of the chain and asks the
// public upstreams when that fails, and its answers are cached too.
// view is last, as in CoreDNS, because it only filters server blocks.
var Directives = []string{
	"metadata",
	"reload",
	"bind",
	"debug",
	"ready",
	"health",
	"prometheus",
	"errors",
	"log",
	"dnstap",
	"any",
	"rewrite",
	"acl",
	"cache",
	"hosts",
	"fallback",
	"tailnet",
	"mdns",
	"status",
	"template",
	"transfer",
	"file",
	"loop",
	"forward",
	"whoami",
	"view",
}

// Install makes Directives the plugin order of every server started in this
// process. Call it once, before the first server starts.
func Install() error {
	return dnsserver.SetDirectives(slices.Clone(Directives))
}
