package lantest

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// Avahi is an avahi-daemon running in a host's namespace.
type Avahi struct {
	*Process
}

// RunAvahi starts avahi-daemon in h's namespace, without D-Bus, publishing
// the static host names of hosts (name without ".local" -> addresses) from
// its hosts file, and waits until it has established them. It skips t if
// avahi-daemon is not installed (in CI it fails instead).
//
// ip netns exec lays /etc/netns/NETNS/avahi over /etc/avahi, so the
// daemon reads its own configuration; unshare -m and a tmpfs on /run give
// it a pid file and socket directory of its own.
func (h *Host) RunAvahi(t testing.TB, hosts map[string][]netip.Addr) *Avahi {
	t.Helper()
	bin, err := exec.LookPath("avahi-daemon")
	if err != nil {
		tailnettest.SkipOrFail(t, "needs avahi-daemon (apt-get install avahi-daemon)")
	}
	dir := filepath.Join("/etc/netns", h.Netns, "avahi")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`[server]
host-name=%s
use-ipv4=yes
use-ipv6=yes
allow-interfaces=%s
enable-dbus=no
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-addresses=no
publish-hinfo=no
publish-workstation=no
`, h.Netns, h.Iface)
	var lines []string
	for name, addrs := range hosts {
		for _, a := range addrs {
			lines = append(lines, a.String()+" "+name+".local")
		}
	}
	for file, body := range map[string]string{"avahi-daemon.conf": conf, "hosts": strings.Join(lines, "\n") + "\n"} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := h.Start(t, nil, "unshare", "-m", "sh", "-c",
		"mount -t tmpfs tmpfs /run && mkdir -p /run/avahi-daemon && exec "+bin+
			" --no-drop-root --no-chroot --no-rlimits --no-proc-title -f /etc/avahi/avahi-daemon.conf")
	for range len(lines) {
		if !p.waitLine("successfully established", 15*time.Second) {
			t.Fatalf("avahi-daemon in %s did not establish its host names:\n%s", h.Netns, p.Output())
		}
	}
	return &Avahi{p}
}
