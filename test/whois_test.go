package test

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/fixture"
	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// TestWhoIsAsking: the tailnet plugin tells a view which node is asking,
// from its table, so only tag:ci machines get the registry name. The
// queries come from the peers' own tailnet addresses.
func TestWhoIsAsking(t *testing.T) {
	tn := tailnettest.Start(t)
	hub := tn.AddNode(t, "hub")
	ci := tn.AddNode(t, "ci", "tag:ci")
	laptop := tn.AddNode(t, "laptop")
	api := hub.ServeLocalAPI(t)
	addLoopbackAddr(t, ci.IPv4)
	addLoopbackAddr(t, laptop.IPv4)

	port := fixture.Port(t)
	startCoreDNS(t, fmt.Sprintf(`example.org:%[1]d {
    view ci {
        expr metadata('tailnet/client_tags') contains 'tag:ci'
    }
    metadata
    tailnet {
        socket %[2]s
        alias registry hub
    }
}

example.org:%[1]d {
    metadata
    tailnet {
        socket %[2]s
    }
}
`, port, api.Path))
	srv := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitFor(t, 20*time.Second, "laptop known", func() *dns.Msg { return exchangeFrom(t, ci.IPv4, srv, "laptop.example.org", dns.TypeA) },
		func(r *dns.Msg) bool { return hasA(r, laptop.IPv4) })

	cases := []struct {
		name string
		from *tailnettest.Node
		want string // the data of the answer; "" for NXDOMAIN
	}{
		{"tag:ci gets the registry", ci, hub.IPv4.String()},
		{"an untagged laptop does not", laptop, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := exchangeFrom(t, c.from.IPv4, srv, "registry.example.org", dns.TypeA)
			if got := answerData(r); got != c.want || (c.want == "" && r.Rcode != dns.RcodeNameError) {
				t.Errorf("got %s %q; want %q", dns.RcodeToString[r.Rcode], got, c.want)
			}
		})
	}
}
