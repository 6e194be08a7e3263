package main

// directives is the execution order of every plugin in this binary. A
// plugin sees the effects of the plugins above it. tailhorizon's plugins
// sit after cache (so their answers are cached) and hosts (so a local
// override wins), and before the static sources (template, file) and
// forward, which stand for the public answer and catch what they pass on.
// view is last, as in CoreDNS, because it only filters server blocks.
var directives = []string{
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
	"tailnet",
	"template",
	"transfer",
	"file",
	"loop",
	"forward",
	"whoami",
	"view",
}
