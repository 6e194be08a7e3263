package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/trace"
	"github.com/tailhorizon/tailhorizon/test/fixture"
	"github.com/tailhorizon/tailhorizon/test/realnet"
	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// screenshotEnv names a file TestStatusPage copies its screenshot to:
// STATUS_SCREENSHOT=$PWD/../docs/status.png refreshes the README's.
const screenshotEnv = "STATUS_SCREENSHOT"

// statusWorld is coredns with tailnet, mdns, fallback and status, on
// real headscale and tailscaled, with a LAN where avahi announces laptop
// and printer.
type statusWorld struct {
	rn                   *realnet.Net
	device, hub, laptop  *realnet.Node
	dns, status          string // coredns's UDP address; the status listener's
	laptopLAN, printerIP netip.Addr
}

func startStatusWorld(t *testing.T) *statusWorld {
	w := &statusWorld{rn: realnet.Start(t)}
	w.device = w.rn.AddNode(t, "device", realnet.TailscaleNew)
	w.hub = w.rn.AddNode(t, "hub", realnet.TailscaleNew)
	w.laptop = w.rn.AddNode(t, "laptop", realnet.TailscaleNew)
	w.rn.WaitPeer(t, w.device, w.hub, realnet.Online)
	w.rn.WaitPeer(t, w.device, w.laptop, realnet.Online)
	w.laptopLAN, w.printerIP = lanAddr(w.rn.LAN, false, 30), lanAddr(w.rn.LAN, false, 31)
	w.rn.LAN.AddHost(t).RunAvahi(t, map[string][]netip.Addr{"laptop": {w.laptopLAN}, "printer": {w.printerIP}})
	w.status = "127.0.0.1:" + strconv.Itoa(fixture.Port(t))
	_, w.dns = startCoreDNS(t, fmt.Sprintf(`example.org:0 {
    bind 127.0.0.1
    fallback {
        to %s
        policy registry tailnet
        policy www public
        explain
    }
    tailnet {
        socket %s
        alias registry hub
        fallthrough
    }
    mdns {
        interface %s
        hosts printer
        fallthrough
    }
    status %s
}

example.net:0 {
    bind 127.0.0.1
    tailnet {
        socket %s
    }
    status %s
}
`, startAuthority(t), w.device.Socket(), w.rn.LAN.Bridge, w.status, w.device.Socket(), w.status))
	waitFor(t, 20*time.Second, "laptop answered", w.ask("laptop.example.org"), func(r *dns.Msg) bool { return hasA(r, w.laptop.IPv4()) })
	waitListening(t, w.rn.LAN.Bridge)
	return w
}

func (w *statusWorld) ask(name string) func() *dns.Msg {
	return func() *dns.Msg { return exchangeT(name, w.dns) }
}

// exchangeT asks without a testing.T, for closures; a failed exchange is
// an empty reply.
func exchangeT(name, server string) *dns.Msg {
	c := &dns.Client{Timeout: 2 * time.Second}
	m := new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.SetEdns0(1232, false)
	r, _, err := c.Exchange(m, server)
	if err != nil {
		return new(dns.Msg)
	}
	return r
}

// explainTrace asks the status listener for the trace of name.
func explainTrace(t *testing.T, status, name string) trace.Trace {
	t.Helper()
	resp, err := http.Get("http://" + status + "/explain?name=" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var trs []trace.Trace
	if err := json.NewDecoder(resp.Body).Decode(&trs); err != nil || len(trs) != 1 {
		t.Fatalf("explain %s: %v, %d traces; want one", name, err, len(trs))
	}
	return trs[0]
}

// TestStatusExplain: the trace of each verdict, from live state on a real
// tailnet and LAN, and that tracing asks nobody: the LAN host that was
// never asked for stays out of the cache.
func TestStatusExplain(t *testing.T) {
	w := startStatusWorld(t)
	check := func(name string, verdict trace.Verdict, source string, knows ...string) trace.Trace {
		t.Helper()
		tr := explainTrace(t, w.status, name)
		if tr.Verdict != verdict || tr.Source != source {
			t.Errorf("%s: %s by %s; want %s by %s; trace %+v", name, tr.Verdict, tr.Source, verdict, source, tr)
		}
		all, _ := json.Marshal(tr.Steps)
		for _, k := range knows {
			if !strings.Contains(string(all), k) {
				t.Errorf("%s: the steps do not say %q: %s", name, k, all)
			}
		}
		return tr
	}
	tr := check("grafana.hub.example.org", trace.Answer, "tailnet", "host hub", "reachable")
	if len(tr.Records) != 1 || !strings.Contains(tr.Records[0], w.hub.IPv4().String()) {
		t.Errorf("hub's records %v; want its tailnet address", tr.Records)
	}
	check("printer.example.org", trace.Ask, "lan", "not in the cache")
	check("printer.example.org", trace.Ask, "lan") // the trace asked nobody: still not cached
	check("nosuch.example.org", trace.Public, "public", "no host", "not a host the tailnet or the Corefile names")
	check("www.example.org", trace.Public, "upstreams", "policy www: public")
	// Asked to, the trace asks fallback's upstreams for a public answer.
	tr = explainTrace(t, w.status, "www.example.org&upstream=1")
	if len(tr.Records) != 1 || !strings.Contains(tr.Records[0], wwwIPv4) || tr.Steps[len(tr.Steps)-1].Source != "upstreams" {
		t.Errorf("www, upstreams asked: records %v, steps %+v; want the upstreams' %s", tr.Records, tr.Steps, wwwIPv4)
	}
	// The second block shares the listener; its tailnet has no fallthrough.
	check("nosuch.example.net", trace.NXDomain, "tailnet", "no host")
	check("hub.example.net", trace.Answer, "tailnet", "host hub")

	waitFor(t, 10*time.Second, "printer on the LAN", w.ask("printer.example.org"), func(r *dns.Msg) bool { return hasA(r, w.printerIP) })
	check("printer.example.org", trace.Answer, "lan", "printer.local is in the cache")

	w.laptop.Down(t)
	waitFor(t, 10*time.Second, "laptop on the LAN", w.ask("laptop.example.org"), func(r *dns.Msg) bool { return hasA(r, w.laptopLAN) })
	// Down, laptop fails its probe before control says it is offline:
	// either is the tailnet's reason.
	tr = check("laptop.example.org", trace.Answer, "lan", "host laptop", "laptop.local is in the cache")
	if r := tr.Steps[1].Reason; r != "probe failed" && r != "node offline" {
		t.Errorf("laptop, down: the tailnet passes it for %q; want probe failed or node offline", r)
	}

	w.hub.Down(t)
	waitFor(t, 10*time.Second, "hub public", w.ask("hub.example.org"), func(r *dns.Msg) bool { return answerData(r) == vpsIPv4 })
	check("registry.example.org", trace.Blocked, "fallback", "policy registry: tailnet", "alias of host hub", "the policy leaves the LAN out")
	w.hub.Up(t)
}

// TestStatusPage loads the status page in headless Chromium, with no
// network but loopback, takes a screenshot and checks what the page
// shows: peers, the LAN cache and the source switches.
func TestStatusPage(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		tailnettest.SkipOrFail(t, "needs chromium (apt-get install chromium)")
	}
	w := startStatusWorld(t)
	waitFor(t, 10*time.Second, "printer on the LAN", w.ask("printer.example.org"), func(r *dns.Msg) bool { return hasA(r, w.printerIP) })
	w.laptop.Down(t)
	waitFor(t, 10*time.Second, "laptop on the LAN", w.ask("laptop.example.org"), func(r *dns.Msg) bool { return hasA(r, w.laptopLAN) })
	w.ask("www.example.org")()

	dir := t.TempDir()
	shot := filepath.Join(dir, "status.png")
	browse := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, chromium, append([]string{
			"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
			"--user-data-dir=" + filepath.Join(dir, "profile"),
			// No network but loopback: no background traffic, no proxy, and
			// every name but 127.0.0.1 unresolvable.
			"--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync",
			"--disable-default-apps", "--disable-extensions", "--no-default-browser-check", "--no-proxy-server",
			"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
			"--window-size=1280,1000",
		}, append(args, "http://"+w.status+"/")...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
		return string(out)
	}
	dom := browse("--dump-dom")
	for _, want := range []string{
		"tailhorizon status",
		"hub.", "laptop.", "device.", // the peers
		w.hub.IPv4().String(),
		"no: ",                                // laptop, down, is not reachable
		"printer.local", w.printerIP.String(), // the LAN cache
		"laptop.example.org.", "tailnet", "lan", // the switch of laptop
		"www.example.org.", "upstreams",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	browse("--screenshot=" + shot)
	fi, err := os.Stat(shot)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if fi.Size() < 10000 {
		t.Fatalf("screenshot %s: %d bytes; want a page", shot, fi.Size())
	}
	if dst := os.Getenv(screenshotEnv); dst != "" {
		b, _ := os.ReadFile(shot)
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Error(err)
		}
	}
	w.laptop.Up(t)
}
