package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/cmd/coredns/bundle"
	"github.com/tailhorizon/tailhorizon/test/decoy"
	"github.com/tailhorizon/tailhorizon/test/fixture"
)

// TestMain runs the tests next to a process named tailscaled, as on every
// user's machine, which must change nothing.
func TestMain(m *testing.M) {
	stop, err := decoy.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

// TestDirectivesOrder checks the place of each of our plugins in the chain,
// as cmd/coredns/bundle documents it: after cache and hosts, before the static
// sources (template, file), loop and forward.
func TestDirectivesOrder(t *testing.T) {
	pos := map[string]int{}
	for i, d := range bundle.Directives {
		if _, dup := pos[d]; dup {
			t.Errorf("directive %q is listed twice", d)
		}
		pos[d] = i
	}
	for _, d := range []string{"cache", "hosts", "template", "file", "loop", "forward", "view"} {
		if _, ok := pos[d]; !ok {
			t.Errorf("directive %q is missing; want it in %v", d, bundle.Directives)
		}
	}
	for _, ours := range ourPlugins(t) {
		p, ok := pos[ours]
		if !ok {
			t.Errorf("plugin/%s is not in bundle.Directives", ours)
			continue
		}
		for _, before := range []string{"cache", "hosts"} {
			if b, ok := pos[before]; ok && p < b {
				t.Errorf("%s is at %d, before %s at %d; want it after", ours, p, before, b)
			}
		}
		for _, after := range []string{"template", "file", "loop", "forward"} {
			if a, ok := pos[after]; ok && p > a {
				t.Errorf("%s is at %d, after %s at %d; want it before", ours, p, after, a)
			}
		}
		// fallback runs the sources and catches what they cannot answer.
		if f, ok := pos["fallback"]; ok && ours != "fallback" && p < f {
			t.Errorf("%s is at %d, before fallback at %d; want fallback first", ours, p, f)
		}
	}
}

// TestDirectivesRegistered checks that every directive names a plugin
// compiled into this binary, and every plugin compiled in has a place in
// the list (a plugin missing from it cannot be used in a Corefile).
func TestDirectivesRegistered(t *testing.T) {
	var registered []string
	for _, p := range caddy.ListPlugins()["others"] {
		if name, ok := strings.CutPrefix(p, "dns."); ok {
			registered = append(registered, name)
		}
	}
	for _, d := range bundle.Directives {
		if !slices.Contains(registered, d) {
			t.Errorf("directive %q has no registered plugin; blank-import it in main.go", d)
		}
	}
	for _, p := range registered {
		if !slices.Contains(bundle.Directives, p) {
			t.Errorf("plugin %q is registered but not in bundle.Directives, so no Corefile can use it", p)
		}
	}
	for _, ours := range ourPlugins(t) {
		if !slices.Contains(registered, ours) {
			t.Errorf("plugin/%s is not registered; blank-import it in main.go", ours)
		}
	}
}

func TestSetDirectives(t *testing.T) {
	saved := dnsserver.Directives
	t.Cleanup(func() { dnsserver.Directives = saved })

	if err := dnsserver.SetDirectives(bundle.Directives); err != nil {
		t.Fatalf("SetDirectives: got %v; want nil", err)
	}
	if got := caddy.ValidDirectives("dns"); !slices.Equal(got, bundle.Directives) {
		t.Errorf("ValidDirectives(dns) = %v; want %v", got, bundle.Directives)
	}
}

func TestAppVersion(t *testing.T) {
	for _, tc := range []struct {
		name, core, th, want string
	}{
		{"release", "1.15.0", "v0.1.0", "1.15.0+tailhorizon-v0.1.0"},
		{"dev", "1.15.0", "dev", "1.15.0+tailhorizon-dev"},
		{"describe", "1.15.0", "v0.1.0-3-gabcdef0-dirty", "1.15.0+tailhorizon-v0.1.0-3-gabcdef0-dirty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := appVersion(tc.core, tc.th); got != tc.want {
				t.Errorf("appVersion(%q, %q) = %q; want %q", tc.core, tc.th, got, tc.want)
			}
		})
	}
}

// TestBinary builds the binary with a version stamped in, and runs it.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir, "-ldflags", "-X main.version=v9.9.9")

	t.Run("version", func(t *testing.T) {
		out := run(t, bin, "-version")
		if !strings.Contains(out, "tailhorizon-v9.9.9") {
			t.Errorf("coredns -version printed %q; want a line with %q", out, "tailhorizon-v9.9.9")
		}
	})
	t.Run("plugins", func(t *testing.T) {
		out := run(t, bin, "-plugins")
		if !slices.Contains(strings.Fields(out), "tailnet") {
			t.Errorf("coredns -plugins printed %q; want it to list tailnet", out)
		}
	})
	// Without tailscaled the server starts, says so once, and serves the
	// other sources: tailnet names fall through to the template.
	t.Run("serve without tailscaled", func(t *testing.T) {
		port := fixture.Port(t)
		corefile := filepath.Join(dir, "Corefile")
		conf := fmt.Sprintf(`example.org:%d {
    bind 127.0.0.1
    tailnet {
        socket %s
        fallthrough
    }
    template IN A example.org {
        answer "{{ .Name }} 60 IN A 203.0.113.10"
    }
}
.:%d {
    bind 127.0.0.1
    whoami
}
`, port, filepath.Join(dir, "no-tailscaled.sock"), port)
		if err := os.WriteFile(corefile, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		exited, output := start(t, bin, "-conf", corefile)

		r := ask(t, addr, "hub.example.org.", exited)
		if len(r.Answer) != 1 || !strings.HasSuffix(r.Answer[0].String(), "203.0.113.10") {
			t.Errorf("hub.example.org: got %v; want the template's 203.0.113.10", r.Answer)
		}
		r = ask(t, addr, "whoami.example.net.", exited)
		if r.Rcode != dns.RcodeSuccess || len(r.Extra) == 0 {
			t.Errorf("whoami: got %v; want its answer", r)
		}
		// The watch retries every second or so; more tries must stay quiet.
		time.Sleep(2500 * time.Millisecond)
		if n := strings.Count(output(), "tailscaled not reachable"); n != 1 {
			t.Errorf("the log says %d times that tailscaled is not reachable; want once:\n%s", n, output())
		}
	})
}

// ask queries addr until it answers, for at most 10 s, or until the server exits.
func ask(t *testing.T, addr, name string, exited <-chan struct{}) *dns.Msg {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, dns.TypeA)
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	for deadline := time.Now().Add(10 * time.Second); ; {
		r, _, err := c.Exchange(m, addr)
		if err == nil {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %s at %s: %v", name, addr, err)
		}
		select {
		case <-exited:
			t.Fatalf("coredns exited before answering on %s", addr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ourPlugins returns the names of the directories under plugin/.
func ourPlugins(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("..", "..", "plugin"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatal("no plugins under plugin/")
	}
	return names
}

// run runs bin with args and returns its standard output.
func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return string(out)
}

// start starts bin with args, logs its output, and kills it when the test
// ends. The returned channel is closed when the process exits; the function
// returns what it printed so far.
func start(t *testing.T, bin string, args ...string) (<-chan struct{}, func() string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		printed strings.Builder
	)
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		s := bufio.NewScanner(out)
		for s.Scan() {
			mu.Lock()
			printed.WriteString(s.Text() + "\n")
			mu.Unlock()
		}
	}()
	exited := make(chan struct{})
	go func() {
		<-logged
		cmd.Wait()
		close(exited)
	}()
	output := func() string {
		mu.Lock()
		defer mu.Unlock()
		return printed.String()
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		t.Logf("coredns printed:\n%s", output())
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			t.Errorf("coredns (pid %d) did not exit after kill", cmd.Process.Pid)
		}
	})
	return exited, output
}

// TestBinaryWithoutNode builds the binary with the tag that leaves the
// embedded node out: tsnet, gVisor and WireGuard are not linked, and a
// Corefile that asks for a node fails at start-up, naming its line.
func TestBinaryWithoutNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir, "-tags", "tailhorizon_nonode")
	list := exec.Command("go", "list", "-deps", "-tags", "tailhorizon_nonode", ".")
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "tailscale.com/tsnet" || strings.HasPrefix(pkg, "gvisor.dev/") || strings.HasPrefix(pkg, "golang.zx2c4.com/wireguard") {
			t.Errorf("built without the node, the binary still links %s", pkg)
		}
	}
	corefile := filepath.Join(dir, "Corefile")
	conf := fmt.Sprintf("example.org:%d {\n    tailnet {\n        node dns\n        state_dir %s\n    }\n}\n", fixture.Port(t), dir)
	if err := os.WriteFile(corefile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := exec.CommandContext(ctx, bin, "-conf", corefile).CombinedOutput()
	if err == nil || !strings.Contains(string(got), "built without the embedded node") || !strings.Contains(string(got), "Corefile:3") {
		t.Errorf("coredns with a node, built without: %v, printed:\n%s\nwant a failure naming Corefile:3, the node line, and the missing node", err, got)
	}
}

// buildBinary builds the binary into dir with the extra go build flags,
// and returns its path.
func buildBinary(t *testing.T, dir string, flags ...string) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	bin := filepath.Join(dir, "coredns")
	args := append(append([]string{"build", "-o", bin}, flags...), ".")
	if out, err := exec.Command(goCmd, args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
