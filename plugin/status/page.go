package status

import (
	"html/template"
	"strings"
	"time"
)

// page is the status page: the standard library's templates, no external
// assets, and a refresh every two seconds.
var page = template.Must(template.New("status").Funcs(template.FuncMap{
	"join": strings.Join,
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="2">
<title>tailhorizon status</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}h3{font-size:1em}
table{border-collapse:collapse;margin:.4em 0 1em}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.ok{color:#070}.bad{color:#b00}.dim{color:#777}code{font-size:.95em}
</style></head>
<body>
<h1>tailhorizon status</h1>
<p class="dim">Generated {{when .Generated}}; refreshed every 2 s. JSON: <code>/status.json</code>; a name's decision: <code>/explain?name=NAME</code>.</p>
{{range .Blocks}}
<h2 id="block">{{.Title}}</h2>
{{range .Tailnet}}
<h3>Tailnet {{join .Zones " "}}: {{if .State}}{{.State}}{{else}}no table yet{{end}}{{if not .Running}} (this node not Running){{end}}</h3>
<p class="dim">Updated {{when .Updated}}{{if not .LostAt.IsZero}}; tailscaled lost at {{when .LostAt}}{{end}}</p>
<table id="peers"><tr><th>Peer</th><th>Addresses</th><th>Control</th><th>Reachable</th><th>Probe</th><th>RTT</th><th>Key expiry</th><th>Tags</th></tr>
{{range .Peers}}<tr><td>{{.FQDN}}{{if .Self}} <span class="dim">(this node)</span>{{end}}</td><td>{{join .Addrs " "}}</td>
<td>{{if .Online}}online{{else}}offline{{end}}</td>
<td>{{if .Reachable}}<span class="ok">yes</span>{{else}}<span class="bad">no: {{.Why}}</span>{{end}}</td>
<td>{{.Probe}}</td><td>{{.RTT}}</td><td>{{if .Expired}}<span class="bad">expired</span>{{else}}{{when .Expiry}}{{end}}</td><td>{{join .Tags " "}}</td></tr>
{{end}}</table>
<table id="services"><tr><th>Service</th><th>Addresses</th></tr>
{{range .Services}}<tr><td>{{.Name}}</td><td>{{join .Addrs " "}}</td></tr>{{else}}<tr><td colspan="2" class="dim">none</td></tr>{{end}}</table>
<table id="records"><tr><th>Extra record</th></tr>
{{range .Records}}<tr><td><code>{{.}}</code></td></tr>{{else}}<tr><td class="dim">none</td></tr>{{end}}</table>
{{end}}
{{range .LAN}}
<h3>LAN {{join .Zones " "}}: {{if .Listening}}listening{{else}}<span class="bad">not listening</span>{{end}}</h3>
<table id="lan"><tr><th>Host</th><th>Addresses</th><th>Until</th></tr>
{{range .Entries}}<tr><td>{{.Host}}.local</td><td>{{if .Negative}}<span class="dim">did not answer</span>{{else}}{{join .Addrs " "}}{{end}}</td><td>{{when .Expires}}</td></tr>
{{else}}<tr><td colspan="3" class="dim">empty</td></tr>{{end}}</table>
{{end}}
<h3>Source switches (newest first, last 100)</h3>
<table id="switches"><tr><th>When</th><th>Name</th><th>From</th><th>To</th><th>Why</th></tr>
{{range .Switches}}<tr><td>{{when .At}}</td><td>{{.Name}}</td><td>{{if .From}}{{.From}}{{else}}<span class="dim">first seen</span>{{end}}</td><td>{{.To}}</td><td>{{.Why}}</td></tr>
{{else}}<tr><td colspan="5" class="dim">none{{if false}}{{end}}</td></tr>{{end}}</table>
{{else}}
<p>No server block uses this listener.</p>
{{end}}
</body></html>
`))
