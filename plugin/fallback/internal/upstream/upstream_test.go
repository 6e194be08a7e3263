package upstream

import (
	"slices"
	"strings"
	"testing"
)

// TestCheckAddrs: plain DNS and DNS-over-TLS upstreams with a valid
// port, as host:port with their transport; nothing else.
func TestCheckAddrs(t *testing.T) {
	cases := []struct {
		addrs   []string
		want    []string
		wantErr string
	}{
		{[]string{"127.0.0.1"}, []string{"127.0.0.1:53"}, ""},
		{[]string{"127.0.0.1:5300", "tls://[::1]"}, []string{"127.0.0.1:5300", "tls://[::1]:853"}, ""},
		{[]string{"https://127.0.0.1"}, nil, "only dns:// and tls://"},
		{[]string{"127.0.0.1:0"}, nil, "want a port from 1 to 65535"},
		{[]string{"nowhere"}, nil, "not an IP address or file"},
	}
	for _, c := range cases {
		got, err := CheckAddrs(c.addrs...)
		switch {
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%v: got %v; want an error saying %q", c.addrs, err, c.wantErr)
		case c.wantErr == "" && (err != nil || !slices.Equal(got, c.want)):
			t.Errorf("%v: got %v, %v; want %v", c.addrs, got, err, c.want)
		}
	}
}
