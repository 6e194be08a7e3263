package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/cmd/demo/world"
	"github.com/tailhorizon/tailhorizon/test/fixture"
	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// TestDemo runs `make run`'s demo world as a user would: dig the names it
// suggests, take nodes offline and back through its HTTP endpoint and its
// stdin, and stop it, checking that it leaves nothing behind.
func TestDemo(t *testing.T) {
	tailnettest.Require(t)
	before, _ := filepath.Glob(filepath.Join(os.TempDir(), "tailhorizon-demo*"))
	var out syncBuffer
	stdin, typed := io.Pipe()
	cfg := world.Config{
		Listen:  fmt.Sprintf("127.0.0.1:%d", fixture.Port(t)),
		Control: fmt.Sprintf("127.0.0.1:%d", fixture.Port(t)),
		Metrics: fmt.Sprintf("127.0.0.1:%d", fixture.Port(t)),
		Zone:    "example.org",
		Out:     &out,
		In:      stdin,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- world.Run(ctx, cfg) }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			cancel()
			<-done
		}
	})
	waitOutput(t, &out, done, "Ctrl-C stops everything.")
	nodes := demoNodes(t, cfg.Control)

	ask := func(name string) func() *dns.Msg {
		return func() *dns.Msg { return exchange(t, cfg.Listen, name, dns.TypeA) }
	}
	answersWith := func(addr string) func(*dns.Msg) bool {
		return func(r *dns.Msg) bool { return len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == addr }
	}
	nxdomain := func(r *dns.Msg) bool { return r.Rcode == dns.RcodeNameError }

	t.Run("what the banner suggests", func(t *testing.T) {
		if _, err := exec.LookPath("dig"); err != nil {
			t.Skip("dig not installed (apt-get install dnsutils)")
		}
		for _, line := range strings.Split(out.String(), "\n") {
			if cmd, ok := strings.CutPrefix(strings.TrimSpace(line), "dig "); ok && strings.Contains(cmd, "grafana.hub") {
				got, err := exec.Command("dig", append(strings.Fields(cmd), "+time=2", "+tries=1", "+short")...).CombinedOutput()
				if err != nil || strings.TrimSpace(string(got)) != nodes["hub"].IPv4 {
					t.Errorf("dig %s = %q, %v; want %s", cmd, got, err, nodes["hub"].IPv4)
				}
				return
			}
		}
		t.Errorf("the banner suggests no dig of grafana.hub:\n%s", out.String())
	})
	t.Run("the ready and metrics addresses it prints", func(t *testing.T) {
		for _, prefix := range []string{"Ready: curl ", "Metrics: curl -s "} {
			url := bannerURL(t, out.String(), prefix)
			resp, err := http.Get(url)
			if err != nil {
				t.Fatalf("%s: %v", url, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s: status %d; want 200", url, resp.StatusCode)
			}
		}
		if !strings.Contains(out.String(), "Metrics: curl -s http://"+cfg.Metrics+"/metrics") {
			t.Errorf("the banner does not name the metrics address %s:\n%s", cfg.Metrics, out.String())
		}
	})
	t.Run("reverse zones: dig -x of a tailnet address", func(t *testing.T) {
		hub := nodes["hub"]
		for _, addr := range []string{hub.IPv4, hub.IPv6} {
			rev, err := dns.ReverseAddr(addr)
			if err != nil {
				t.Fatalf("reverse of %q: %v", addr, err)
			}
			r := exchange(t, cfg.Listen, rev, dns.TypePTR)
			if len(r.Answer) != 1 || r.Answer[0].(*dns.PTR).Ptr != "hub.example.org." {
				t.Errorf("PTR %s: got %v (%s); want hub.example.org.", rev, r.Answer, dns.RcodeToString[r.Rcode])
			}
		}
		if _, err := exec.LookPath("dig"); err != nil {
			t.Skip("dig not installed (apt-get install dnsutils)")
		}
		for _, line := range strings.Split(out.String(), "\n") {
			if cmd, ok := strings.CutPrefix(strings.TrimSpace(line), "dig "); ok && strings.Contains(cmd, " -x ") {
				got, err := exec.Command("dig", append(strings.Fields(cmd), "+time=2", "+tries=1", "+short")...).CombinedOutput()
				if err != nil || strings.TrimSpace(string(got)) != "hub.example.org." {
					t.Errorf("dig %s = %q, %v; want hub.example.org.", cmd, got, err)
				}
				return
			}
		}
		t.Errorf("the banner suggests no dig -x:\n%s", out.String())
	})
	t.Run("hub offline: public answer, registry private", func(t *testing.T) {
		waitFor(t, 5*time.Second, "grafana.hub on the tailnet", ask("grafana.hub.example.org"), answersWith(nodes["hub"].IPv4))
		postNode(t, cfg.Control, "hub", "offline")
		waitFor(t, 10*time.Second, "grafana.hub from the public zone", ask("grafana.hub.example.org"), answersWith("203.0.113.10"))
		waitFor(t, 5*time.Second, "registry never public", ask("registry.example.org"), nxdomain)
	})
	t.Run("hub back", func(t *testing.T) {
		postNode(t, cfg.Control, "hub", "toggle")
		// max_ttl 5 in the demo: no answer outlives the switch back by more.
		waitFor(t, 15*time.Second, "grafana.hub back on the tailnet", ask("grafana.hub.example.org"), answersWith(nodes["hub"].IPv4))
	})
	t.Run("nas offline: its LAN address over mDNS", func(t *testing.T) {
		if nodes["nas"].LAN == "" {
			t.Skip("no demo LAN: it needs root")
		}
		fmt.Fprintln(typed, "nas") // as a user types it
		waitFor(t, 15*time.Second, "nas from mDNS", ask("nas.example.org"), answersWith(nodes["nas"].LAN))
	})
	t.Run("unknown node", func(t *testing.T) {
		if code, _ := postNodeStatus(t, cfg.Control, "nosuch", "offline"); code != http.StatusBadRequest {
			t.Errorf("status %d; want %d", code, http.StatusBadRequest)
		}
	})

	// Ctrl-C: everything stops and nothing is left.
	cancel()
	stopped = true
	typed.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop within 30s of Ctrl-C")
	}
	after, _ := filepath.Glob(filepath.Join(os.TempDir(), "tailhorizon-demo*"))
	if len(after) > len(before) {
		t.Errorf("temporary directories left: %v (before: %v)", after, before)
	}
	if out, _ := exec.Command("ip", "-o", "link", "show").Output(); bytes.Contains(out, []byte("thdemo")) {
		t.Errorf("demo LAN interface left:\n%s", out)
	}
	if _, _, err := dnsClient().Exchange(new(dns.Msg).SetQuestion("example.org.", dns.TypeSOA), cfg.Listen); err == nil {
		t.Errorf("coredns still answers on %s", cfg.Listen)
	}
}

// TestDemoOnTailscaled runs the demo on a tailscaled's socket, as
// `make run SOCKET=...` does: the tailnet's peers answer, and its nodes are
// not the demo's to take offline.
func TestDemoOnTailscaled(t *testing.T) {
	tn := tailnettest.Start(t)
	device := tn.AddNode(t, "device")
	hub := tn.AddNode(t, "hub")
	api := device.ServeLocalAPI(t)
	var out syncBuffer
	cfg := world.Config{
		Listen:  fmt.Sprintf("127.0.0.1:%d", fixture.Port(t)),
		Control: fmt.Sprintf("127.0.0.1:%d", fixture.Port(t)),
		Zone:    "example.org",
		Socket:  api.Path,
		Out:     &out,
	}
	runWorld(t, cfg, &out)
	waitFor(t, 5*time.Second, "hub from the tailscaled", func() *dns.Msg {
		return exchange(t, cfg.Listen, "grafana.hub.example.org", dns.TypeA)
	}, func(r *dns.Msg) bool {
		return len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == hub.IPv4.String()
	})
	if code, _ := postNodeStatus(t, cfg.Control, "hub", "offline"); code != http.StatusBadRequest {
		t.Errorf("taking a real node offline: status %d; want %d", code, http.StatusBadRequest)
	}
}

// TestDemoWithoutTailscaled runs the demo on a socket nobody serves, as
// `make run SOCKET=...` on a machine without tailscaled: it waits for
// readiness for its 15 s, says so once, and the ready plugin's "Plugins not
// ready" is logged once, not at each of the demo's polls.
func TestDemoWithoutTailscaled(t *testing.T) {
	var out, logged syncBuffer
	cfg := world.Config{
		Listen: fmt.Sprintf("127.0.0.1:%d", fixture.Port(t)),
		Zone:   "example.org",
		Socket: filepath.Join(t.TempDir(), "no-tailscaled.sock"),
		Out:    &out,
		Log:    &logged,
	}
	runWorld(t, cfg, &out)
	if n := strings.Count(out.String(), "waiting for the plugins to be ready"); n != 1 {
		t.Errorf("the demo says %d times that it waits; want once:\n%s", n, out.String())
	}
	if n := strings.Count(logged.String(), `Plugins not ready: "tailnet"`); n != 1 {
		t.Errorf("the log says %d times that tailnet is not ready; want once:\n%s", n, logged.String())
	}
	if !strings.Contains(out.String(), "warning: the plugins are not ready after") {
		t.Errorf("no warning that the plugins are not ready:\n%s", out.String())
	}
	bannerURL(t, out.String(), "Ready: curl ")
}

// bannerURL returns the URL on the banner's line that starts with prefix.
func bannerURL(t *testing.T, banner, prefix string) string {
	t.Helper()
	for _, line := range strings.Split(banner, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return strings.Fields(rest)[0]
		}
	}
	t.Fatalf("no line %q... in the banner:\n%s", prefix, banner)
	return ""
}

// demoNode is a node as the demo's HTTP endpoint reports it.
type demoNode struct {
	Name   string `json:"name"`
	IPv4   string `json:"ipv4"`
	IPv6   string `json:"ipv6"`
	LAN    string `json:"lan"`
	Online bool   `json:"online"`
}

// demoNodes returns the demo's nodes by name.
func demoNodes(t *testing.T, control string) map[string]demoNode {
	t.Helper()
	resp, err := http.Get("http://" + control + "/nodes")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []demoNode
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	nodes := map[string]demoNode{}
	for _, n := range list {
		nodes[n.Name] = n
	}
	return nodes
}

// postNode asks the demo to take a node offline, online or toggle it.
func postNode(t *testing.T, control, name, verb string) {
	t.Helper()
	if code, body := postNodeStatus(t, control, name, verb); code != http.StatusOK {
		t.Fatalf("%s %s: status %d: %s", verb, name, code, body)
	}
}

// postNodeStatus posts verb for a node and returns the status and body.
func postNodeStatus(t *testing.T, control, name, verb string) (int, []byte) {
	t.Helper()
	resp, err := http.Post("http://"+control+"/nodes/"+name+"/"+verb, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// waitOutput waits until out has want, or the demo ends.
func waitOutput(t *testing.T, out *syncBuffer, done <-chan error, want string) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for !strings.Contains(out.String(), want) {
		select {
		case err := <-done:
			t.Fatalf("demo ended: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("no %q within 2m:\n%s", want, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// dnsClient is a client that gives up quickly.
func dnsClient() *dns.Client { return &dns.Client{Timeout: time.Second} }

// runWorld runs the demo world of cfg, whose Out is out, until its banner
// ends, and stops it when t ends, failing t if it stops with an error.
func runWorld(t *testing.T, cfg world.Config, out *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- world.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo: %v", err)
		}
	})
	waitOutput(t, out, done, "Ctrl-C stops everything.")
}
