package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tailhorizon/tailhorizon/internal/trace"
)

func TestExplainMain(t *testing.T) {
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.URL.RequestURI()
		json.NewEncoder(w).Encode([]trace.Trace{{
			Name: "hub.example.org.", Type: "AAAA", Server: "dns://example.org.:53", Allowed: "tailnet lan public",
			Steps: []trace.Step{
				{Source: "fallback", Verdict: trace.Pass, Knows: "no policy rule: every source may answer"},
				{Source: "tailnet", Verdict: trace.Pass, Reason: "node offline", Knows: "host hub: hub.ts.net. node offline (offline, probe none)"},
				{Source: "mdns", Verdict: trace.Answer, Knows: "hub.local is in the cache", Records: []string{"hub.example.org.\t10\tIN\tAAAA\t2001:db8::2"}},
			},
			Verdict: trace.Answer, Source: "lan", Records: []string{"hub.example.org.\t10\tIN\tAAAA\t2001:db8::2"},
		}})
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	if code := explainMain([]string{"-status", strings.TrimPrefix(srv.URL, "http://"), "hub.example.org", "AAAA"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if asked != "/explain?name=hub.example.org&type=AAAA" {
		t.Errorf("asked %s; want the name and type", asked)
	}
	for _, want := range []string{"hub.example.org. AAAA in dns://example.org.:53", "2.  tailnet   pass: node offline", "=> answered by lan", "hub.example.org. 10 IN AAAA 2001:db8::2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if code := explainMain(nil, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "usage: coredns -explain") {
		t.Errorf("no name: exit %d, %q; want 2 and the usage", code, errOut.String())
	}
}
