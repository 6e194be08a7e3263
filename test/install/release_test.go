package install

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// releaseVersion is the version the release tests stamp in.
const releaseVersion = "v9.9.9-rc.1"

// TestRelease runs `make release` for linux/arm64 only (the six targets
// take about 10 minutes on 2 cores; `make lint` cross-builds darwin and
// windows): the binary is static and stripped, SHA256SUMS checks, the
// .deb holds what docs/recipes.md says, and the binary, run under
// qemu-user, names the version and answers a real tailnet's peer.
func TestRelease(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	runIn(t, checkout, 15*time.Minute, nil, "make", "--no-print-directory", "release",
		"RELEASE_TARGETS=linux/arm64", "RELEASE_DIR="+dir, "VERSION="+releaseVersion)
	bin := filepath.Join(dir, "tailhorizon_"+releaseVersion+"_linux_arm64")
	deb := filepath.Join(dir, "tailhorizon_9.9.9+rc.1_arm64.deb")

	t.Run("SHA256SUMS", func(t *testing.T) {
		sums := checkSums(t, dir)
		slices.Sort(sums)
		if want := []string{filepath.Base(deb), filepath.Base(bin)}; !slices.Equal(sums, want) {
			t.Errorf("SHA256SUMS lists %v; want %v", sums, want)
		}
		// The README's check, as a user runs it.
		runIn(t, dir, time.Minute, nil, "sha256sum", "-c", "--ignore-missing", "SHA256SUMS")
	})
	t.Run("static and stripped", func(t *testing.T) { checkStaticStripped(t, bin, elf.EM_AARCH64) })
	t.Run("deb", func(t *testing.T) { checkDeb(t, deb, "9.9.9+rc.1", "arm64") })
	t.Run("under qemu-user", func(t *testing.T) {
		tailnettest.Require(t)
		qemu := lookQemu(t)
		if out := run(t, qemu, bin, "-version"); !strings.Contains(out, "+tailhorizon-"+releaseVersion) {
			t.Errorf("coredns -version under qemu = %q; want tailhorizon-%s", out, releaseVersion)
		}
		tn := tailnettest.Start(t)
		device := tn.AddNode(t, "device")
		hub := tn.AddNode(t, "hub")
		api := device.ServeLocalAPI(t)
		addr := serve(t, bin, []string{qemu}, fmt.Sprintf(`example.org:{{port}} {
    bind 127.0.0.1
    tailnet {
        socket %s
    }
}
`, api.Path))
		waitAnswer(t, addr, "hub.example.org.", hub.IPv4.String())
	})
}

// checkSums verifies every line of dir/SHA256SUMS and returns the names in it.
func checkSums(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q: want HASH, two spaces, NAME", line)
		}
		content, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := sha256.Sum256(content); hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: sha256 %x; SHA256SUMS says %s", name, got, sum)
		}
		names = append(names, name)
	}
	return names
}

// checkDeb checks the .deb's control fields, its files and its maintainer
// scripts, and runs lintian on it if installed.
func checkDeb(t *testing.T, deb, version, arch string) {
	t.Helper()
	dpkgDeb := lookTool(t, "dpkg-deb", "dpkg")
	for field, want := range map[string]string{"Package": "tailhorizon", "Version": version, "Architecture": arch} {
		out, err := exec.Command(dpkgDeb, "--field", deb, field).Output()
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("dpkg-deb --field %s = %q, %v; want %q", field, got, err, want)
		}
	}
	out, err := exec.Command(dpkgDeb, "--contents", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --contents: %v", err)
	}
	files := map[string]string{} // path: mode and owner
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents line %q", line)
		}
		files[strings.TrimPrefix(f[len(f)-1], ".")] = f[0] + " " + f[1]
	}
	for path, want := range map[string]string{
		"/usr/bin/tailhorizon":                                          "-rwxr-xr-x root/root",
		"/lib/systemd/system/tailhorizon.service":                       "-rw-r--r-- root/root",
		"/etc/tailhorizon/Corefile":                                     "-rw-r--r-- root/root",
		"/usr/share/doc/tailhorizon/examples/resolved-tailhorizon.conf": "-rw-r--r-- root/root",
		"/usr/share/doc/tailhorizon/copyright":                          "-rw-r--r-- root/root",
	} {
		if got := files[path]; got != want {
			t.Errorf("%s in the .deb: %q; want %q", path, got, want)
		}
	}
	for path := range files {
		if strings.HasPrefix(path, "/etc/") && path != "/etc/" && path != "/etc/tailhorizon/" && path != "/etc/tailhorizon/Corefile" {
			t.Errorf("the .deb ships %s; want nothing in /etc but /etc/tailhorizon/Corefile", path)
		}
	}

	root := t.TempDir()
	if out, err := exec.Command(dpkgDeb, "--raw-extract", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --raw-extract: %v\n%s", err, out)
	}
	same := func(inDeb, src string, edit func(string) string) {
		got, err1 := os.ReadFile(filepath.Join(root, inDeb))
		want, err2 := os.ReadFile(filepath.Join(checkout, src))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s: %v; %s: %v", inDeb, err1, src, err2)
		}
		if string(got) != edit(string(want)) {
			t.Errorf("%s in the .deb is not %s (with the binary's path):\n%s", inDeb, src, got)
		}
	}
	keep := func(s string) string { return s }
	same("lib/systemd/system/tailhorizon.service", "docs/systemd/tailhorizon.service", func(s string) string {
		return strings.ReplaceAll(s, "/usr/local/bin/coredns", "/usr/bin/tailhorizon")
	})
	same("etc/tailhorizon/Corefile", "docs/corefiles/device.Corefile", keep)
	same("usr/share/doc/tailhorizon/examples/resolved-tailhorizon.conf", "docs/systemd/resolved-tailhorizon.conf", keep)
	if c, _ := os.ReadFile(filepath.Join(root, "DEBIAN/conffiles")); strings.TrimSpace(string(c)) != "/etc/tailhorizon/Corefile" {
		t.Errorf("conffiles = %q; want /etc/tailhorizon/Corefile", c)
	}
	// The package must not take over name resolution: no script touches
	// resolv.conf or resolved, links a file, or enables or starts the unit.
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		script, err := os.ReadFile(filepath.Join(root, "DEBIAN", s))
		if err != nil {
			t.Fatal(err)
		}
		for _, code := range shellCode(string(script)) {
			for _, bad := range []string{"resolv.conf", "resolved", "ln ", "enable", "start", "/etc/"} {
				if strings.Contains(code, bad) {
					t.Errorf("%s runs %q: it must leave name resolution and the unit's state alone", s, code)
				}
			}
		}
	}

	t.Run("lintian", func(t *testing.T) {
		lintian, err := exec.LookPath("lintian")
		if err != nil {
			tailnettest.SkipOrFail(t, "lintian not installed (apt-get install lintian; .ci/run installs it)")
		}
		out, err := exec.Command(lintian, "--fail-on", "error,warning", deb).CombinedOutput()
		if err != nil {
			t.Errorf("lintian: %v\n%s", err, out)
		}
	})
}

// shellCode returns the lines of a shell script without comments.
func shellCode(script string) []string {
	var code []string
	for _, line := range strings.Split(script, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			code = append(code, l)
		}
	}
	return code
}

// lookQemu returns the qemu-user emulator for arm64, or skips (fails in CI).
func lookQemu(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"qemu-aarch64", "qemu-aarch64-static"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	tailnettest.SkipOrFail(t, "qemu-aarch64 not installed (apt-get install qemu-user; .ci/run installs it)")
	return ""
}

// lookTool returns the path of name, or skips (fails in CI) naming pkg.
func lookTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		tailnettest.SkipOrFail(t, fmt.Sprintf("%s not installed (apt-get install %s)", name, pkg))
	}
	return p
}
