package tailnet

import (
	"context"
	"testing"

	"github.com/coredns/coredns/plugin/metadata"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

func TestMetadata(t *testing.T) {
	s := testSnapshot()
	s.Nodes[2].User = "tagged-devices"
	tn := newTestTailnet(s, nil)
	cases := []struct {
		client               string
		name, user, tags     string
		wantMetadataProvided bool
	}{
		{"100.64.0.3", "registry-box", "tagged-devices", "tag:registry,tag:web", true},
		{"fd7a:115c:a1e0::2", "hub", "", "", true},
		{"203.0.113.9", "", "", "", false},
	}
	for _, c := range cases {
		t.Run(c.client, func(t *testing.T) {
			state := request.Request{W: &test.ResponseWriter{RemoteIP: c.client}, Req: new(dns.Msg).SetQuestion("x.example.org.", dns.TypeA)}
			ctx := tn.Metadata(metadata.ContextWithMetadata(context.Background()), state)
			get := func(label string) string {
				if f := metadata.ValueFunc(ctx, label); f != nil {
					return f()
				}
				return "<none>"
			}
			if !c.wantMetadataProvided {
				if got := get("tailnet/client_name"); got != "<none>" {
					t.Errorf("client_name = %q for a client outside the tailnet; want none", got)
				}
				return
			}
			if got := get("tailnet/client_name"); got != c.name {
				t.Errorf("client_name = %q; want %q", got, c.name)
			}
			if got := get("tailnet/client_user"); got != c.user {
				t.Errorf("client_user = %q; want %q", got, c.user)
			}
			if got := get("tailnet/client_tags"); got != c.tags {
				t.Errorf("client_tags = %q; want %q", got, c.tags)
			}
		})
	}
}
