package test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The public (VPS) addresses of the zone, from TEST-NET-2.
const (
	vpsIPv4 = "198.51.100.7"
	vpsIPv6 = "2001:db8:51::7"
	wwwIPv4 = "198.51.100.80"
)

// publicZone is the public zone of example.org as the VPSes publish it:
// every name points at the VPS, and an ACME challenge is set for hub.
const publicZone = `$ORIGIN example.org.
@       3600 IN SOA ns1.example.org. hostmaster.example.org. 2026112301 7200 1800 86400 60
@       3600 IN NS  ns1.example.org.
ns1     3600 IN A   ` + vpsIPv4 + `
*       60   IN A   ` + vpsIPv4 + `
*       60   IN AAAA ` + vpsIPv6 + `
www     60   IN A   ` + wwwIPv4 + `
_acme-challenge.hub 60 IN TXT "public-token"
`

// startAuthority runs a second coredns, with the file plugin, as the
// public authority of example.org on loopback, and returns its address.
func startAuthority(t *testing.T) string {
	t.Helper()
	zone := filepath.Join(t.TempDir(), "db.example.org")
	if err := os.WriteFile(zone, []byte(publicZone), 0o644); err != nil {
		t.Fatal(err)
	}
	_, addr := startCoreDNS(t, fmt.Sprintf("example.org:0 {\n    bind 127.0.0.1\n    file %s\n}\n", zone))
	return addr
}
