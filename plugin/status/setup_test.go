package status

import (
	"testing"

	"github.com/tailhorizon/tailhorizon/test/fixture"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name, input, wantErr, wantAddr string
	}{
		{"default address", "status", "", defaultAddr},
		{"address", "status 127.0.0.1:19154", "", "127.0.0.1:19154"},
		{"IPv6 address", "status [::1]:9154", "", "[::1]:9154"},
		{"not an address", "status 9154", `address "9154": want HOST:PORT`, ""},
		{"two addresses", "status 127.0.0.1:1 127.0.0.1:2", "Wrong argument count", ""},
		{"a block", "status {\n foo\n}", `unknown property "foo"`, ""},
		{"twice", "status\nstatus", "this plugin", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fixture.ParseCase(t, parse, c.input, c.wantErr, func(s *Status) string {
				if s.addr != c.wantAddr {
					return "addr " + s.addr + "; want " + c.wantAddr
				}
				return ""
			})
		})
	}
}
