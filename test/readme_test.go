package test

import (
	"bufio"
	"fmt"
	"net"
	"os"
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
	"github.com/tailhorizon/tailhorizon/cmd/coredns/bundle"
	"github.com/tailhorizon/tailhorizon/test/fixture"
)

// TestReadme starts every example Corefile of the documentation: the
// "~~~ corefile" blocks of plugin/*/README.md, README.md and docs/*.md,
// and Corefile.example. Each is bound to 127.0.0.1 with free ports (see
// localizeCorefile), started with caddy.Start and stopped. No example may
// need a tailnet or mDNS to start (STYLE 3.8): a tailnet socket that does
// not exist only makes the plugin not ready.
func TestReadme(t *testing.T) {
	useBundleDirectives(t)
	savedQuiet, savedDNSQuiet, savedPort := caddy.Quiet, dnsserver.Quiet, dnsserver.Port
	t.Cleanup(func() { caddy.Quiet, dnsserver.Quiet, dnsserver.Port = savedQuiet, savedDNSQuiet, savedPort })
	caddy.Quiet, dnsserver.Quiet = true, true

	docs := readmeFiles(t)
	n := 0
	for _, doc := range docs {
		corefiles, err := corefilesFromMarkdown(doc)
		if err != nil {
			t.Errorf("%s: %v", doc, err)
			continue
		}
		for i, body := range corefiles {
			n++
			t.Run(fmt.Sprintf("%s#%d", strings.TrimPrefix(filepath.ToSlash(doc), "../"), i+1), func(t *testing.T) {
				startCorefile(t, doc, body)
			})
		}
	}
	example := filepath.Join("..", "Corefile.example")
	if b, err := os.ReadFile(example); err == nil {
		n++
		t.Run("Corefile.example", func(t *testing.T) { startCorefile(t, example, string(b)) })
	}
	if n == 0 {
		t.Fatal("found no example Corefiles")
	}
}

// startCorefile starts body, written in file, on 127.0.0.1 with free ports,
// and stops it. A port taken between picking and binding is retried.
func startCorefile(t *testing.T, file, body string) {
	var err error
	for range 3 {
		ports := map[string]int{}
		local := localizeCorefile(body, func(orig string) string {
			p, ok := ports[orig]
			if !ok {
				p = fixture.Port(t)
				ports[orig] = p
			}
			return strconv.Itoa(p)
		})
		dnsserver.Port = strconv.Itoa(fixture.Port(t))
		var inst *caddy.Instance
		inst, err = caddy.Start(caddy.CaddyfileInput{Contents: []byte(local), Filepath: file, ServerTypeName: "dns"})
		if inst != nil {
			if err == nil {
				waitServing(t, inst)
			}
			inst.Stop()
			inst.ShutdownCallbacks()
		}
		if err == nil {
			t.Logf("started:\n%s", local)
			return
		}
		if !strings.Contains(err.Error(), "address already in use") {
			t.Errorf("start %s: %v\nas run (the line numbers above count these lines):\n%s", file, err, numbered(local))
			return
		}
	}
	t.Errorf("start %s: %v", file, err)
}

// waitServing waits, for a few seconds at most, until every DNS server of
// inst answers over UDP and TCP. caddy.Start returns before the servers
// run their loops, and a server stopped before then keeps serving.
func waitServing(t *testing.T, inst *caddy.Instance) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(".", dns.TypeSOA)
	deadline := time.Now().Add(5 * time.Second)
	for _, s := range inst.Servers() {
		for _, a := range []net.Addr{s.LocalAddr(), s.Addr()} {
			if a == nil {
				continue
			}
			c := &dns.Client{Net: a.Network(), Timeout: 200 * time.Millisecond}
			for {
				_, _, err := c.Exchange(m, a.String())
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%s %s: not serving: %v", a.Network(), a, err)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

// numbered returns text with each line numbered.
func numbered(text string) string {
	var b strings.Builder
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		fmt.Fprintf(&b, "%3d  %s\n", i+1, line)
	}
	return b.String()
}

// readmeFiles returns the Markdown files whose Corefiles TestReadme starts.
func readmeFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"../plugin/*/README.md", "../README.md", "../docs/*.md"} {
		m, err := filepath.Glob(filepath.FromSlash(pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	return files
}

// corefilesFromMarkdown returns the bodies of the "~~~ corefile" (or
// "``` corefile") blocks of a Markdown file.
func corefilesFromMarkdown(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	var (
		bodies []string
		body   strings.Builder
		fence  string // the fence of the open corefile block, "" outside one
	)
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := s.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case fence == "" && (strings.HasPrefix(trimmed, "~~~") || strings.HasPrefix(trimmed, "```")):
			if strings.TrimSpace(trimmed[3:]) == "corefile" {
				fence = trimmed[:3]
				body.Reset()
			}
		case fence != "" && trimmed == fence:
			bodies = append(bodies, body.String())
			fence = ""
		case fence != "":
			body.WriteString(line)
			body.WriteByte('\n')
		}
	}
	if fence != "" {
		return bodies, fmt.Errorf("unterminated corefile block")
	}
	return bodies, s.Err()
}

// Default listen addresses of directives that open a port of their own
// when given no address.
var defaultListen = map[string]string{"health": "8080", "ready": "8181", "prometheus": "9153"}

// A host:port address, optionally after a scheme such as dns:// or tcp://.
var listenAddr = regexp.MustCompile(`^([a-z][a-z0-9+.-]*://)?(\[[0-9A-Fa-f:.%]*\]|[^\s:\[\]"'{}]*):([0-9]{1,5})$`)

// localizeCorefile rewrites a Corefile so that it starts on loopback
// alongside anything else: every server block gets "bind 127.0.0.1" in
// place of its own bind, every port in a server block key or a
// host:port argument is replaced by port(original), wildcard hosts become
// 127.0.0.1, and health, ready and prometheus with no address get one.
// Keys with no port use dnsserver.Port, which the caller sets.
func localizeCorefile(corefile string, port func(orig string) string) string {
	var out strings.Builder
	depth, skipTo := 0, -1 // skipTo: drop lines until depth falls back to it
	for line := range strings.Lines(corefile) {
		line = strings.TrimRight(line, "\r\n")
		toks, comment := corefileTokens(line)
		indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
		opens, closes := 0, 0
		for _, tok := range toks {
			switch tok {
			case "{":
				opens++
			case "}":
				closes++
			}
		}
		if skipTo >= 0 {
			depth += opens - closes
			if depth <= skipTo {
				skipTo = -1
			}
			continue
		}
		if len(toks) == 0 {
			out.WriteString(line + "\n")
			continue
		}
		switch {
		case depth == 0 && toks[len(toks)-1] == "{" && !strings.HasPrefix(toks[0], "("):
			// Server block keys: zone[:port] with an optional scheme.
			for i, key := range toks[:len(toks)-1] {
				if j := strings.LastIndex(key, ":"); j >= 0 && isPort(key[j+1:]) {
					toks[i] = key[:j+1] + port(key[j+1:])
				}
			}
			out.WriteString(indent + strings.Join(toks, " ") + comment + "\n")
			out.WriteString(indent + "    bind 127.0.0.1\n")
			depth++
			continue
		case depth == 1 && toks[0] == "bind":
			if opens > closes {
				skipTo = depth
				depth += opens - closes
			}
			continue
		case len(toks) <= 2 && defaultListen[toks[0]] != "" && (len(toks) == 1 || toks[1] == "{"):
			toks = slices.Insert(toks, 1, "127.0.0.1:"+port(defaultListen[toks[0]]))
			out.WriteString(indent + strings.Join(toks, " ") + comment + "\n")
			depth += opens - closes
			continue
		}
		for i, tok := range toks {
			m := listenAddr.FindStringSubmatch(tok)
			if m == nil || !isPort(m[3]) {
				continue
			}
			host := m[2]
			if host == "" || host == "0.0.0.0" || host == "[::]" {
				host = "127.0.0.1"
			}
			toks[i] = m[1] + host + ":" + port(m[3])
		}
		out.WriteString(indent + strings.Join(toks, " ") + comment + "\n")
		depth += opens - closes
	}
	return out.String()
}

// isPort reports whether s is a port number.
func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536
}

// corefileTokens splits a Corefile line into its tokens, quoted tokens kept
// with their quotes, and its comment (with the space before it).
func corefileTokens(line string) (toks []string, comment string) {
	var tok strings.Builder
	inQuote, escaped := false, false
	flush := func() {
		if tok.Len() > 0 {
			toks = append(toks, tok.String())
			tok.Reset()
		}
	}
	for i, r := range line {
		switch {
		case inQuote:
			tok.WriteRune(r)
			switch {
			case escaped:
				escaped = false
			case r == '\\':
				escaped = true
			case r == '"':
				inQuote = false
			}
		case r == ' ' || r == '\t':
			flush()
		case r == '#' && tok.Len() == 0:
			flush()
			return toks, " " + line[i:]
		default:
			if r == '"' {
				inQuote = true
			}
			tok.WriteRune(r)
		}
	}
	flush()
	return toks, ""
}

// useBundleDirectives makes bundle.Directives, the binary's plugin order,
// dnsserver's directives until the test ends. TestMain installs them too;
// this keeps the test right without it.
func useBundleDirectives(t *testing.T) {
	t.Helper()
	saved := dnsserver.Directives
	t.Cleanup(func() { dnsserver.Directives = saved })
	if err := dnsserver.SetDirectives(bundle.Directives); err != nil {
		t.Fatalf("SetDirectives(%v): %v", bundle.Directives, err)
	}
}

// TestReadmeSections checks the sections of every plugin README, in the
// order of STYLE 3.8 (and CoreDNS's plugin.md).
func TestReadmeSections(t *testing.T) {
	want := []string{"Name", "Description", "Syntax", "Metrics", "Ready", "Examples", "See Also"}
	for _, dir := range pluginDirs(t) {
		name := filepath.Base(dir)
		readme := filepath.Join(dir, "README.md")
		b, err := os.ReadFile(readme)
		if err != nil {
			continue // TestPluginFiles reports it
		}
		lines := strings.Split(string(b), "\n")
		if lines[0] != "# "+name {
			t.Errorf("%s: first line %q; want %q", readme, lines[0], "# "+name)
		}
		var got []string
		for i, line := range lines {
			title, ok := strings.CutPrefix(line, "## ")
			if !ok {
				continue
			}
			title = strings.TrimSpace(title)
			if title == "Also See" {
				t.Errorf("%s: use %q, not %q", readme, "See Also", "Also See")
			}
			if title == "Name" {
				next := ""
				for _, l := range lines[i+1:] {
					if next = strings.TrimSpace(l); next != "" {
						break
					}
				}
				if !strings.HasPrefix(next, "*"+name+"* - ") {
					t.Errorf("%s: ## Name says %q; want %q", readme, next, "*"+name+"* - one line")
				}
			}
			if slices.Contains(want, title) {
				got = append(got, title)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: sections %v; want %v in this order", readme, got, want)
		}
	}
}

func TestLocalizeCorefile(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{
			name: "key port",
			in:   ".:53 {\n    whoami\n}\n",
			want: ".:153 {\n    bind 127.0.0.1\n    whoami\n}\n",
		},
		{
			name: "scheme and no port",
			in:   "dns://example.org:5300 example.net {\n    whoami\n}\n",
			want: "dns://example.org:15300 example.net {\n    bind 127.0.0.1\n    whoami\n}\n",
		},
		{
			name: "bind block replaced",
			in:   ". {\n    bind lo {\n        except 127.0.0.2\n    }\n    whoami\n}\n",
			want: ". {\n    bind 127.0.0.1\n    whoami\n}\n",
		},
		{
			name: "default listeners",
			in:   ". {\n    health {\n        lameduck 1s\n    }\n    ready\n    prometheus # metrics\n}\n",
			want: ". {\n    bind 127.0.0.1\n    health 127.0.0.1:18080 {\n        lameduck 1s\n    }\n    ready 127.0.0.1:18181\n    prometheus 127.0.0.1:19153 # metrics\n}\n",
		},
		{
			name: "addresses",
			in:   ". {\n    prometheus :9153\n    forward . [::1]:53 8.8.8.8 tls://0.0.0.0:853\n}\n",
			want: ". {\n    bind 127.0.0.1\n    prometheus 127.0.0.1:19153\n    forward . [::1]:153 8.8.8.8 tls://127.0.0.1:1853\n}\n",
		},
		{
			name: "left alone",
			in: "# a.b:53 {\n. {\n    hosts {\n        fd7a:115c:a1e0::1 host\n    }\n" +
				"    template IN A {\n        answer \"{{ .Name }} 60 IN A 192.0.2.1:53 { }\"\n    }\n}\n",
			want: "# a.b:53 {\n. {\n    bind 127.0.0.1\n    hosts {\n        fd7a:115c:a1e0::1 host\n    }\n" +
				"    template IN A {\n        answer \"{{ .Name }} 60 IN A 192.0.2.1:53 { }\"\n    }\n}\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := localizeCorefile(tc.in, func(orig string) string { return "1" + orig })
			if got != tc.want {
				t.Errorf("localizeCorefile:\n%s\ngot:\n%s\nwant:\n%s", tc.in, got, tc.want)
			}
		})
	}
}
