package tailnet

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/embedded"
	"github.com/tailhorizon/tailhorizon/test/fixture"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		input   string
		wantErr string // substring of the error; "" for none
		check   func(*Tailnet) string
	}{
		{"defaults", `tailnet`, "", func(tn *Tailnet) string {
			if tn.ttl != 1 || tn.watch.Stale != 5*time.Minute || tn.watch.Probe != 500*time.Millisecond || tn.socket != "" || !tn.tableConf.Tags || tn.tableConf.CNAME {
				return "defaults differ"
			}
			if len(tn.Zones) != 1 || tn.Zones[0] != "example.org." {
				return "zones " + strings.Join(tn.Zones, ",")
			}
			return ""
		}},
		{"reverse ranges outside the server block", `tailnet example.org 100.64.0.0/10`, `zone "100.64.0.0/10" is not inside this server block's zones (example.org.)`, nil},
		{"a zone outside the server block", `tailnet example.com`, `zone "example.com" is not inside this server block's zones (example.org.)`, nil},
		{"alias to itself", "tailnet {\n alias hub hub\n}", `alias "hub" to itself`, nil},
		{"alias to an alias", "tailnet {\n alias registry hub\n alias reg registry\n}", `"registry" is an alias itself`, nil},
		{"alias loop", "tailnet {\n alias a b\n alias b a\n}", `"a" is an alias itself`, nil},
		{"alias of an alias target", "tailnet {\n alias registry hub\n alias hub nas\n}", `alias "registry" points to it`, nil},
		{"alias given twice", "tailnet {\n alias registry hub\n alias registry nas\n}", `alias "registry" given twice`, nil},
		{"alias given as a host and as a service", "tailnet {\n alias registry hub\n alias registry svc:cargo\n}", `alias "registry" given twice`, nil},
		{"alias given as a service and as a host", "tailnet {\n alias registry svc:cargo\n alias registry hub\n}", `alias "registry" given twice`, nil},
		{"service alias with a dot", "tailnet {\n alias a.b svc:cargo\n}", "single DNS labels", nil},
		{"every option", `tailnet example.org {
			socket /run/ts.sock
			ttl 30
			alias Registry hub
			alias wiki nas
			tags svc-
			cname
			stale 1m
			probe 5s
			listen
			fallthrough example.org
		}`, "", func(tn *Tailnet) string {
			want := map[string]string{"registry": "hub", "wiki": "nas"}
			switch {
			case tn.socket != "/run/ts.sock", tn.ttl != 30, !tn.tableConf.CNAME, tn.watch.Stale != time.Minute, tn.watch.Probe != 5*time.Second, !tn.listenOn:
				return "scalars differ"
			case !maps.Equal(tn.tableConf.Aliases, want):
				return "aliases differ"
			case !tn.tableConf.Tags || tn.tableConf.TagPrefix != "svc-":
				return "tags differ"
			case !tn.Fall.Through("x.example.org.") || tn.Fall.Through("x.example.net."):
				return "fallthrough differs"
			}
			return ""
		}},
		{"tags off", "tailnet {\n tags off\n}", "", func(tn *Tailnet) string {
			if tn.tableConf.Tags {
				return "tags still on"
			}
			return ""
		}},
		{"stale 0 falls through at once", "tailnet {\n stale 0s\n}", "", nil},
		{"unknown option", "tailnet {\n sockett /x\n}", `unknown property "sockett"`, nil},
		{"socket without a path", "tailnet {\n socket\n}", "Wrong argument count", nil},
		{"ttl out of range", "tailnet {\n ttl 99999\n}", "ttl \"99999\": want a whole number from 0 to 3600", nil},
		{"ttl not a number", "tailnet {\n ttl ten\n}", "want a whole number", nil},
		{"alias with one argument", "tailnet {\n alias registry\n}", "Wrong argument count", nil},
		{"alias with a dot", "tailnet {\n alias a.b hub\n}", "single DNS labels", nil},
		{"bad duration", "tailnet {\n stale soon\n}", `stale "soon"`, nil},
		{"probe too often", "tailnet {\n probe 1ms\n}", "must be at least 100ms", nil},
		{"cname takes no argument", "tailnet {\n cname yes\n}", "Wrong argument count", nil},
		{"embedded node", `tailnet {
			node dns
			state_dir /var/lib/tailhorizon
			control_url https://headscale.example.net
			authkey_file /run/secrets/ts-authkey
			advertise_tags tag:dns tag:infra
			ephemeral
			listen
		}`, "", func(tn *Tailnet) string {
			n := tn.node
			switch {
			case n == nil, n.Hostname != "dns", n.StateDir != "/var/lib/tailhorizon", n.ControlURL != "https://headscale.example.net",
				n.AuthKeyFile != "/run/secrets/ts-authkey", n.AuthKeyEnv != "TS_AUTHKEY", len(n.Tags) != 2, !n.Ephemeral:
				return fmt.Sprintf("node = %+v", n)
			case n.Key() != "tsnet:/var/lib/tailhorizon":
				return "watch key " + n.Key()
			}
			return ""
		}},
		{"node without state_dir", "tailnet {\n node dns\n}", "needs a state_dir", nil},
		{"node options without node", "tailnet {\n state_dir /x\n}", "need 'node HOSTNAME'", nil},
		{"node and socket", "tailnet {\n node dns\n state_dir /x\n socket /y\n}", "exclude each other", nil},
		{"tag without tag:", "tailnet {\n node dns\n state_dir /x\n advertise_tags dns\n}", "tags start with tag:", nil},
		{"listen takes no argument", "tailnet {\n listen 53\n}", "Wrong argument count", nil},
		{"tags with two arguments", "tailnet {\n tags a b\n}", "Wrong argument count", nil},
		{"twice", "tailnet\ntailnet", "this plugin", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !embedded.Built && strings.Contains(c.input, "node dns") {
				t.Skip("built without the embedded node (tailhorizon_nonode); TestBinaryWithoutNode checks its error")
			}
			fixture.ParseCase(t, parse, c.input, c.wantErr, c.check)
		})
	}
}

func TestParseErrorNamesTheLine(t *testing.T) {
	cases := []struct {
		name  string
		input string
		line  int
	}{
		{"unknown option", "tailnet {\n ttl 10\n bogus\n}", 3},
		{"a zone outside the server block", "tailnet example.com {\n ttl 10\n}", 1},
		{"alias to itself", "tailnet {\n ttl 10\n alias hub hub\n}", 3},
		{"alias loop", "tailnet {\n alias a b\n alias b a\n}", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { fixture.ErrorNamesLine(t, parse, c.input, c.line) })
	}
}

// TestParseReverseZones: reverse ranges are zones of the block they are in.
func TestParseReverseZones(t *testing.T) {
	// A block "example.org 100.64.0.0/10 fd7a:115c:a1e0::/48" has these keys.
	keys := []string{"dns://example.org.:53", "dns://0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa.:53"}
	for i := 64; i < 128; i++ {
		keys = append(keys, fmt.Sprintf("dns://%d.100.in-addr.arpa.:53", i))
	}
	for _, keys := range [][]string{{"dns://.:53"}, keys} {
		c := caddy.NewTestController("dns", "tailnet example.org 100.64.0.0/10 fd7a:115c:a1e0::/48")
		c.ServerBlockKeys = keys
		tn, err := parse(c)
		if err != nil {
			t.Errorf("block %v: parse error = %v; want none", keys[0], err)
			continue
		}
		if len(tn.Zones) != 1+64+1 || tn.Zones[0] != "example.org." || tn.Zones[65] != "0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa." {
			t.Errorf("block %v: zones %v; want example.org. and the 65 reverse zones", keys[0], tn.Zones)
		}
	}
}
