package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// resolvedBinary finds systemd-resolved: $TAILHORIZON_SYSTEMD_RESOLVED,
// the copy .ci/run unpacks into bin/ (installing the package would take
// over the machine's /etc/resolv.conf), or an installed one.
func resolvedBinary() string {
	for _, p := range []string{
		os.Getenv("TAILHORIZON_SYSTEMD_RESOLVED"),
		filepath.Join("..", "bin", "systemd-resolved", "lib", "systemd", "systemd-resolved"),
		"/lib/systemd/systemd-resolved",
		"/usr/lib/systemd/systemd-resolved",
	} {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			abs, _ := filepath.Abs(p)
			return abs
		}
	}
	return ""
}

// resolvedScript runs systemd-resolved in a mount namespace of its own, so
// that the recipe's drop-in, and the user it drops privileges to, exist
// only for it: $1 is the binary, $2 a scratch directory, $3 the drop-in.
const resolvedScript = `set -e
mkdir -p "$2/etc-systemd/resolved.conf.d"
cp "$3" "$2/etc-systemd/resolved.conf.d/"
cp /etc/passwd "$2/passwd"; echo 'systemd-resolve:x:990:990::/:/usr/sbin/nologin' >>"$2/passwd"
cp /etc/group "$2/group"; echo 'systemd-resolve:x:990:' >>"$2/group"
mount --bind "$2/passwd" /etc/passwd
mount --bind "$2/group" /etc/group
mkdir -p /etc/systemd /run/systemd
mount --bind "$2/etc-systemd" /etc/systemd
mount -t tmpfs tmpfs /run/systemd
exec "$1"
`

// TestRecipeSystemdResolved exercises the device recipe end to end: the
// shipped systemd-resolved drop-in in front of device.Corefile on
// 127.0.0.1:5300, on a real tailnet. A client of resolved's stub
// (127.0.0.53) gets tailnet and public answers for example.org, and
// resolved sends no other name to tailhorizon. It runs in the tests'
// network namespace, with resolved in a mount namespace of its own.
func TestRecipeSystemdResolved(t *testing.T) {
	tailnettest.Require(t)
	bin := resolvedBinary()
	if bin == "" {
		tailnettest.SkipOrFail(t, "needs systemd-resolved (.ci/run unpacks it into bin/systemd-resolved)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		tailnettest.SkipOrFail(t, "needs unshare (apt-get install util-linux)")
	}
	// resolved calls the network down, and asks nobody, without a link
	// that is up besides lo: a veth pair is one.
	if out, err := exec.Command("ip", "link", "add", "thres0", "type", "veth", "peer", "name", "thres1").CombinedOutput(); err != nil {
		t.Fatalf("make a link for resolved: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", "thres0").Run() })
	for _, args := range [][]string{
		{"addr", "add", "198.18.5.1/24", "dev", "thres0"},
		{"link", "set", "thres0", "up"},
		{"link", "set", "thres1", "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}

	tn := tailnettest.Start(t)
	device := tn.AddNode(t, "device")
	hub := tn.AddNode(t, "hub")
	api := device.ServeLocalAPI(t)
	authority := startAuthority(t)
	b, err := os.ReadFile(filepath.Join("..", "docs", "corefiles", "device.Corefile"))
	if err != nil {
		t.Fatal(err)
	}
	// On 127.0.0.1:5300, where the drop-in sends example.org: this
	// namespace is the tests' own, so the port is free.
	startCoreDNS(t, strings.NewReplacer(
		"/var/run/tailscale/tailscaled.sock", api.Path,
		"127.0.0.1:5301", authority,
	).Replace(string(b)))

	dir := t.TempDir()
	cmd := exec.Command("unshare", "--mount", "--", "sh", "-c", resolvedScript, "sh", bin, dir,
		filepath.Join("..", "docs", "systemd", "resolved-tailhorizon.conf"))
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	stub := "127.0.0.53:53"
	ask := func(name string) func() *dns.Msg {
		return func() *dns.Msg {
			m := new(dns.Msg).SetQuestion(name, dns.TypeA)
			r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, stub)
			if err != nil {
				return &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: -1}}
			}
			return r
		}
	}
	defer func() {
		if t.Failed() {
			t.Logf("systemd-resolved:\n%s", log.String())
		}
	}()
	waitFor(t, 20*time.Second, "hub through resolved", ask("hub.example.org."), func(r *dns.Msg) bool { return hasA(r, hub.IPv4) })
	waitFor(t, 5*time.Second, "www, public, through resolved", ask("www.example.org."), func(r *dns.Msg) bool {
		return len(r.Answer) > 0 && strings.HasSuffix(r.Answer[0].String(), wwwIPv4)
	})
	// resolved has no other DNS server: a name outside ~example.org is not
	// tailhorizon's to answer, and must not reach it.
	if r := ask("hub.example.net.")(); r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
		t.Errorf("hub.example.net answered through resolved: %v", r.Answer)
	}
}
