// Package zone holds what tailhorizon's plugins share about the zones they
// serve: which of a plugin's zones a query is in, which host below the zone
// it names, and the authoritative reply with its SOA. They are pure and
// cheap, because they run on every query.
package zone

import "strings"

// Match returns the longest of zones that qname is in, or "". Both are
// lowercase FQDNs. It is plugin.Zones.Matches without the allocations of
// dns.IsSubDomain, which matter with the 64 reverse zones of 100.64.0.0/10.
func Match(zones []string, qname string) string {
	best := ""
	for _, z := range zones {
		if len(z) <= len(best) || !strings.HasSuffix(qname, z) {
			continue
		}
		if i := len(qname) - len(z); i == 0 || z == "." || (qname[i-1] == '.' && !escaped(qname, i-1)) {
			best = z
		}
	}
	return best
}

// HostLabel returns the label just below zone: the host that owns qname.
// qname is lowercase and strictly below zone.
func HostLabel(qname, zone string) string {
	rest := qname[:len(qname)-len(zone)-1] // without ".zone"
	if zone == "." {
		rest = qname[:len(qname)-1]
	}
	for i := len(rest) - 1; i >= 0; i-- {
		if rest[i] == '.' && !escaped(rest, i) {
			return rest[i+1:]
		}
	}
	return rest
}

// escaped reports whether the byte at i of s is escaped by a backslash.
func escaped(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}
