package install

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The recipes for macOS and Windows cannot run here: these tests check
// their files' syntax and that they agree with each other and with
// docs/corefiles/device.Corefile.

// plistValue is a parsed property-list value: string, bool, int64, []any
// or map[string]any.
type plistValue = any

// parsePlist parses an XML property list (the DTD of launchd.plist(5)).
func parsePlist(data []byte) (plistValue, error) {
	d := xml.NewDecoder(strings.NewReader(string(data)))
	var doctype bool
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("no <plist>: %w", err)
		}
		switch tok := tok.(type) {
		case xml.Directive:
			doctype = strings.Contains(string(tok), `DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN"`)
		case xml.StartElement:
			if tok.Name.Local != "plist" {
				return nil, fmt.Errorf("root element <%s>; want <plist>", tok.Name.Local)
			}
			if !doctype {
				return nil, errors.New("no plist DOCTYPE before <plist>")
			}
			v, err := plistNext(d)
			if err != nil {
				return nil, err
			}
			if _, err := plistNext(d); err != errEnd {
				return nil, fmt.Errorf("<plist> holds more than one value: %v", err)
			}
			return v, nil
		}
	}
}

var errEnd = errors.New("end of element")

// plistNext reads the next value, or errEnd at its container's end tag.
func plistNext(d *xml.Decoder) (plistValue, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.EndElement:
			return nil, errEnd
		case xml.CharData:
			if strings.TrimSpace(string(tok)) != "" {
				return nil, fmt.Errorf("text %q between values", tok)
			}
		case xml.StartElement:
			switch tok.Name.Local {
			case "string", "integer", "key":
				var s string
				if err := d.DecodeElement(&s, &tok); err != nil {
					return nil, err
				}
				if tok.Name.Local == "integer" {
					var n int64
					if _, err := fmt.Sscan(s, &n); err != nil {
						return nil, fmt.Errorf("<integer>%s</integer>: %w", s, err)
					}
					return n, nil
				}
				if tok.Name.Local == "key" {
					return plistKey(s), nil
				}
				return s, nil
			case "true", "false":
				if err := d.Skip(); err != nil {
					return nil, err
				}
				return tok.Name.Local == "true", nil
			case "array":
				var a []any
				for {
					v, err := plistNext(d)
					if err == errEnd {
						return a, nil
					}
					if err != nil {
						return nil, err
					}
					a = append(a, v)
				}
			case "dict":
				m := map[string]any{}
				for {
					k, err := plistNext(d)
					if err == errEnd {
						return m, nil
					}
					key, ok := k.(plistKey)
					if err != nil || !ok {
						return nil, fmt.Errorf("<dict>: want a <key>, got %v (%v)", k, err)
					}
					if _, dup := m[string(key)]; dup {
						return nil, fmt.Errorf("key %s twice", key)
					}
					v, err := plistNext(d)
					if err != nil {
						return nil, fmt.Errorf("key %s: no value: %v", key, err)
					}
					if _, isKey := v.(plistKey); isKey {
						return nil, fmt.Errorf("key %s: no value before the next key", key)
					}
					m[string(key)] = v
				}
			default:
				return nil, fmt.Errorf("element <%s> is not a plist value", tok.Name.Local)
			}
		}
	}
}

// plistKey is a <key> read inside a <dict>.
type plistKey string

// TestDeviceMacOSLaunchd parses the launchd plist and checks the keys
// launchd needs, with their types, and that it runs the recipe's Corefile.
func TestDeviceMacOSLaunchd(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(checkout, "packaging/macos/org.tailhorizon.coredns.plist"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := parsePlist(data)
	if err != nil {
		t.Fatalf("org.tailhorizon.coredns.plist: %v", err)
	}
	d, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("the plist holds %T; want a <dict>", v)
	}
	types := map[string]string{ // launchd.plist(5)
		"Label": "string", "ProgramArguments": "[]interface {}", "UserName": "string",
		"RunAtLoad": "bool", "KeepAlive": "bool", "ThrottleInterval": "int64", "StandardErrorPath": "string",
	}
	for k, val := range d {
		want, known := types[k]
		if !known {
			t.Errorf("key %s: not one this test knows from launchd.plist(5)", k)
		} else if got := fmt.Sprintf("%T", val); got != want {
			t.Errorf("key %s is a %s; want %s", k, got, want)
		}
	}
	if d["Label"] != "org.tailhorizon.coredns" {
		t.Errorf("Label = %v; want the file's name, org.tailhorizon.coredns", d["Label"])
	}
	args, _ := d["ProgramArguments"].([]any)
	want := []any{"/usr/local/bin/coredns", "-conf", "/usr/local/etc/tailhorizon/Corefile"}
	if !slices.Equal(args, want) {
		t.Errorf("ProgramArguments = %v; want %v", args, want)
	}
	if d["RunAtLoad"] != true || d["KeepAlive"] != true {
		t.Errorf("RunAtLoad %v, KeepAlive %v; want both true", d["RunAtLoad"], d["KeepAlive"])
	}
}

// TestDeviceMacOSResolver parses /etc/resolver/ZONE (resolver(5)): the
// file's name is the Corefile's zone, and it points at the Corefile's
// address and port.
func TestDeviceMacOSResolver(t *testing.T) {
	zone, host, port := corefileServer(t, "packaging/macos/Corefile")
	path := filepath.Join(checkout, "packaging/macos", zone)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no resolver file named for the zone %s: %v", zone, err)
	}
	got := map[string][]string{}
	for i, line := range strings.Split(string(data), "\n") {
		if l := strings.TrimSpace(line); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(line)
		switch f[0] {
		case "nameserver", "port", "domain", "search", "search_order", "timeout", "options", "sortlist":
		default:
			t.Errorf("%s:%d: %q is not a resolver(5) keyword", path, i+1, f[0])
		}
		if len(f) != 2 {
			t.Errorf("%s:%d: %q: want one keyword and one value", path, i+1, line)
		}
		got[f[0]] = append(got[f[0]], f[1:]...)
	}
	if !slices.Equal(got["nameserver"], []string{host}) || !slices.Equal(got["port"], []string{port}) {
		t.Errorf("%s: nameserver %v port %v; want %s and %s, the Corefile's", path, got["nameserver"], got["port"], host, port)
	}
	checkCorefileVariant(t, "packaging/macos/Corefile", func(s string) string {
		return strings.ReplaceAll(s, "socket /var/run/tailscale/tailscaled.sock", "socket /var/run/tailscaled.socket")
	})
}

// TestDeviceWindows checks install.ps1's structure (quotes and brackets
// balance; param first; every cmdlet and parameter it uses exists with that
// name) and that its NRPT rule sends the Corefile's zone to the Corefile's
// address, on port 53, as NRPT has no port.
func TestDeviceWindows(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(checkout, "packaging/windows/install.ps1"))
	if err != nil {
		t.Fatal(err)
	}
	code, err := psCode(string(data))
	if err != nil {
		t.Fatalf("install.ps1: %v", err)
	}
	if !strings.HasPrefix(strings.TrimSpace(code), "param(") {
		t.Errorf("install.ps1: the first statement is not param(...)")
	}
	// The cmdlets used and their parameters, as Microsoft documents them.
	params := map[string][]string{
		"Add-DnsClientNrptRule":    {"Namespace", "NameServers", "Comment"},
		"Get-DnsClientNrptRule":    {},
		"Remove-DnsClientNrptRule": {"Force"},
		"Clear-DnsClientCache":     {},
		"New-Service":              {"Name", "DisplayName", "Description", "StartupType", "BinaryPathName"},
		"Get-Service":              {"Name", "ErrorAction"},
		"Start-Service":            {"Name"},
		"Stop-Service":             {"Name", "Force"},
		"New-Item":                 {"ItemType", "Force", "Path"},
		"Copy-Item":                {"Path", "Destination", "Force"},
		"Test-Path":                {"Path"},
		"Join-Path":                {},
		"Where-Object":             {},
		"Out-Null":                 {},
	}
	cmdlet := regexp.MustCompile(`\b[A-Z][a-z]+-[A-Z][A-Za-z]+\b`)
	param := regexp.MustCompile(`\s-([A-Za-z]+)\b`)
	literal := regexp.MustCompile("\"(?:[^\"`]|`.)*\"|'(?:[^']|'')*'")
	stmts := strings.Split(strings.ReplaceAll(code, "`\n", " "), "\n")
	var rule string
	for _, st := range stmts {
		for _, part := range strings.Split(st, "|") {
			names := cmdlet.FindAllString(part, -1)
			if len(names) == 0 {
				continue
			}
			allowed, ok := params[names[0]]
			if !ok {
				t.Errorf("install.ps1 uses %s, which this test does not know", names[0])
				continue
			}
			for _, p := range param.FindAllStringSubmatch(literal.ReplaceAllString(part, "''"), -1) {
				if !slices.Contains(allowed, p[1]) && p[1] != "eq" && p[1] != "not" { // operators
					t.Errorf("install.ps1: %s has no parameter -%s", names[0], p[1])
				}
			}
			if names[0] == "Add-DnsClientNrptRule" {
				rule = part
			}
		}
	}
	zone, host, port := corefileServer(t, "packaging/windows/Corefile")
	if !strings.Contains(code, fmt.Sprintf(`[string]$Zone = '%s'`, zone)) {
		t.Errorf("install.ps1: the default zone is not the Corefile's %s", zone)
	}
	if !strings.Contains(rule, `-Namespace ".$Zone"`) || !strings.Contains(rule, fmt.Sprintf(`-NameServers '%s'`, host)) {
		t.Errorf("install.ps1: the NRPT rule %q does not send .ZONE to %s", rule, host)
	}
	if port != "53" {
		t.Errorf("packaging/windows/Corefile serves port %s; an NRPT rule reaches only port 53", port)
	}
	if !strings.Contains(code, "-windows-service") {
		t.Errorf("install.ps1: the service does not run coredns with -windows-service")
	}
	checkCorefileVariant(t, "packaging/windows/Corefile", func(s string) string {
		s = strings.Replace(s, "example.org:5300 {", "example.org:53 {", 1)
		return strings.Replace(s, "        socket /var/run/tailscale/tailscaled.sock\n", "", 1)
	})
}

// psCode returns a PowerShell script without its comments, and an error if
// a string or bracket is left open or closed twice.
func psCode(src string) (string, error) {
	var b strings.Builder
	var stack []rune
	closer := map[rune]rune{'(': ')', '{': '}', '[': ']'}
	line := 1
	r := []rune(src)
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case c == '\n':
			line++
			b.WriteRune(c)
		case c == '#':
			for i < len(r) && r[i] != '\n' {
				i++
			}
			i--
		case c == '\'' || c == '"':
			start := line
			b.WriteRune(c)
			for i++; ; i++ {
				if i >= len(r) {
					return "", fmt.Errorf("line %d: string not closed", start)
				}
				b.WriteRune(r[i])
				if r[i] == '\n' {
					line++
				}
				if c == '"' && r[i] == '`' && i+1 < len(r) {
					i++
					b.WriteRune(r[i])
					continue
				}
				if r[i] == c {
					if i+1 < len(r) && r[i+1] == c { // '' or "" inside
						i++
						b.WriteRune(r[i])
						continue
					}
					break
				}
			}
		case closer[c] != 0:
			stack = append(stack, closer[c])
			b.WriteRune(c)
		case c == ')' || c == '}' || c == ']':
			if len(stack) == 0 || stack[len(stack)-1] != c {
				return "", fmt.Errorf("line %d: %q closes nothing open", line, c)
			}
			stack = stack[:len(stack)-1]
			b.WriteRune(c)
		default:
			b.WriteRune(c)
		}
	}
	if len(stack) > 0 {
		return "", fmt.Errorf("%d brackets not closed", len(stack))
	}
	return b.String(), nil
}

// corefileServer returns the zone, bind address and port of the first
// server block of the Corefile at path.
func corefileServer(t *testing.T, path string) (zone, host, port string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(checkout, path))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[1] == "{" && zone == "":
			zone, port, _ = strings.Cut(f[0], ":")
		case len(f) == 2 && f[0] == "bind" && host == "":
			host = f[1]
		}
	}
	if zone == "" || port == "" || host == "" {
		t.Fatalf("%s: no ZONE:PORT block with a bind", path)
	}
	return zone, host, port
}

// checkCorefileVariant checks that the Corefile at path is the device
// Corefile, below its own header comment, with edit applied.
func checkCorefileVariant(t *testing.T, path string, edit func(string) string) {
	t.Helper()
	body := func(p string) string {
		f, err := os.Open(filepath.Join(checkout, p))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		data, _ := io.ReadAll(f)
		lines := strings.Split(string(data), "\n")
		for len(lines) > 0 && strings.HasPrefix(lines[0], "#") {
			lines = lines[1:]
		}
		return strings.Join(lines, "\n")
	}
	if got, want := body(path), edit(body("docs/corefiles/device.Corefile")); got != want {
		t.Errorf("%s is not docs/corefiles/device.Corefile with the platform's edits:\n%s", path, got)
	}
}

// TestDevicePathsInDocs checks that every packaging/ file README.md and
// docs/recipes.md name exists.
func TestDevicePathsInDocs(t *testing.T) {
	path := regexp.MustCompile(`packaging/[A-Za-z0-9_./-]*[A-Za-z0-9_]`)
	for _, doc := range []string{"README.md", "docs/recipes.md"} {
		data, err := os.ReadFile(filepath.Join(checkout, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range path.FindAllString(string(data), -1) {
			if _, err := os.Stat(filepath.Join(checkout, p)); err != nil {
				t.Errorf("%s names %s: %v", doc, p, err)
			}
		}
	}
}
