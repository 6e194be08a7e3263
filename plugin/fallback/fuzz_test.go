package fallback

import (
	"context"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/test/fixture"
)

// FuzzServeDNS feeds arbitrary wire messages to ServeDNS in front of a
// chain that says NXDOMAIN, with a real upstream on loopback: no panic,
// and every reply packs.
func FuzzServeDNS(f *testing.F) {
	for _, name := range []string{"hub.example.org.", "_acme-challenge.hub.example.org.", "www.example.org.",
		"x.registry.example.org.", "example.org.", `a\.b.example.org.`, "REGISTRY.Example.ORG."} {
		b, err := new(dns.Msg).SetQuestion(name, dns.TypeA).Pack()
		if err == nil {
			f.Add(b)
		}
	}
	up := newUpstream(f)
	fb := newTestFallback(f, up.Addr, chain(dns.RcodeNameError, 0, true), func(fb *Fallback) {
		fb.rules.Add("registry", []string{"tailnet"})
		fb.rules.Add("www", []string{"public"})
		fb.ede = true
	})
	f.Fuzz(func(t *testing.T, wire []byte) {
		m := new(dns.Msg)
		if m.Unpack(wire) != nil || len(m.Question) != 1 {
			return
		}
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		fb.ServeDNS(policy.NewContext(context.Background(), nil), rec, m)
		if rec.Msg != nil {
			if _, err := rec.Msg.Pack(); err != nil {
				t.Fatalf("reply to %v does not pack: %v", m.Question[0], err)
			}
		}
	})
}

// FuzzParse feeds arbitrary Corefile text to parse: an error, never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"fallback {\n to 127.0.0.1:5301\n}",
		"fallback example.org {\n on NXDOMAIN\n to tls://127.0.0.1 [::1]:53\n policy ci-* tailnet lan\n policy www public\n ede\n original\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, corefile string) {
		parse(fixture.Controller(corefile))
	})
}
