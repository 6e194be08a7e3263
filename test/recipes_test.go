package test

// These tests check the recipes of docs/recipes.md: the systemd unit and
// the systemd-resolved drop-in in docs/systemd, every Corefile in
// docs/corefiles, and the NixOS module in docs/nixos. What needs a tool
// (systemd-analyze, nix-instantiate) is skipped, and says so, where the
// tool is missing.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// The shipped recipe files, relative to test/.
var (
	unitFile       = filepath.Join("..", "docs", "systemd", "tailhorizon.service")
	resolvedFile   = filepath.Join("..", "docs", "systemd", "resolved-tailhorizon.conf")
	nixModuleFile  = filepath.Join("..", "docs", "nixos", "tailhorizon.nix")
	nixPackageFile = filepath.Join("..", "docs", "nixos", "package.nix")
	// unitCorefile is the Corefile the unit runs, as /etc/tailhorizon/Corefile.
	unitCorefile = filepath.Join("..", "docs", "corefiles", "device.Corefile")
)

// iniEntry is one key=value line of a systemd INI file.
type iniEntry struct {
	line                int
	section, key, value string
}

// parseINI reads a file in systemd's INI syntax (systemd.syntax(7)):
// [Section] headers, Key=Value lines, comments starting with # or ;, and
// lines continued with a trailing backslash.
func parseINI(path string) ([]iniEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		entries []iniEntry
		section string
		pending string // a line continued with a backslash
		start   int    // the line pending starts on
	)
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimSpace(s.Text())
		if pending == "" && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if pending != "" && line != "" && (line[0] == '#' || line[0] == ';') {
			continue // comments inside a continued value are dropped
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			if pending == "" {
				start = n
			}
			pending += cont + " "
			continue
		}
		if pending != "" {
			line, pending = pending+line, ""
		} else {
			start = n
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") {
				return nil, fmt.Errorf("%s:%d: bad section header %q", path, n, line)
			}
			section = line[1 : len(line)-1]
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: no '=' in %q", path, start, line)
		}
		if section == "" {
			return nil, fmt.Errorf("%s:%d: %q is outside a section", path, start, line)
		}
		entries = append(entries, iniEntry{start, section, strings.TrimSpace(key), strings.TrimSpace(value)})
	}
	if pending != "" {
		return nil, fmt.Errorf("%s: ends in a continued line", path)
	}
	return entries, s.Err()
}

// iniValues returns the values of section's key, in file order, and the
// words of each value split on white space.
func iniValues(entries []iniEntry, section, key string) (values, words []string) {
	for _, e := range entries {
		if e.section == section && e.key == key {
			values = append(values, e.value)
			words = append(words, strings.Fields(e.value)...)
		}
	}
	return values, words
}

// corefilePorts returns the ports of the server blocks of a Corefile, and
// the addresses of its bind lines.
func corefilePorts(t *testing.T, path string) (ports []int, binds []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key := regexp.MustCompile(`^\S*:(\d+)$`)
	depth := 0
	for line := range strings.Lines(string(b)) {
		toks, _ := corefileTokens(strings.TrimSpace(line))
		if len(toks) == 0 {
			continue
		}
		if depth == 0 && toks[len(toks)-1] == "{" {
			for _, k := range toks[:len(toks)-1] {
				port := 53
				if m := key.FindStringSubmatch(k); m != nil {
					port, _ = strconv.Atoi(m[1])
				}
				ports = append(ports, port)
			}
		}
		if depth == 1 && toks[0] == "bind" {
			binds = append(binds, toks[1:]...)
		}
		depth += braceDelta(toks)
	}
	return ports, binds
}

// braceDelta returns how many blocks a Corefile line opens, less how many
// it closes.
func braceDelta(toks []string) int {
	d := 0
	for _, tok := range toks {
		switch tok {
		case "{":
			d++
		case "}":
			d--
		}
	}
	return d
}

// TestRecipeSystemdUnit checks docs/systemd/tailhorizon.service: it starts
// after tailscaled without being bound to it, restarts on failure, runs
// the binary on /etc/tailhorizon/Corefile as a dynamic user, has the
// capability to bind a port below 1024 exactly when its Corefile needs
// one, and lets the plugins reach tailscaled's socket and list the
// interfaces. Then systemd-analyze verifies it and rates its hardening.
func TestRecipeSystemdUnit(t *testing.T) {
	entries, err := parseINI(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	one := func(section, key string) string {
		values, _ := iniValues(entries, section, key)
		if len(values) != 1 {
			t.Errorf("[%s] %s: %d values %q; want one", section, key, len(values), values)
			return ""
		}
		return values[0]
	}

	t.Run("tailscaled", func(t *testing.T) {
		for _, key := range []string{"Wants", "After"} {
			if _, words := iniValues(entries, "Unit", key); !slices.Contains(words, "tailscaled.service") {
				t.Errorf("[Unit] %s=%q; want tailscaled.service in it", key, words)
			}
		}
		// Any of these would stop or restart tailhorizon with tailscaled.
		for _, key := range []string{"Requires", "Requisite", "BindsTo", "PartOf", "Upholds"} {
			if _, words := iniValues(entries, "Unit", key); slices.Contains(words, "tailscaled.service") {
				t.Errorf("[Unit] %s=tailscaled.service; tailhorizon must survive a tailscaled restart (use Wants=)", key)
			}
		}
	})

	t.Run("service", func(t *testing.T) {
		if got := one("Service", "Restart"); got != "on-failure" {
			t.Errorf("Restart=%s; want on-failure", got)
		}
		if got, want := strings.Fields(one("Service", "ExecStart")), []string{"/usr/local/bin/coredns", "-conf", "/etc/tailhorizon/Corefile"}; !slices.Equal(got, want) {
			t.Errorf("ExecStart=%q; want %q", got, want)
		}
		if got := one("Service", "ExecReload"); !strings.Contains(got, "-USR1 $MAINPID") {
			t.Errorf("ExecReload=%s; want a SIGUSR1 to $MAINPID (CoreDNS's reload)", got)
		}
		if got := one("Service", "DynamicUser"); got != "yes" {
			t.Errorf("DynamicUser=%s; want yes", got)
		}
		if got := one("Service", "ConfigurationDirectory"); got != "tailhorizon" {
			t.Errorf("ConfigurationDirectory=%s; want tailhorizon (/etc/tailhorizon)", got)
		}
		_, families := iniValues(entries, "Service", "RestrictAddressFamilies")
		for _, want := range []string{"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"} {
			if !slices.Contains(families, want) {
				t.Errorf("RestrictAddressFamilies=%q; want %s (tailscaled's socket, DNS, interface lists)", families, want)
			}
		}
		if values, _ := iniValues(entries, "Service", "PrivateNetwork"); slices.Contains(values, "yes") {
			t.Error("PrivateNetwork=yes: the server must see the host's network")
		}
		for _, key := range []string{"InaccessiblePaths", "TemporaryFileSystem"} {
			values, _ := iniValues(entries, "Service", key)
			for _, v := range values {
				if strings.Contains(v, "/run") {
					t.Errorf("%s=%s hides tailscaled's socket in /run/tailscale", key, v)
				}
			}
		}
	})

	t.Run("privileged port", func(t *testing.T) {
		ports, _ := corefilePorts(t, unitCorefile)
		privileged := slices.ContainsFunc(ports, func(p int) bool { return p < 1024 })
		_, ambient := iniValues(entries, "Service", "AmbientCapabilities")
		has := slices.Contains(ambient, "CAP_NET_BIND_SERVICE")
		if has != privileged {
			t.Errorf("%s serves ports %v, and AmbientCapabilities=CAP_NET_BIND_SERVICE is set: %v; want it set only for a port below 1024",
				unitCorefile, ports, has)
		}
		if _, bounding := iniValues(entries, "Service", "CapabilityBoundingSet"); !slices.Contains(bounding, "CAP_NET_BIND_SERVICE") {
			t.Errorf("CapabilityBoundingSet=%q; want CAP_NET_BIND_SERVICE, so that AmbientCapabilities can be turned on", bounding)
		}
	})

	t.Run("install", func(t *testing.T) {
		if got := one("Install", "WantedBy"); got != "multi-user.target" {
			t.Errorf("WantedBy=%s; want multi-user.target", got)
		}
	})

	t.Run("systemd-analyze", func(t *testing.T) {
		analyze := lookTool(t, "systemd-analyze", "systemd")
		// verify checks that ExecStart is executable: point it at a stand-in.
		dir := t.TempDir()
		bin := filepath.Join(dir, "coredns")
		if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(unitFile)
		if err != nil {
			t.Fatal(err)
		}
		unit := filepath.Join(dir, "tailhorizon.service")
		if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/coredns", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		// verify exits 0 on unknown keys and bad values, and only warns.
		cmd := exec.Command(analyze, "verify", unit)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
		// Exposure 0.0 (locked down) to 10.0 (unsafe); 2.0 is "OK".
		cmd = exec.Command(analyze, "security", "--offline=true", "--threshold=20", "--no-pager", unit)
		cmd.Dir = dir
		out, err = cmd.CombinedOutput()
		if err != nil {
			exposure := regexp.MustCompile(`Overall exposure level.*`).Find(out)
			t.Errorf("systemd-analyze security: %v; want an exposure level of at most 2.0: %s", err, exposure)
		}
	})
}

// lookTool returns the path of a command, or skips the test, naming the
// Debian package that has it.
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s is not installed (Debian package %s); skipping what needs it", name, pkg)
	}
	return path
}

// resolvedKeys are the options of resolved.conf's [Resolve] section
// (resolved.conf(5), systemd 252 to 256).
var resolvedKeys = []string{"DNS", "FallbackDNS", "Domains", "LLMNR", "MulticastDNS", "DNSSEC", "DNSOverTLS",
	"Cache", "CacheFromLocalhost", "DNSStubListener", "DNSStubListenerExtra", "ReadEtcHosts",
	"ResolveUnicastSingleLabel", "StaleRetentionSec"}

// TestRecipeResolvedDropIn checks docs/systemd/resolved-tailhorizon.conf:
// only [Resolve] options that resolved knows, DNS is the address and port
// the unit's Corefile serves, and Domains routes exactly its zone there
// (a "~" routing-only domain, not a search domain).
func TestRecipeResolvedDropIn(t *testing.T) {
	entries, err := parseINI(resolvedFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.section != "Resolve" {
			t.Errorf("%s:%d: section [%s]; resolved.conf has only [Resolve]", resolvedFile, e.line, e.section)
		}
		if !slices.Contains(resolvedKeys, e.key) {
			t.Errorf("%s:%d: unknown option %s", resolvedFile, e.line, e.key)
		}
	}

	_, servers := iniValues(entries, "Resolve", "DNS")
	ports, binds := corefilePorts(t, unitCorefile)
	if len(servers) != 1 || len(ports) != 1 || len(binds) != 1 {
		t.Fatalf("DNS=%q, and %s serves ports %v on %v; want one of each", servers, unitCorefile, ports, binds)
	}
	ap, err := netip.ParseAddrPort(servers[0])
	if err != nil {
		t.Fatalf("DNS=%s: %v; want ADDRESS:PORT", servers[0], err)
	}
	if want := netip.AddrPortFrom(netip.MustParseAddr(binds[0]), uint16(ports[0])); ap != want {
		t.Errorf("DNS=%s; want %s, where %s serves", ap, want, unitCorefile)
	}

	_, domains := iniValues(entries, "Resolve", "Domains")
	zones := corefileZones(t, unitCorefile)
	var want []string
	for _, z := range zones {
		want = append(want, "~"+strings.TrimSuffix(z, "."))
	}
	if !slices.Equal(domains, want) {
		t.Errorf("Domains=%q; want %q, the zones of %s as routing-only domains", domains, want, unitCorefile)
	}
}

// TestRecipeResolvedNTA checks docs/systemd/tailhorizon.negative, the
// negative trust anchors for a resolved that validates DNSSEC: one domain
// name a line, comments only with ";" (resolved reads a "#" line as a
// name, and warns), and every zone the drop-in routes to tailhorizon.
// TestRecipeResolvedDNSSEC runs it.
func TestRecipeResolvedNTA(t *testing.T) {
	b, err := os.ReadFile(ntaFile)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		if _, ok := dns.IsDomainName(line); !ok || strings.ContainsAny(line, " \t#") {
			t.Errorf("%s:%d: %q is not a domain name", ntaFile, i+1, line)
		}
		names = append(names, strings.TrimSuffix(line, "."))
	}
	entries, err := parseINI(resolvedFile)
	if err != nil {
		t.Fatal(err)
	}
	_, domains := iniValues(entries, "Resolve", "Domains")
	for _, d := range domains {
		if zone := strings.TrimPrefix(d, "~"); !slices.Contains(names, zone) {
			t.Errorf("%s lacks %s, which %s routes to tailhorizon", ntaFile, zone, resolvedFile)
		}
	}
}

// corefileZones returns the zones of the server blocks of a Corefile,
// without scheme or port, once each.
func corefileZones(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var zones []string
	depth := 0
	for line := range strings.Lines(string(b)) {
		toks, _ := corefileTokens(strings.TrimSpace(line))
		if depth == 0 && len(toks) > 0 && toks[len(toks)-1] == "{" {
			for _, k := range toks[:len(toks)-1] {
				if i := strings.Index(k, "://"); i >= 0 {
					k = k[i+3:]
				}
				if i := strings.LastIndex(k, ":"); i >= 0 {
					k = k[:i]
				}
				if !slices.Contains(zones, k) {
					zones = append(zones, k)
				}
			}
		}
		depth += braceDelta(toks)
	}
	return zones
}

// embeddedNode matches a Corefile that runs an embedded tailnet node.
var embeddedNode = regexp.MustCompile(`(?m)^\s*node\s+\S+`)

// TestRecipeCorefiles starts every Corefile in docs/corefiles on loopback
// with free ports, as TestReadme starts the documentation's examples. The
// ones that run an embedded tailnet node would dial their control server:
// TestRecipeNode starts those against the test tailnet instead.
func TestRecipeCorefiles(t *testing.T) {
	useBundleDirectives(t)
	savedQuiet, savedDNSQuiet, savedPort := caddy.Quiet, dnsserver.Quiet, dnsserver.Port
	t.Cleanup(func() { caddy.Quiet, dnsserver.Quiet, dnsserver.Port = savedQuiet, savedDNSQuiet, savedPort })
	caddy.Quiet, dnsserver.Quiet = true, true

	files, err := filepath.Glob(filepath.Join("..", "docs", "corefiles", "*.Corefile"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Corefiles in docs/corefiles: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if embeddedNode.Match(b) {
				if filepath.Base(file) != "node.Corefile" {
					t.Errorf("%s runs an embedded node: start it against the test tailnet as TestRecipeNode does", file)
				}
				return
			}
			startCorefile(t, file, string(b))
		})
	}
}

// TestRecipeContainer runs docs/corefiles/container.Corefile as in the
// container recipe, with tailscaled's socket mounted at
// /run/tailscale/tailscaled.sock (here: the test tailnet's LocalAPI), and
// reads its readiness and metrics endpoints.
func TestRecipeContainer(t *testing.T) {
	tn := tailnettest.Start(t)
	hub := tn.AddNode(t, "hub")
	api := hub.ServeLocalAPI(t)
	srv := deployment(t, "container.Corefile", api.Path, startAuthority(t))
	hubIP := hub.IPv4.String()

	n := 0
	waitFor(t, 20*time.Second, "the tailnet is loaded", func() *dns.Msg {
		n++
		return exchange(t, srv, "w"+strconv.Itoa(n)+".hub.example.org", dns.TypeA)
	}, func(r *dns.Msg) bool { return answerData(r) == hubIP })
	for _, c := range []struct {
		name, qname, want string
	}{
		{"tailnet name", "grafana.hub.example.org", hubIP},
		{"alias", "registry.example.org", hubIP},
		{"unknown name goes public", "blog.example.org", vpsIPv4},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r := exchange(t, srv, c.qname, dns.TypeA); answerData(r) != c.want {
				t.Errorf("%s: got %s %q; want %q", c.qname, dns.RcodeToString[r.Rcode], answerData(r), c.want)
			}
		})
	}

	get := func(url string) (int, string) {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		return resp.StatusCode, string(b)
	}
	if code, body := get("http://127.0.0.1:8181/ready"); code != http.StatusOK {
		t.Errorf("GET /ready: %d %s; want 200 once the tailnet is loaded", code, body)
	}
	_, metrics := get("http://127.0.0.1:9153/metrics")
	for _, want := range []string{`coredns_tailnet_requests_total{result="answer"`, "coredns_fallback_requests_total{", "coredns_tailnet_peers{"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %s", want)
		}
	}
}

// TestRecipeNode runs docs/corefiles/node.Corefile, the embedded node of
// the container recipe, against the test tailnet's control server instead
// of headscale: the node joins, answers its own name and the alias.
func TestRecipeNode(t *testing.T) {
	tn := tailnettest.Start(t)
	hub := tn.AddNode(t, "hub")
	if u := tn.Control.BaseURL(); !strings.HasPrefix(u, "http://127.0.0.1:") && !strings.HasPrefix(u, "http://localhost:") {
		t.Fatalf("control server at %s; the test may only reach loopback", u)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "authkey")
	if err := os.WriteFile(keyFile, []byte("tskey-unused-by-testcontrol\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := deployment(t, "node.Corefile", "", startAuthority(t),
		"https://headscale.example.net", tn.Control.BaseURL(),
		"/var/lib/tailhorizon", filepath.Join(dir, "state"),
		"/run/secrets/ts-authkey", keyFile,
	)

	// A new name each time: the public answer to a name asked before the
	// node is up may be cached.
	tailnetRange := netip.MustParsePrefix("100.64.0.0/10")
	var self netip.Addr
	n := 0
	waitFor(t, 30*time.Second, "the embedded node is up", func() *dns.Msg {
		n++
		r := exchange(t, srv, "w"+strconv.Itoa(n)+".dns.example.org", dns.TypeA)
		if len(r.Answer) == 1 {
			if a, ok := r.Answer[0].(*dns.A); ok {
				self, _ = netip.AddrFromSlice(a.A.To4())
			}
		}
		return r
	}, func(*dns.Msg) bool { return tailnetRange.Contains(self) })
	if r := exchange(t, srv, "registry.example.org", dns.TypeA); answerData(r) != hub.IPv4.String() {
		t.Errorf("registry.example.org: got %s %q; want %s (alias registry hub)", dns.RcodeToString[r.Rcode], answerData(r), hub.IPv4)
	}
}

// nixStubs stands in for nixpkgs' lib and pkgs, with just what the module
// uses, so that nix-instantiate can evaluate the module without nixpkgs.
const nixStubs = `
let
  lib = {
    mkEnableOption = d: { _type = "option"; description = d; };
    mkOption = o: o // { _type = "option"; };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    optional = c: x: if c then [ x ] else [ ];
    literalExpression = text: { _type = "literalExpression"; inherit text; };
    types = { package = "package"; lines = "lines"; path = "path"; bool = "bool"; };
  };
  pkgs = {
    writeText = name: text: "/nix/store/0-${name}";
    coreutils = "/nix/store/0-coreutils";
  };
  module = import MODULE;
  eval = cfg: module { inherit lib pkgs; config.services.tailhorizon = cfg; };
  on = privileged: eval {
    enable = true;
    package = "/nix/store/0-tailhorizon";
    configFile = "/nix/store/0-Corefile";
    corefile = "";
    bindPrivilegedPorts = privileged;
  };
in {
  options = builtins.attrNames (eval { }).options.services.tailhorizon;
  defaultConfigFile = (eval { corefile = ""; }).options.services.tailhorizon.configFile.default;
  condition = (on false).config.condition;
  service = (on false).config.content.systemd.services.tailhorizon;
  privileged = (on true).config.content.systemd.services.tailhorizon.serviceConfig.AmbientCapabilities;
}
`

// TestRecipeNixOS checks docs/nixos: both files parse, and the module,
// evaluated with stand-ins for lib and pkgs (there is no nixpkgs here),
// has the documented options and a service that matches the shipped
// systemd unit: after tailscaled without being bound to it, the same
// hardening, and CAP_NET_BIND_SERVICE only when asked for.
func TestRecipeNixOS(t *testing.T) {
	nix := lookTool(t, "nix-instantiate", "nix-bin")
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(nix, append([]string{"--store", "dummy://"}, args...)...)
		cmd.Env = append(os.Environ(), "NIX_REMOTE=", "NIX_CONFIG=build-users-group =")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("nix-instantiate %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return out
	}
	for _, f := range []string{nixModuleFile, nixPackageFile} {
		run("--parse", f)
	}

	abs, err := filepath.Abs(nixModuleFile)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Options           []string
		DefaultConfigFile string
		Condition         bool
		Privileged        []string
		Service           struct {
			After, Wants, Requires, BindsTo, PartOf, WantedBy []string
			ServiceConfig                                     map[string]any
		}
	}
	out := run("--eval", "--strict", "--json", "--expr", strings.Replace(nixStubs, "MODULE", abs, 1))
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}

	for _, want := range []string{"enable", "package", "corefile", "configFile"} {
		if !slices.Contains(got.Options, want) {
			t.Errorf("services.tailhorizon.%s: no such option (have %q)", want, got.Options)
		}
	}
	if got.DefaultConfigFile != "/nix/store/0-Corefile" {
		t.Errorf("configFile defaults to %q; want the corefile option written to the store", got.DefaultConfigFile)
	}
	if !got.Condition {
		t.Error("config is not conditional on enable")
	}
	s := got.Service
	if !slices.Contains(s.After, "tailscaled.service") || !slices.Contains(s.Wants, "tailscaled.service") {
		t.Errorf("after=%q wants=%q; want tailscaled.service in both", s.After, s.Wants)
	}
	if len(s.Requires)+len(s.BindsTo)+len(s.PartOf) > 0 {
		t.Errorf("requires=%q bindsTo=%q partOf=%q; tailhorizon must survive a tailscaled restart", s.Requires, s.BindsTo, s.PartOf)
	}
	if !slices.Equal(s.WantedBy, []string{"multi-user.target"}) {
		t.Errorf("wantedBy=%q; want multi-user.target", s.WantedBy)
	}
	if got, want := s.ServiceConfig["ExecStart"], "/nix/store/0-tailhorizon/bin/coredns -conf /nix/store/0-Corefile"; got != want {
		t.Errorf("ExecStart=%v; want %s", got, want)
	}
	if !slices.Equal(got.Privileged, []string{"CAP_NET_BIND_SERVICE"}) {
		t.Errorf("with bindPrivilegedPorts, AmbientCapabilities=%q; want CAP_NET_BIND_SERVICE", got.Privileged)
	}
	if ambient, _ := s.ServiceConfig["AmbientCapabilities"].([]any); len(ambient) != 0 {
		t.Errorf("without bindPrivilegedPorts, AmbientCapabilities=%v; want none", ambient)
	}

	// Every other [Service] setting of the shipped unit, with the same value.
	entries, err := parseINI(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	nixOnly := map[string]bool{"ExecStart": true, "ExecReload": true, "AmbientCapabilities": true}
	unitOnly := map[string]bool{"ExecStart": true, "ExecReload": true, // store paths in the module
		"ConfigurationDirectory": true, "ConfigurationDirectoryMode": true} // the Corefile is in the store
	seen := map[string]bool{}
	for _, e := range entries {
		if e.section != "Service" || unitOnly[e.key] {
			continue
		}
		seen[e.key] = true
		v, ok := s.ServiceConfig[e.key]
		if !ok {
			t.Errorf("serviceConfig has no %s (the unit has %s=%s)", e.key, e.key, e.value)
			continue
		}
		if nv := systemdValue(v); nv != e.value {
			t.Errorf("serviceConfig.%s = %s; the unit has %s", e.key, nv, e.value)
		}
	}
	for k := range s.ServiceConfig {
		if !seen[k] && !nixOnly[k] {
			t.Errorf("serviceConfig.%s is not in %s", k, unitFile)
		}
	}
}

// systemdValue writes a NixOS serviceConfig value as it appears in a unit.
func systemdValue(v any) string {
	switch v := v.(type) {
	case bool:
		if v {
			return "yes"
		}
		return "no"
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case []any:
		var s []string
		for _, e := range v {
			s = append(s, systemdValue(e))
		}
		return strings.Join(s, " ")
	default:
		return fmt.Sprint(v)
	}
}
