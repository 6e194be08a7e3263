package watch

import (
	"errors"
	"net/netip"
	"strings"

	"github.com/miekg/dns"
	"tailscale.com/tailcfg"

	"github.com/tailhorizon/tailhorizon/internal/zone"
)

// Record is one of control's extra DNS records, parsed. It is immutable:
// an answer copies RR and sets its owner and TTL.
type Record struct {
	Name string // lowercase FQDN with a trailing dot
	RR   dns.RR // owner Name, TTL 0
}

// ParseRecords parses control's extra records, in order, and leaves out
// (and logs at debug level) those that do not parse.
func ParseRecords(recs []tailcfg.DNSRecord) []Record {
	out := make([]Record, 0, len(recs))
	for _, rec := range recs {
		name := dns.CanonicalName(rec.Name)
		rr, err := parseRecord(name, rec)
		if err != nil {
			log.Debugf("extra record %s %s %q left out: %v", rec.Name, rec.Type, rec.Value, err)
			continue
		}
		out = append(out, Record{Name: name, RR: rr})
	}
	return out
}

// errBadRecord is a record whose type and value do not go together, or
// that a zone does not serve (SOA: the zone has its own).
var errBadRecord = errors.New("not a record of its type that a zone can serve")

// parseRecord makes the record rec under name. An empty Type is A or
// AAAA, by the address (as tailscaled reads it); a TXT value is one
// string, split into 255-byte pieces; other types are parsed by miekg/dns
// from presentation format.
func parseRecord(name string, rec tailcfg.DNSRecord) (dns.RR, error) {
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, errBadRecord
	}
	typ := strings.ToUpper(rec.Type)
	if typ == "" || typ == "A" || typ == "AAAA" {
		a, err := netip.ParseAddr(rec.Value)
		switch {
		case err != nil:
			return nil, err
		case a.Is4() && typ != "AAAA":
			return &dns.A{Hdr: zone.Header(name, dns.TypeA, 0), A: a.AsSlice()}, nil
		case a.Is6() && !a.Is4In6() && typ != "A":
			return &dns.AAAA{Hdr: zone.Header(name, dns.TypeAAAA, 0), AAAA: a.AsSlice()}, nil
		}
		return nil, errBadRecord
	}
	if typ == "TXT" {
		txt := &dns.TXT{Hdr: zone.Header(name, dns.TypeTXT, 0)}
		for v := rec.Value; v != "" || len(txt.Txt) == 0; {
			n := min(len(v), 255)
			txt.Txt, v = append(txt.Txt, v[:n]), v[n:]
		}
		return txt, nil
	}
	rr, err := dns.NewRR(name + " 0 IN " + typ + " " + rec.Value)
	if err == nil && (rr == nil || rr.Header().Rrtype == dns.TypeSOA || dns.TypeToString[rr.Header().Rrtype] != typ) {
		err = errBadRecord
	}
	return rr, err
}
