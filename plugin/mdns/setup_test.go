package mdns

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailhorizon/tailhorizon/test/fixture"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		input   string
		wantErr string // substring of the error; "" for none
		check   func(*MDNS) string
	}{
		{"defaults", `mdns`, "", func(m *MDNS) string {
			if m.ttl != 10 || m.timeout != 300*time.Millisecond || m.opts.Size != 10000 || m.opts.MaxTTL != 2*time.Minute ||
				len(m.opts.Interfaces) != 0 || len(m.opts.Services) != 0 || len(m.aliases) != 0 {
				return "defaults differ"
			}
			if !slices.Equal(m.Zones, []string{"example.org."}) {
				return "zones " + strings.Join(m.Zones, ",")
			}
			return ""
		}},
		{"every option", `mdns example.org lan.example.org {
			interface eth0 eth1
			interface wlan0
			timeout 500ms
			ttl 30
			max_ttl 10m
			size 500
			alias Printer office-printer
			services _workstation._tcp _ssh._tcp
			fallthrough example.org
		}`, "", func(m *MDNS) string {
			switch {
			case !slices.Equal(m.Zones, []string{"example.org.", "lan.example.org."}):
				return "zones differ"
			case !slices.Equal(m.opts.Interfaces, []string{"eth0", "eth1", "wlan0"}):
				return "interfaces differ"
			case m.timeout != 500*time.Millisecond, m.ttl != 30, m.opts.MaxTTL != 10*time.Minute, m.opts.Size != 500:
				return "scalars differ"
			case m.opts.Window != 500*time.Millisecond, m.opts.NegTTL != 30*time.Second:
				return "the resolver's window and negative TTL differ from timeout and ttl"
			case !maps.Equal(m.aliases, map[string]string{"printer": "office-printer"}):
				return "aliases differ"
			case !slices.Equal(m.opts.Services, []string{"_workstation._tcp", "_ssh._tcp"}):
				return "services differ"
			case !m.Fall.Through("x.example.org.") || m.Fall.Through("x.example.com."):
				return "fallthrough differs"
			}
			return ""
		}},
		{"unknown option", "mdns {\n interfaces eth0\n}", `unknown property "interfaces"`, nil},
		{"interface without a name", "mdns {\n interface\n}", "Wrong argument count", nil},
		{"timeout too short", "mdns {\n timeout 1ms\n}", `timeout "1ms": want a duration from 10ms to 5s`, nil},
		{"timeout not a duration", "mdns {\n timeout soon\n}", `timeout "soon"`, nil},
		{"ttl out of range", "mdns {\n ttl 99999\n}", `ttl "99999": want a whole number from 0 to 3600`, nil},
		{"max_ttl too short", "mdns {\n max_ttl 0s\n}", `max_ttl "0s": want a duration from 1s to 24h0m0s`, nil},
		{"size zero", "mdns {\n size 0\n}", `size "0": want a whole number`, nil},
		{"alias with one argument", "mdns {\n alias printer\n}", "Wrong argument count", nil},
		{"alias with a dot", "mdns {\n alias a.b printer\n}", "single DNS labels", nil},
		{"services without a type", "mdns {\n services\n}", "Wrong argument count", nil},
		{"services with a bad type", "mdns {\n services workstation\n}", "want a service type", nil},
		{"twice", "mdns\nmdns", "this plugin", nil},
		{"an interface written as a zone", "mdns nosuch0", `zone "nosuch0" is not inside this server block's zones (example.org.); to ask on network interface nosuch0, write 'interface nosuch0' in the block`, nil},
		{"a zone outside the server block", "mdns example.com", `zone "example.com" is not inside this server block's zones (example.org.)`, nil},
		{"a zone inside the server block", "mdns lan.example.org", "", func(m *MDNS) string {
			if len(m.Zones) != 1 || m.Zones[0] != "lan.example.org." {
				return "zones " + strings.Join(m.Zones, " ") + "; want lan.example.org."
			}
			return ""
		}},
		{"alias to itself", "mdns {\n alias printer printer\n}", `alias "printer" to itself`, nil},
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
		{"unknown option", "mdns {\n ttl 10\n bogus\n}", 3},
		{"an interface written as a zone", "mdns nosuch0", 1},
		{"a zone outside the server block", "mdns example.com", 1},
		{"alias to itself", "mdns {\n ttl 10\n alias printer printer\n}", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { fixture.ErrorNamesLine(t, parse, c.input, c.line) })
	}
}
