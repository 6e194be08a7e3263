package test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// TestEmbeddedNode: the tailnet plugin runs its own node (tsnet) against
// the in-process control server, standing in for headscale, and serves the
// whole plugin chain on that node's tailnet address. Another node asks it
// over the tailnet, with a real tsnet dial, and views see who asks.
func TestEmbeddedNode(t *testing.T) {
	tn := tailnettest.Start(t)
	ci := tn.AddNode(t, "ci", "tag:ci")
	laptop := tn.AddNode(t, "laptop")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "authkey")
	if err := os.WriteFile(keyFile, []byte("tskey-unused-by-testcontrol\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	node := func(extra string) string {
		return fmt.Sprintf(`    tailnet {
        node dns
        state_dir %s
        control_url %s
        authkey_file %s
        ephemeral
        listen
        %s
    }`, filepath.Join(dir, "state"), tn.Control.BaseURL(), keyFile, extra)
	}
	_, local := startCoreDNS(t, fmt.Sprintf(`example.org:53 {
    bind 127.0.0.1
    view ci {
        expr metadata('tailnet/client_tags') contains 'tag:ci'
    }
    metadata
%s
}

example.org:53 {
    bind 127.0.0.1
    metadata
%s
}
`, node("alias registry laptop"), node("")))
	_ = local

	// The node registers and the table loads; then find its address.
	var dnsAddr netip.Addr
	waitFor(t, 30*time.Second, "the embedded node is up", func() *dns.Msg {
		r := exchangeFrom(t, publicClient, "127.0.0.1:53", "dns.example.org", dns.TypeA)
		if len(r.Answer) == 1 {
			if a, ok := r.Answer[0].(*dns.A); ok {
				dnsAddr, _ = netip.AddrFromSlice(a.A.To4())
			}
		}
		return r
	}, func(r *dns.Msg) bool { return dnsAddr.IsValid() })

	ask := func(from *tailnettest.Node, name string) (*dns.Msg, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		conn, err := from.Server.Dial(ctx, "udp", net.JoinHostPort(dnsAddr.String(), "53"))
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Second))
		dc := &dns.Conn{Conn: conn}
		if err := dc.WriteMsg(new(dns.Msg).SetQuestion(name, dns.TypeA)); err != nil {
			return nil, err
		}
		return dc.ReadMsg()
	}
	waitFor(t, 20*time.Second, "laptop answered over the tailnet", func() *dns.Msg {
		r, err := ask(laptop, "ci.example.org.")
		if err != nil {
			return new(dns.Msg)
		}
		return r
	}, func(r *dns.Msg) bool { return hasA(r, ci.IPv4) })

	cases := []struct {
		name string
		from *tailnettest.Node
		want string // answer data; "" for NXDOMAIN
	}{
		{"tag:ci gets the registry over the tailnet", ci, laptop.IPv4.String()},
		{"the laptop does not", laptop, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := ask(c.from, "registry.example.org.")
			if err != nil {
				t.Fatal(err)
			}
			if got := answerData(r); got != c.want || (c.want == "" && r.Rcode != dns.RcodeNameError) {
				t.Errorf("got %s %q; want %q", dns.RcodeToString[r.Rcode], got, c.want)
			}
		})
	}
}
