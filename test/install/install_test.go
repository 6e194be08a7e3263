package install

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/fixture"
	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// checkout is the root of this checkout, from test/install.
const checkout = "../.."

// TestInstallMakeBuild runs `make build`, README's first route, into a
// temporary BIN: the binary names our release and lists our plugins.
func TestInstallMakeBuild(t *testing.T) {
	skipShort(t)
	bin := filepath.Join(t.TempDir(), "coredns")
	runIn(t, checkout, 10*time.Minute, nil, "make", "--no-print-directory", "build", "BIN="+bin, "VERSION=v9.9.9-make")
	if out := run(t, bin, "-version"); !strings.Contains(out, "+tailhorizon-v9.9.9-make") {
		t.Errorf("coredns -version = %q; want the release v9.9.9-make in it", out)
	}
	checkPlugins(t, bin)
}

// TestInstallStatic runs README's static build line as written, with only
// the output moved: the binary is static and stripped, and -version names
// the checkout's `git describe`.
func TestInstallStatic(t *testing.T) {
	skipShort(t)
	line := readmeLine(t, "CGO_ENABLED=0 go build ")
	bin := filepath.Join(t.TempDir(), "coredns")
	cmd := strings.Replace(line, "-o bin/coredns", "-o "+bin, 1)
	if cmd == line {
		t.Fatalf("README's static build line does not write bin/coredns: %q", line)
	}
	runIn(t, checkout, 10*time.Minute, nil, "bash", "-euo", "pipefail", "-c", cmd)
	checkStaticStripped(t, bin, elf.EM_X86_64)
	want := "dev"
	if out, err := exec.Command("git", "-C", checkout, "describe", "--tags", "--always").Output(); err == nil {
		want = strings.TrimSpace(string(out))
	}
	if out := run(t, bin, "-version"); !strings.Contains(out, "+tailhorizon-"+want) {
		t.Errorf("coredns -version = %q; want tailhorizon-%s", out, want)
	}
}

// TestInstallPluginCfg is README's plugin.cfg route: stock CoreDNS v1.15.0,
// from the module cache, with our four lines in its plugin.cfg, built as
// the README says (pluginCfgBinary). It lists the plugins, runs them in the
// place the README gives, answers a real tailnet's peer and traces it on
// the status listener.
func TestInstallPluginCfg(t *testing.T) {
	skipShort(t)
	tailnettest.Require(t)
	b, err := pluginCfgBinary()
	if err != nil {
		t.Fatal(err)
	}
	checkPlugins(t, b.bin)

	t.Run("the README's plugin.cfg lines, in place", func(t *testing.T) {
		want := readmeBlock(t, "~~~ txt", "minimal:minimal")
		if !strings.Contains(b.pluginCfg, want) {
			t.Errorf("the built plugin.cfg does not have README's lines, in order:\n%s\nit has:\n%s", want, b.pluginCfg)
		}
		order := directiveOrder(b.directives)
		pos := func(d string) int { return slices.Index(order, d) }
		for _, d := range []string{"cache", "minimal", "fallback", "tailnet", "mdns", "status", "template", "hosts", "file", "forward"} {
			if pos(d) < 0 {
				t.Fatalf("directive %s missing from the built zdirectives.go: %v", d, order)
			}
		}
		for _, p := range [][2]string{{"cache", "fallback"}, {"fallback", "tailnet"}, {"tailnet", "mdns"}, {"mdns", "status"}, {"status", "template"}, {"mdns", "hosts"}, {"mdns", "file"}, {"mdns", "forward"}} {
			if pos(p[0]) > pos(p[1]) {
				t.Errorf("%s runs after %s; want it before (%v)", p[0], p[1], order)
			}
		}
	})

	tn := tailnettest.Start(t)
	device := tn.AddNode(t, "device")
	hub := tn.AddNode(t, "hub")
	api := device.ServeLocalAPI(t)
	status := net.JoinHostPort("127.0.0.1", strconv.Itoa(fixture.Port(t)))
	addr := serve(t, b.bin, nil, fmt.Sprintf(`example.org:{{port}} {
    bind 127.0.0.1
    tailnet {
        socket %s
    }
    status %s
}
`, api.Path, status))
	waitAnswer(t, addr, "hub.example.org.", hub.IPv4.String())
	if r := ask(t, addr, "nosuch.example.org.", dns.TypeA); r.Rcode != dns.RcodeNameError {
		t.Errorf("nosuch.example.org: rcode %s; want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}

	// status, from the fourth line, traces the peer over HTTP.
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + status + "/explain?name=hub.example.org")
	if err != nil {
		t.Fatalf("status /explain: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(hub.IPv4.String())) {
		t.Errorf("status /explain?name=hub.example.org: %s %v\n%s\nwant 200 and the trace naming %s", resp.Status, err, body, hub.IPv4)
	}
}

// pluginCfgBuild is stock CoreDNS built with our plugins through plugin.cfg.
type pluginCfgBuild struct {
	bin        string // the coredns binary
	pluginCfg  string // the plugin.cfg it was generated from
	directives string // the generated core/dnsserver/zdirectives.go
}

var pluginCfgOnce struct {
	sync.Mutex
	b   *pluginCfgBuild
	err error
}

// pluginCfgBinary runs README's plugin.cfg block, with /path/to/tailhorizon
// set to this checkout, in a temporary directory, once per source: the
// result is kept in bin/plugincfg/KEY, KEY a hash of the Go version, the
// block and every non-test file of the module that the plugins build from,
// so warm runs of make test skip the 1-3 minute build. Inside the tests'
// network namespace only the module cache is used (GOPROXY=off); the go
// command checked its contents when it filled it.
func pluginCfgBinary() (*pluginCfgBuild, error) {
	pluginCfgOnce.Lock()
	defer pluginCfgOnce.Unlock()
	if pluginCfgOnce.b != nil || pluginCfgOnce.err != nil {
		return pluginCfgOnce.b, pluginCfgOnce.err
	}
	b, err := buildPluginCfg()
	pluginCfgOnce.b, pluginCfgOnce.err = b, err
	return b, err
}

func buildPluginCfg() (*pluginCfgBuild, error) {
	root, err := filepath.Abs(checkout)
	if err != nil {
		return nil, err
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		return nil, err
	}
	block, ok := markdownBlock(string(readme), "~~~ sh", "plugin.cfg")
	if !ok {
		return nil, errors.New("README.md has no ~~~ sh block that edits plugin.cfg")
	}
	script := strings.ReplaceAll(block, "/path/to/tailhorizon", root)
	key, err := sourceKey(root, script)
	if err != nil {
		return nil, err
	}
	cache := filepath.Join(root, "bin", "plugincfg")
	dir := filepath.Join(cache, key)
	b := &pluginCfgBuild{bin: filepath.Join(dir, "coredns")}
	if _, err := os.Stat(b.bin); err != nil {
		if err := runPluginCfgScript(script, dir); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name string
		to   *string
	}{{"plugin.cfg", &b.pluginCfg}, {"zdirectives.go", &b.directives}} {
		data, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return nil, err
		}
		*f.to = string(data)
	}
	return b, nil
}

// runPluginCfgScript runs script in a new directory and keeps the binary,
// plugin.cfg and zdirectives.go in dir, replacing older builds.
func runPluginCfgScript(script, dir string) error {
	work, err := os.MkdirTemp("", "tailhorizon-plugincfg")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = work
	cmd.Env = os.Environ()
	if os.Getenv("TAILHORIZON_IN_NETNS") != "" {
		cmd.Env = append(cmd.Env, "GOPROXY=off", "GOSUMDB=off")
	}
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("README's plugin.cfg block: %w\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "install: stock CoreDNS with our plugins built in %v\n", time.Since(start).Round(time.Second))
	src := filepath.Join(work, "coredns")
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	for _, f := range [][2]string{{"coredns", "coredns"}, {"plugin.cfg", "plugin.cfg"}, {"core/dnsserver/zdirectives.go", "zdirectives.go"}} {
		if err := copyFile(filepath.Join(src, f[0]), filepath.Join(tmp, f[1])); err != nil {
			return err
		}
	}
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "*"))
	for _, o := range old {
		if o != tmp {
			os.RemoveAll(o)
		}
	}
	return os.Rename(tmp, dir)
}

// sourceKey hashes what the plugin.cfg build depends on.
func sourceKey(root, script string) (string, error) {
	h := sha256.New()
	v, err := exec.Command("go", "version").Output()
	if err != nil {
		return "", fmt.Errorf("go version: %w", err)
	}
	fmt.Fprintf(h, "%s\n%s\n", v, script)
	var files []string
	for _, f := range []string{"go.mod", "go.sum"} {
		files = append(files, filepath.Join(root, f))
	}
	for _, d := range []string{"plugin", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.IsDir() && !strings.HasSuffix(p, "_test.go") && !strings.HasSuffix(p, ".md") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", strings.TrimPrefix(f, root), len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// directiveOrder returns the directives of a generated zdirectives.go.
func directiveOrder(src string) []string {
	var order []string
	in := false
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "var Directives = []string{"):
			in = true
		case in && line == "}":
			return order
		case in && strings.HasPrefix(line, `"`):
			order = append(order, strings.Trim(line, `",`))
		}
	}
	return order
}

// checkPlugins checks that bin lists our four plugins.
func checkPlugins(t *testing.T, bin string) {
	t.Helper()
	fields := strings.Fields(run(t, bin, "-plugins"))
	for _, p := range []string{"fallback", "tailnet", "mdns", "status"} {
		if !slices.Contains(fields, p) && !slices.Contains(fields, "dns."+p) {
			t.Errorf("%s -plugins does not list %s", bin, p)
		}
	}
}

// checkStaticStripped checks that bin is an ELF binary for machine with no
// interpreter (static) and no symbol table (stripped).
func checkStaticStripped(t *testing.T, bin string, machine elf.Machine) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != machine {
		t.Errorf("%s is for %v; want %v", bin, f.Machine, machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: not static", bin)
		}
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s has a .symtab: not stripped", bin)
	}
}

// readmeLine returns the line of README.md that starts with prefix, trimmed.
func readmeLine(t *testing.T, prefix string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(checkout, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if l := strings.TrimSpace(line); strings.HasPrefix(l, prefix) {
			return l
		}
	}
	t.Fatalf("README.md has no line starting with %q", prefix)
	return ""
}

// readmeBlock returns README.md's first block fenced with fence that holds
// want.
func readmeBlock(t *testing.T, fence, want string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(checkout, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	b, ok := markdownBlock(string(data), fence, want)
	if !ok {
		t.Fatalf("README.md has no %s block with %q", fence, want)
	}
	return b
}

// markdownBlock returns the text of the first block opened by the line
// fence and closed by ~~~ that holds want.
func markdownBlock(md, fence, want string) (string, bool) {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(md, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == fence:
			in = true
			b.Reset()
		case in && strings.TrimSpace(line) == "~~~":
			in = false
			if strings.Contains(b.String(), want) {
				return b.String(), true
			}
		case in:
			b.WriteString(line + "\n")
		}
	}
	return "", false
}

// serve writes corefile, with {{port}} a free port, and runs bin (under
// the emulator argv, if any) on it until the test ends; it returns the
// address on 127.0.0.1.
func serve(t *testing.T, bin string, emulator []string, corefile string) string {
	t.Helper()
	port := strconv.Itoa(fixture.Port(t))
	path := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(corefile, "{{port}}", port)), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := append(slices.Clone(emulator), bin, "-conf", path)
	cmd := exec.Command(argv[0], argv[1:]...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), out.String())
		}
	})
	return net.JoinHostPort("127.0.0.1", port)
}

// waitAnswer asks addr for name's A record until it is want, for at most
// 30 s (a build under qemu starts slowly; the tailnet comes up meanwhile).
func waitAnswer(t *testing.T, addr, name, want string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		m := new(dns.Msg).SetQuestion(name, dns.TypeA)
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, addr)
		if err != nil {
			last = err.Error()
			continue
		}
		if len(r.Answer) == 1 {
			if a, ok := r.Answer[0].(*dns.A); ok && a.A.String() == want {
				return
			}
		}
		last = r.String()
	}
	t.Fatalf("%s at %s: never %s in 30s; last: %s", name, addr, want, last)
}

// ask sends one query to addr.
func ask(t *testing.T, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(new(dns.Msg).SetQuestion(name, qtype), addr)
	if err != nil {
		t.Fatalf("%s at %s: %v", name, addr, err)
	}
	return r
}

// run runs bin with args for at most a minute and returns its output.
func run(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
	return string(out)
}

// runIn runs argv in dir, with env added, for at most timeout, and returns
// its output; it fails the test if the command fails.
func runIn(t *testing.T, dir string, timeout time.Duration, env []string, argv ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
	t.Logf("%s: %v", strings.Join(argv, " "), time.Since(start).Round(time.Second))
	return string(out)
}

// skipShort skips tests that build a binary under -short.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a binary; skipped with -short")
	}
}

// copyFile copies src to dst, keeping the mode's executable bits.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// lockedBuffer is a bytes.Buffer safe for a process's output and a reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
