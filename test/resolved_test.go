package test

import (
	"crypto"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/fixture"
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
// that the recipe's drop-ins, its trust anchors, and the user it drops
// privileges to, exist only for it: $1 is the binary, $2 a scratch
// directory, $3 a directory of drop-ins, $4 (optional) a directory of
// trust anchor files, which appears as /etc/dnssec-trust-anchors.d on an
// overlay of /etc, so that nothing is made in the machine's /etc.
const resolvedScript = `set -e
if [ -n "$4" ]; then
    mkdir -p "$2/etc-overlay"
    mount -t tmpfs tmpfs "$2/etc-overlay"
    mkdir -p "$2/etc-overlay/upper/dnssec-trust-anchors.d" "$2/etc-overlay/work"
    cp "$4"/* "$2/etc-overlay/upper/dnssec-trust-anchors.d/"
    mount -t overlay overlay -o "lowerdir=/etc,upperdir=$2/etc-overlay/upper,workdir=$2/etc-overlay/work" /etc
fi
mkdir -p "$2/etc-systemd/resolved.conf.d"
cp "$3"/* "$2/etc-systemd/resolved.conf.d/"
cp /etc/passwd "$2/passwd"; echo 'systemd-resolve:x:990:990::/:/usr/sbin/nologin' >>"$2/passwd"
cp /etc/group "$2/group"; echo 'systemd-resolve:x:990:' >>"$2/group"
mount --bind "$2/passwd" /etc/passwd
mount --bind "$2/group" /etc/group
mkdir -p /etc/systemd /run/systemd
mount --bind "$2/etc-systemd" /etc/systemd
mount -t tmpfs tmpfs /run/systemd
exec "$1"
`

// resolvedDropIn is the shipped drop-in.
var resolvedDropIn = filepath.Join("..", "docs", "systemd", "resolved-tailhorizon.conf")

// requireResolved returns the systemd-resolved binary, or skips t (fails
// it in CI) where it or unshare is missing.
func requireResolved(t *testing.T) string {
	t.Helper()
	tailnettest.Require(t)
	bin := resolvedBinary()
	if bin == "" {
		tailnettest.SkipOrFail(t, "needs systemd-resolved (.ci/run unpacks it into bin/systemd-resolved)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		tailnettest.SkipOrFail(t, "needs unshare (apt-get install util-linux)")
	}
	return bin
}

// resolvedLink makes a link that is up besides lo: without one, resolved
// calls the network down and asks nobody. A veth pair is one.
func resolvedLink(t *testing.T) {
	t.Helper()
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
}

// startDeviceCorefile serves docs/corefiles/device.Corefile on
// 127.0.0.1:5300, where the drop-in sends example.org, with tailscaled's
// socket and the public authority replaced: this namespace is the tests'
// own, so the port is free.
func startDeviceCorefile(t *testing.T, socket, authority string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "corefiles", "device.Corefile"))
	if err != nil {
		t.Fatal(err)
	}
	startCoreDNS(t, strings.NewReplacer(
		"/var/run/tailscale/tailscaled.sock", socket,
		"127.0.0.1:5301", authority,
	).Replace(string(b)))
}

// A resolved is one systemd-resolved in its mount namespace.
type resolved struct {
	cmd *exec.Cmd
	log *syncBuffer
}

// startResolved starts systemd-resolved with the drop-ins and the trust
// anchor files (name: content; none for nil). It is stopped by stop or
// when the test ends; its log is shown if the test fails.
func startResolved(t *testing.T, bin string, dropIns []string, anchors map[string]string) *resolved {
	t.Helper()
	dir := t.TempDir()
	confDir, anchorDir := filepath.Join(dir, "conf.d"), ""
	if err := os.Mkdir(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range dropIns {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(confDir, filepath.Base(f)), string(b))
	}
	if anchors != nil {
		anchorDir = filepath.Join(dir, "anchors")
		if err := os.Mkdir(anchorDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range anchors {
			writeFile(t, filepath.Join(anchorDir, name), content)
		}
	}
	scratch := filepath.Join(dir, "scratch")
	r := &resolved{log: &syncBuffer{}}
	r.cmd = exec.Command("unshare", "--mount", "--", "sh", "-c", resolvedScript, "sh", bin, scratch, confDir, anchorDir)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("systemd-resolved:\n%s", r.log.String())
		}
	})
	return r
}

// stop ends resolved and waits for it, so that the next one can bind
// 127.0.0.53:53.
func (r *resolved) stop() {
	if r.cmd.ProcessState == nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
	}
}

// resolvedStub is where resolved's stub listens.
const resolvedStub = "127.0.0.53:53"

// askStub asks resolved's stub for name's A records, with the AD bit set
// so that a validated answer says so; an rcode of -1 is no answer.
func askStub(name string) func() *dns.Msg {
	return func() *dns.Msg {
		m := new(dns.Msg).SetQuestion(name, dns.TypeA)
		m.AuthenticatedData = true
		r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, resolvedStub)
		if err != nil {
			return &dns.Msg{MsgHdr: dns.MsgHdr{Rcode: -1}}
		}
		return r
	}
}

// TestRecipeSystemdResolved exercises the device recipe end to end: the
// shipped systemd-resolved drop-in in front of device.Corefile on
// 127.0.0.1:5300, on a real tailnet. A client of resolved's stub
// (127.0.0.53) gets tailnet and public answers for example.org, and
// resolved sends no other name to tailhorizon. It runs in the tests'
// network namespace, with resolved in a mount namespace of its own.
func TestRecipeSystemdResolved(t *testing.T) {
	bin := requireResolved(t)
	resolvedLink(t)
	tn := tailnettest.Start(t)
	device := tn.AddNode(t, "device")
	hub := tn.AddNode(t, "hub")
	api := device.ServeLocalAPI(t)
	startDeviceCorefile(t, api.Path, startAuthority(t))
	startResolved(t, bin, []string{resolvedDropIn}, nil)

	waitFor(t, 20*time.Second, "hub through resolved", askStub("hub.example.org."), func(r *dns.Msg) bool { return hasA(r, hub.IPv4) })
	waitFor(t, 5*time.Second, "www, public, through resolved", askStub("www.example.org."), func(r *dns.Msg) bool {
		return len(r.Answer) > 0 && strings.HasSuffix(r.Answer[0].String(), wwwIPv4)
	})
	// resolved has no other DNS server: a name outside ~example.org is not
	// tailhorizon's to answer, and must not reach it.
	if r := askStub("hub.example.net.")(); r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
		t.Errorf("hub.example.net answered through resolved: %v", r.Answer)
	}
}

// TestRecipeResolvedDNSSEC: behind a systemd-resolved that validates
// (DNSSEC=yes), a signed public zone makes every answer tailhorizon
// synthesizes bogus, as it has no signature; the recipe's negative trust
// anchor (docs/systemd/tailhorizon.negative) makes them resolve again.
// The public zone is signed here with a fresh key, served by stock file,
// and a positive trust anchor for example.org stands in for the chain
// from the root that a signed public zone has.
func TestRecipeResolvedDNSSEC(t *testing.T) {
	bin := requireResolved(t)
	resolvedLink(t)
	tn := tailnettest.Start(t)
	device := tn.AddNode(t, "device")
	hub := tn.AddNode(t, "hub")
	api := device.ServeLocalAPI(t)
	zone, ds := signedZone(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "db.example.org"), zone)
	port := fixture.Port(t)
	startCoreDNS(t, fmt.Sprintf("example.org:%d {\n    bind 127.0.0.1\n    file %s\n}\n", port, filepath.Join(dir, "db.example.org")))
	startDeviceCorefile(t, api.Path, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))

	positive := fmt.Sprintf("example.org. IN DS %d %d %d %s\n", ds.KeyTag, ds.Algorithm, ds.DigestType, ds.Digest)
	nta, err := os.ReadFile(ntaFile)
	if err != nil {
		t.Fatal(err)
	}
	// The user's own setting, beside the recipe's drop-in.
	dropIn := func(mode string) string {
		f := filepath.Join(dir, "dnssec-"+mode, "dnssec.conf")
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, f, "[Resolve]\nDNSSEC="+mode+"\n")
		return f
	}
	// resolved's SERVFAIL for a bogus answer still carries the records.
	isHub := func(r *dns.Msg) bool { return r.Rcode == dns.RcodeSuccess && hasA(r, hub.IPv4) }
	isWWW := func(r *dns.Msg) bool {
		return r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 && strings.HasSuffix(r.Answer[0].String(), "198.51.100.80")
	}

	var builtin []string // resolved's own negative trust anchors
	for _, mode := range []string{"yes", "allow-downgrade"} {
		t.Run("DNSSEC="+mode+" without the NTA", func(t *testing.T) {
			res := startResolved(t, bin, []string{resolvedDropIn, dropIn(mode)}, map[string]string{"example.org.positive": positive})
			defer res.stop()
			// The public answer validates: the chain works.
			www := waitFor(t, 20*time.Second, "www, signed, validated", askStub("www.example.org."), func(m *dns.Msg) bool {
				return isWWW(m) && m.AuthenticatedData
			})
			t.Logf("www validated after %s", www)
			// tailnet's answer has no signature: bogus, SERVFAIL.
			var m *dns.Msg
			waitFor(t, 10*time.Second, "hub's reply through resolved", askStub("hub.example.org."), func(r *dns.Msg) bool {
				m = r
				return r.Rcode != -1
			})
			if m.Rcode != dns.RcodeServerFailure {
				t.Errorf("hub: %s %v with DNSSEC=%s and no NTA; want SERVFAIL, bogus", dns.RcodeToString[m.Rcode], m.Answer, mode)
			}
			why := "hub.example.org IN A: no-signature"
			fixture.Eventually(t, "resolved logs "+why, func() bool { return strings.Contains(res.log.String(), why) })
			if builtin == nil {
				builtin = negativeAnchors(t, res.log)
			}
		})
	}

	for _, mode := range []string{"yes", "allow-downgrade"} {
		t.Run("DNSSEC="+mode+" with the NTA", func(t *testing.T) {
			res := startResolved(t, bin, []string{resolvedDropIn, dropIn(mode)}, map[string]string{
				"example.org.positive": positive,
				"tailhorizon.negative": string(nta),
			})
			defer res.stop()
			took := waitFor(t, 20*time.Second, "hub through resolved", askStub("hub.example.org."), isHub)
			t.Logf("hub resolved after %s", took)
			// Nothing below the NTA is validated, the public answers too.
			var m *dns.Msg
			waitFor(t, 10*time.Second, "www's reply through resolved", askStub("www.example.org."), func(r *dns.Msg) bool {
				m = r
				return r.Rcode != -1
			})
			if !isWWW(m) || m.AuthenticatedData {
				t.Errorf("www: %v; want the public answer, not validated (AD clear) below the NTA", m)
			}
			// A .negative file replaces resolved's built-in list of
			// private domains: the shipped file carries it on.
			got := negativeAnchors(t, res.log)
			for _, d := range append([]string{"example.org"}, builtin...) {
				if !slices.Contains(got, d) {
					t.Errorf("negative trust anchors %q lack %s", got, d)
				}
			}
		})
	}
}

// ntaFile is the recipe's negative trust anchor.
var ntaFile = filepath.Join("..", "docs", "systemd", "tailhorizon.negative")

// negativeAnchors reads the negative trust anchors resolved logs when it
// starts ("Negative trust anchors: a b c").
func negativeAnchors(t *testing.T, log *syncBuffer) []string {
	t.Helper()
	for line := range strings.Lines(log.String()) {
		if _, list, ok := strings.Cut(line, "Negative trust anchors: "); ok {
			return strings.Fields(list)
		}
	}
	t.Fatalf("resolved logged no negative trust anchors:\n%s", log.String())
	return nil
}

// signedZone is example.org's public zone signed with a fresh ECDSA P-256
// key (one key signing everything, flags 257), with its NSEC chain, and
// the DS of that key.
func signedZone(t *testing.T) (string, *dns.DS) {
	t.Helper()
	key := &dns.DNSKEY{
		Hdr:   dns.RR_Header{Name: "example.org.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: 257, Protocol: 3, Algorithm: dns.ECDSAP256SHA256,
	}
	priv, err := key.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	var rrs []dns.RR
	for _, s := range []string{
		"example.org. 3600 IN SOA ns1.example.org. hostmaster.example.org. 2026120201 7200 1800 86400 60",
		"example.org. 3600 IN NS ns1.example.org.",
		"example.org. 60 IN NSEC ns1.example.org. SOA NS RRSIG NSEC DNSKEY",
		"ns1.example.org. 3600 IN A " + vpsIPv4,
		"ns1.example.org. 60 IN NSEC www.example.org. A RRSIG NSEC",
		"www.example.org. 60 IN A 198.51.100.80",
		"www.example.org. 60 IN NSEC example.org. A RRSIG NSEC",
	} {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	rrs = append(rrs, key)
	var b strings.Builder
	now := time.Now()
	for _, rr := range rrs { // each RRset here is one record
		sig := &dns.RRSIG{
			Hdr:       dns.RR_Header{Name: rr.Header().Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: rr.Header().Ttl},
			Algorithm: key.Algorithm, SignerName: "example.org.", KeyTag: key.KeyTag(),
			Inception: uint32(now.Add(-time.Hour).Unix()), Expiration: uint32(now.Add(24 * time.Hour).Unix()),
		}
		if err := sig.Sign(priv.(crypto.Signer), []dns.RR{rr}); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s\n%s\n", rr, sig)
	}
	return b.String(), key.ToDS(dns.SHA256)
}
