package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
	"tailscale.com/tailcfg"

	"github.com/tailhorizon/tailhorizon/test/realnet"
)

// TestExtraRecordsHeadscale: real headscale reads its extra records from
// dns.extra_records_path and pushes each edit of the file; tailnet on a
// device with the current tailscaled serves them live, every type, and a
// record of a peer's tailnet address only while the peer is up. tailscaled
// 1.86 gives a LocalAPI client no records at all: they stay public there.
func TestExtraRecordsHeadscale(t *testing.T) {
	for _, version := range []string{realnet.TailscaleNew, realnet.TailscaleOld} {
		t.Run("device "+version, func(t *testing.T) { extraRecordsHeadscale(t, version) })
	}
}

func extraRecordsHeadscale(t *testing.T, version string) {
	file := filepath.Join(t.TempDir(), "extra-records.json")
	write := func(recs ...tailcfg.DNSRecord) {
		t.Helper()
		b, err := json.Marshal(recs)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, b, 0o644); err != nil { // in place: headscale sees a Write
			t.Fatal(err)
		}
	}
	write(tailcfg.DNSRecord{Name: "www.example.org", Value: "192.0.2.1"})
	rn := realnet.Start(t, realnet.ExtraRecordsFile(file))
	device := rn.AddNode(t, "device", version)
	hub := rn.AddNode(t, "hub", realnet.TailscaleNew)
	rn.WaitPeer(t, device, hub, realnet.Online)
	_, srv := startCoreDNS(t, controlCorefile(device.Socket(), startAuthority(t), "500ms"))
	ask := func(name string, qtype uint16) func() *dns.Msg {
		return func() *dns.Msg { return exchange(t, srv, name, qtype) }
	}
	is := rdataAre
	public := is("A " + vpsIPv4)
	waitFor(t, 20*time.Second, "hub answered", ask("hub.example.org", dns.TypeA), is("A "+hub.IPv4().String()))

	if version == realnet.TailscaleOld {
		// No records in its status and no dns-config endpoint.
		if r := exchange(t, srv, "www.example.org", dns.TypeA); !is("A " + wwwIPv4)(r) {
			t.Errorf("www on tailscaled %s: got %v; want the public answer", version, answers(r))
		}
		return
	}
	waitFor(t, 10*time.Second, "www from headscale's file", ask("www.example.org", dns.TypeA), is("A 192.0.2.1"))

	edited := time.Now()
	write(
		tailcfg.DNSRecord{Name: "www.example.org", Value: "192.0.2.1"},
		tailcfg.DNSRecord{Name: "www.example.org", Value: "192.0.2.2"},
		tailcfg.DNSRecord{Name: "www.example.org", Type: "TXT", Value: "edited"},
		tailcfg.DNSRecord{Name: "docs.example.org", Type: "CNAME", Value: "www.example.org."},
		tailcfg.DNSRecord{Name: "_cargo._tcp.example.org", Type: "SRV", Value: "0 5 443 registry.example.org."},
		tailcfg.DNSRecord{Name: "mail.example.org", Type: "MX", Value: "10 mx.example.net."},
		tailcfg.DNSRecord{Name: "registry." + realnet.BaseDomain, Value: hub.IPv4().String()},
	)
	took := waitFor(t, 30*time.Second, "www after the edit", ask("www.example.org", dns.TypeA), is("A 192.0.2.1", "A 192.0.2.2"))
	t.Logf("an edit of the records file answered %s later (%s after the write)", took, time.Since(edited).Round(time.Millisecond))
	cases := []struct {
		qname string
		qtype uint16
		want  []string
	}{
		{"www.example.org", dns.TypeTXT, []string{`TXT "edited"`}},
		{"docs.example.org", dns.TypeA, []string{"CNAME www.example.org.", "A 192.0.2.1", "A 192.0.2.2"}},
		{"_cargo._tcp.example.org", dns.TypeSRV, []string{"SRV 0 5 443 registry.example.org."}},
		{"mail.example.org", dns.TypeMX, []string{"MX 10 mx.example.net."}},
		{"mail.example.org", dns.TypeA, nil}, // NODATA
		{"registry.example.org", dns.TypeA, []string{"A " + hub.IPv4().String()}},
	}
	for _, c := range cases {
		if r := exchange(t, srv, c.qname, c.qtype); !is(c.want...)(r) {
			t.Errorf("%s %s: got %s %v; want %q", c.qname, dns.TypeToString[c.qtype], dns.RcodeToString[r.Rcode], answers(r), c.want)
		}
	}

	// registry is hub's address: it follows hub, as hub's own name does.
	hub.Kill(t)
	took = waitFor(t, 10*time.Second, "registry public with hub dead", ask("registry.example.org", dns.TypeA), public)
	t.Logf("registry passed on %s after hub died", took)
	hub.Restart(t)
	took = waitFor(t, 60*time.Second, "registry back with hub", ask("registry.example.org", dns.TypeA), is("A "+hub.IPv4().String()))
	t.Logf("registry answered again %s after hub restarted", took)

	write(tailcfg.DNSRecord{Name: "docs.example.org", Type: "CNAME", Value: "www.example.org."})
	waitFor(t, 30*time.Second, "www public once its records are gone", ask("www.example.org", dns.TypeA), is("A "+wwwIPv4))
}
