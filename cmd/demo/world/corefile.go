package world

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// files are the demo's Corefile and the public zone's file.
type files struct {
	corefile, zone string
}

// corefileData returns the demo's Corefile, with the public stand-in on
// publicAddr and the ready plugin on readyAddr: the device deployment
// (docs/corefiles/device.Corefile) with short TTLs, so switches show at
// once, and without cache for the same reason. The block also serves the
// tailnet's reverse zones, so `dig -x` of a tailnet address answers with
// its name; only tailnet answers there.
func (d *demo) corefileData(publicAddr, readyAddr string) files {
	host, port, _ := net.SplitHostPort(d.cfg.Listen)
	_, publicPort, _ := net.SplitHostPort(publicAddr)
	zone := d.cfg.Zone
	var b strings.Builder
	fmt.Fprintf(&b, "# The tailhorizon demo: the tailnet, then nas on the LAN, then the public zone.\n")
	fmt.Fprintf(&b, "%s:%s", zone, port)
	for _, rev := range reverseZones {
		fmt.Fprintf(&b, " %s:%s", rev, port)
	}
	fmt.Fprintf(&b, " {\n    bind %s\n    errors\n    ready %s\n", host, readyAddr)
	if d.cfg.Metrics != "" {
		fmt.Fprintf(&b, "    prometheus %s\n", d.cfg.Metrics)
	}
	fmt.Fprintf(&b, "    fallback %s {\n        to %s\n        max_ttl 5\n        policy registry tailnet lan\n    }\n", zone, publicAddr)
	fmt.Fprintf(&b, "    tailnet %s 100.64.0.0/10 fd7a:115c:a1e0::/48 {\n        socket %s\n        ttl 5\n        alias registry hub\n        fallthrough %s\n    }\n", zone, d.socket, zone)
	if d.world != nil && d.world.veth != "" {
		fmt.Fprintf(&b, "    mdns %s {\n        interface %s\n        timeout 200ms\n        ttl 5\n        fallthrough\n    }\n", zone, d.world.veth)
	}
	fmt.Fprintf(&b, "}\n\n# The stand-in for the zone's public authority (the VPS records).\n")
	fmt.Fprintf(&b, "%s:%s {\n    bind 127.0.0.1\n    file {{zone}}\n}\n", zone, publicPort)
	return files{corefile: b.String(), zone: publicZone(zone)}
}

// reverseZones are the zones of the tailnet's addresses, 100.64.0.0/10
// (within 100.in-addr.arpa) and fd7a:115c:a1e0::/48.
var reverseZones = []string{"100.in-addr.arpa", "0.e.1.a.c.5.1.1.a.7.d.f.ip6.arpa"}

// publicZone is the zone as the internet sees it: the hub's services are
// proxied by a VPS at 203.0.113.10.
func publicZone(zone string) string {
	return strings.ReplaceAll(`$ORIGIN ZONE.
@        3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 60
@        3600 IN NS  ns1
ns1      3600 IN A   203.0.113.53
@          60 IN A   203.0.113.10
hub        60 IN A   203.0.113.10
*.hub      60 IN A   203.0.113.10
registry   60 IN A   203.0.113.10
www        60 IN A   203.0.113.10
`, "ZONE", zone)
}

// writeFiles writes f in dir and returns the Corefile's text.
func writeFiles(dir string, f files) ([]byte, error) {
	zonePath := filepath.Join(dir, "public.db")
	if err := os.WriteFile(zonePath, []byte(f.zone), 0o644); err != nil {
		return nil, err
	}
	corefile := strings.ReplaceAll(f.corefile, "{{zone}}", zonePath)
	if err := os.WriteFile(filepath.Join(dir, "Corefile"), []byte(corefile), 0o644); err != nil {
		return nil, err
	}
	return []byte(corefile), nil
}
