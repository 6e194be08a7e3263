package fallback

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/test/fixture"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		input   string
		wantErr string
		check   func(*Fallback) string
	}{
		{"defaults", "fallback {\n to 127.0.0.1:5301\n}", "", func(f *Fallback) string {
			if !slices.Equal(f.rcodes, []int{dns.RcodeNameError, dns.RcodeServerFailure, dns.RcodeRefused}) || f.original || f.ede || f.explain {
				return "defaults differ"
			}
			if len(f.Zones) != 1 || f.Zones[0] != "example.org." || f.up.Proxies() != 1 {
				return "zones or upstreams differ"
			}
			return ""
		}},
		{"every option", `fallback example.org {
			on NXDOMAIN refused
			to 127.0.0.1:5301 tls://127.0.0.1:8853 [::1]:5301
			tls_servername dns.example.net
			original
			ede
			max_ttl 10
			prefer_udp
			policy registry tailnet
			policy grafana tailnet lan public
			policy www public
			policy ci-* tailnet lan
		}`, "", func(f *Fallback) string {
			switch {
			case !slices.Equal(f.rcodes, []int{dns.RcodeNameError, dns.RcodeRefused}):
				return "rcodes differ"
			case f.up.Proxies() != 3 || f.up.TLSServerName != "dns.example.net" || !f.up.PreferUDP:
				return "upstreams differ"
			case !f.original || !f.ede || f.maxTTL != 10:
				return "flags differ"
			case f.rules.Lookup("registry") != policy.Tailnet, f.rules.Lookup("www") != policy.Public,
				f.rules.Lookup("ci-42") != policy.Tailnet|policy.LAN, f.rules.Lookup("other") != policy.All:
				return "policy differs"
			}
			return ""
		}},
		{"explain to every client", "fallback {\n to 127.0.0.1\n explain\n}", "", func(f *Fallback) string {
			if !f.explain || f.explainNets != nil || f.ede {
				return "explain differs"
			}
			return ""
		}},
		{"explain to networks", "fallback {\n to 127.0.0.1\n explain 100.64.0.0/10 fd7a:115c:a1e0::/48 127.0.0.1\n}", "", func(f *Fallback) string {
			want := []netip.Prefix{netip.MustParsePrefix("100.64.0.0/10"), netip.MustParsePrefix("fd7a:115c:a1e0::/48"), netip.MustParsePrefix("127.0.0.1/32")}
			if !f.explain || !slices.Equal(f.explainNets, want) {
				return fmt.Sprintf("explain networks %v; want %v", f.explainNets, want)
			}
			return ""
		}},
		{"explain to a bad network", "fallback {\n to 127.0.0.1\n explain 100.64.0.0/99\n}", `explain "100.64.0.0/99": want a network`, nil},
		{"no upstream", "fallback", "needs upstreams", nil},
		{"max_ttl out of range", "fallback {\n to 127.0.0.1\n max_ttl -1\n}", "want a whole number from 0 to 86400", nil},
		{"tls CA that does not exist", "fallback {\n to tls://127.0.0.1\n tls /nonexistent/ca.pem\n}", "tls:", nil},
		{"bad upstream", "fallback {\n to nowhere\n}", "to: not an IP address or file", nil},
		{"unsupported transport", "fallback {\n to https://127.0.0.1\n}", "only dns:// and tls://", nil},
		{"port out of range", "fallback {\n to 127.0.0.1:99999\n}", "to: 127.0.0.1:99999: want a port from 1 to 65535", nil},
		{"port zero", "fallback {\n to tls://[::1]:0\n}", "want a port from 1 to 65535", nil},
		{"a zone outside the server block", "fallback example.com {\n to 127.0.0.1\n}", `zone "example.com" is not inside this server block's zones (example.org.)`, nil},
		{"bad rcode", "fallback {\n on NOPE\n to 127.0.0.1\n}", `on "NOPE"`, nil},
		{"NOERROR is not a trigger", "fallback {\n on NOERROR\n to 127.0.0.1\n}", `on "NOERROR"`, nil},
		{"unknown source", "fallback {\n to 127.0.0.1\n policy www wan\n}", `unknown source "wan"`, nil},
		{"sources out of order", "fallback {\n to 127.0.0.1\n policy www public tailnet\n}", "in the order they are asked", nil},
		{"policy with a dotted name", "fallback {\n to 127.0.0.1\n policy a.b public\n}", "want a host label", nil},
		{"policy twice", "fallback {\n to 127.0.0.1\n policy www public\n policy www tailnet\n}", "given twice", nil},
		{"policy without sources", "fallback {\n to 127.0.0.1\n policy www\n}", "Wrong argument count", nil},
		{"unknown option", "fallback {\n to 127.0.0.1\n orignal\n}", `unknown property "orignal"`, nil},
		{"twice", "fallback {\n to 127.0.0.1\n}\nfallback {\n to 127.0.0.1\n}", "this plugin", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { fixture.ParseCase(t, parse, c.input, c.wantErr, c.check) })
	}
}

func TestParseErrorNamesTheLine(t *testing.T) {
	cases := []struct {
		name  string
		input string
		line  int
	}{
		{"port out of range", "fallback {\n max_ttl 10\n to 127.0.0.1:99999\n policy www public\n}", 3},
		{"a zone outside the server block", "fallback example.com {\n to 127.0.0.1\n}", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { fixture.ErrorNamesLine(t, parse, c.input, c.line) })
	}
}
