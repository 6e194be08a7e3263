package watch

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"

	"tailscale.com/ipn/ipnstate"
	"tailscale.com/tailcfg"
)

func TestServicesFromCapMap(t *testing.T) {
	cm := tailcfg.NodeCapMap{
		"services/opaque1": {`{"Name":"svc:Cargo","Addrs":["100.100.0.1","fd7a:115c:a1e0::100"]}`},
		"services/opaque2": {`{"Name":"svc:noaddrs"}`},
		"services/opaque3": {`not json`},
		"services/opaque4": {`{"Name":"nosvcprefix","Addrs":["100.100.0.4"]}`},
		"other-cap":        {`{"Name":"svc:other","Addrs":["100.100.0.5"]}`},
	}
	got := services(cm)
	want := []Service{{Name: "cargo", Addrs: []netip.Addr{netip.MustParseAddr("100.100.0.1"), netip.MustParseAddr("fd7a:115c:a1e0::100")}}}
	if len(got) != 1 || got[0].Name != want[0].Name || !slices.Equal(got[0].Addrs, want[0].Addrs) {
		t.Errorf("got %v; want %v", got, want)
	}
}

func TestRoutesOf(t *testing.T) {
	addrs := []netip.Addr{netip.MustParseAddr("100.64.0.2"), netip.MustParseAddr("fd7a:115c:a1e0::2")}
	allowed := []netip.Prefix{netip.MustParsePrefix("100.64.0.2/32"), netip.MustParsePrefix("fd7a:115c:a1e0::2/128"),
		netip.MustParsePrefix("100.100.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	got := routesOf(allowed, addrs)
	if want := allowed[2:]; !slices.Equal(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
}

// dnsConfigFake is a fakeAPI with a dns-config endpoint, as tailscaled 1.102
// has; err makes it fail as a tailscaled without one does.
type dnsConfigFake struct {
	*fakeAPI
	records []tailcfg.DNSRecord
	err     error
	asked   int
}

func (f *dnsConfigFake) DNSConfig(context.Context) (*tailcfg.DNSConfig, error) {
	f.asked++
	if f.err != nil {
		return nil, f.err
	}
	return &tailcfg.DNSConfig{ExtraRecords: f.records}, nil
}

// TestControlRecordsSource: the status's records when it has them; the
// dns-config endpoint's when it has some the status lacks; and an endpoint
// that fails or has none either is not asked again on this connection.
func TestControlRecordsSource(t *testing.T) {
	inStatus := []tailcfg.DNSRecord{{Name: "a.example.org", Value: "192.0.2.1"}}
	fromEndpoint := []tailcfg.DNSRecord{{Name: "b.example.org", Type: "TXT", Value: "x"}}
	st := func(recs []tailcfg.DNSRecord) *ipnstate.Status {
		return &ipnstate.Status{BackendState: "Running", ExtraRecords: recs,
			CurrentTailnet: &ipnstate.TailnetStatus{MagicDNSSuffix: "Tail-Scale.ts.net."}}
	}
	cases := []struct {
		name      string
		status    []tailcfg.DNSRecord
		endpoint  error
		want      []tailcfg.DNSRecord
		wantAsked int
	}{
		{"records in the status", inStatus, nil, inStatus, 0},
		{"none in the status: the endpoint's, asked each time", nil, nil, fromEndpoint, 2},
		{"none in either: asked once", nil, nil, nil, 1},
		{"no endpoint: none, asked once", nil, errors.New("404 Not Found"), nil, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			api := &dnsConfigFake{fakeAPI: newFakeAPI(nil), records: c.want, err: c.endpoint}
			if c.status != nil {
				api.records = fromEndpoint // never asked
			}
			w := newWatcher("test")
			w.api = api
			for range 2 {
				w.control(t.Context(), st(c.status))
			}
			if !slices.Equal(w.rawRecords, c.want) || len(w.records) != len(c.want) || api.asked != c.wantAsked {
				t.Errorf("records %v (%d parsed), asked %d times; want %v, %d", w.rawRecords, len(w.records), api.asked, c.want, c.wantAsked)
			}
			if w.suffix != "tail-scale.ts.net" {
				t.Errorf("suffix %q; want tail-scale.ts.net", w.suffix)
			}
		})
	}
}

func TestParseRecord(t *testing.T) {
	cases := []struct {
		rec  tailcfg.DNSRecord
		want string // the record's text; "" for an error
	}{
		{tailcfg.DNSRecord{Value: "192.0.2.1"}, "x.example.org.\t0\tIN\tA\t192.0.2.1"},
		{tailcfg.DNSRecord{Value: "2001:db8::1"}, "x.example.org.\t0\tIN\tAAAA\t2001:db8::1"},
		{tailcfg.DNSRecord{Type: "A", Value: "2001:db8::1"}, ""},
		{tailcfg.DNSRecord{Type: "aaaa", Value: "2001:db8::1"}, "x.example.org.\t0\tIN\tAAAA\t2001:db8::1"},
		{tailcfg.DNSRecord{Type: "TXT", Value: `two words "quoted"`}, "x.example.org.\t0\tIN\tTXT\t\"two words \\\"quoted\\\"\""},
		{tailcfg.DNSRecord{Type: "CNAME", Value: "www.example.org"}, "x.example.org.\t0\tIN\tCNAME\twww.example.org."},
		{tailcfg.DNSRecord{Type: "SRV", Value: "0 5 443 cargo.example.org."}, "x.example.org.\t0\tIN\tSRV\t0 5 443 cargo.example.org."},
		{tailcfg.DNSRecord{Type: "MX", Value: "10"}, ""},
		{tailcfg.DNSRecord{Type: "SOA", Value: "ns. h. 1 2 3 4 5"}, ""},
		{tailcfg.DNSRecord{Type: "BOGUS", Value: "x"}, ""},
		{tailcfg.DNSRecord{Value: "not an address"}, ""},
	}
	for _, c := range cases {
		t.Run(c.rec.Type+" "+c.rec.Value, func(t *testing.T) {
			rr, err := parseRecord("x.example.org.", c.rec)
			got := ""
			if err == nil {
				got = rr.String()
			}
			if got != c.want {
				t.Errorf("got %q (%v); want %q", got, err, c.want)
			}
		})
	}
}
