package table

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
)

// TestExplain gives what each kind of name would get, and checks that
// explaining does not tell the probe.
func TestExplain(t *testing.T) {
	cases := []struct {
		name     string
		qname    string
		qtype    uint16
		zone     string
		nilTable bool
		answered bool
		records  int // how many records the answer has
		why      policy.Reason
		knows    string
	}{
		{"reachable host", "grafana.hub.example.org.", dns.TypeA, "example.org.", false, true, 1, policy.Unset, "host hub: hub.tail-scale.ts.net. reachable (online, probe none)"},
		{"alias", "reg.example.org.", dns.TypeA, "example.org.", false, true, 1, policy.Unset, "alias of host hub"},
		{"offline host", "alpha.example.org.", dns.TypeA, "example.org.", false, false, 0, policy.Offline, "host alpha: alpha.tail-scale.ts.net. node offline (offline, probe none)"},
		{"unknown name", "nosuch.example.org.", dns.TypeA, "example.org.", false, false, 0, policy.Unknown, "no host"},
		{"tag group", "web.example.org.", dns.TypeA, "example.org.", false, true, 1, policy.Unset, "tag group"},
		{"extra records", "www.example.org.", dns.TypeA, "example.org.", false, true, 1, policy.Unset, "extra records from control"},
		{"apex SOA", "example.org.", dns.TypeSOA, "example.org.", false, true, 0, policy.Unset, "the apex"},
		{"apex A", "example.org.", dns.TypeA, "example.org.", false, false, 0, policy.Unknown, "the apex"},
		{"PTR", "2.0.64.100.in-addr.arpa.", dns.TypePTR, "100.in-addr.arpa.", false, true, 0, policy.Unset, "the address of hub.tail-scale.ts.net."},
		{"PTR of no node", "9.9.64.100.in-addr.arpa.", dns.TypePTR, "100.in-addr.arpa.", false, false, 0, policy.Unknown, "no node has that address"},
		{"no table yet", "hub.example.org.", dns.TypeA, "example.org.", true, false, 0, policy.Unreachable, "no table it may answer from"},
	}
	s := snapshot()
	cfg := config()
	cfg.Probe = true
	tbl := Build(s, cfg)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := tbl
			if c.nilTable {
				tb = nil
			}
			e := tb.Explain(Question{Owner: c.qname, Name: c.qname, Zone: c.zone, Type: c.qtype}, time.Now())
			if e.Answered != c.answered || len(e.Records) != c.records || e.Why != c.why || !strings.Contains(e.Knows, c.knows) {
				t.Errorf("got %+v; want answered %v with %d records, why %q, knowing %q", e, c.answered, c.records, c.why, c.knows)
			}
		})
	}
	for _, n := range s.Nodes {
		if n.Health.Asked() != 0 {
			t.Errorf("%s was marked asked for: explaining told the probe", n.FQDN)
		}
	}
}

// TestExplainStale: a stale table says since when tailscaled is lost.
func TestExplainStale(t *testing.T) {
	s := snapshot()
	now := time.Now()
	s.State, s.LostAt, s.StaleUntil = watch.Stale, now.Add(-42*time.Second), now.Add(time.Minute).UnixNano()
	e := Build(s, config()).Explain(Question{Owner: "hub.example.org.", Name: "hub.example.org.", Zone: "example.org.", Type: dns.TypeA}, now)
	if !e.Answered || !strings.HasSuffix(e.Knows, "; the table is stale: tailscaled lost 42s ago") {
		t.Errorf("got %+v; want an answer, stale for 42s", e)
	}
}

// TestStatus: every node as a peer, sorted by name, with why an
// unreachable one is; the services and extra records; empty lists for
// no table.
func TestStatus(t *testing.T) {
	s := snapshot()
	now := time.Now().UnixNano()
	s.Nodes[1].Health.Record(false, now+time.Hour.Nanoseconds())
	st := Build(s, config()).Status(now)
	if st.State != "live" || !st.Running || len(st.Peers) != len(s.Nodes) || len(st.Services) != len(s.Services) || len(st.Records) != len(s.Records) {
		t.Fatalf("status %+v; want live, Running, every node, service and record", st)
	}
	for i, want := range []string{"alpha.tail-scale.ts.net.", "hub.tail-scale.ts.net.", "self.tail-scale.ts.net."} {
		if st.Peers[i].FQDN != want {
			t.Errorf("peer %d is %s; want %s", i, st.Peers[i].FQDN, want)
		}
	}
	if p := st.Peers[1]; p.Reachable || p.Probe != "failed" || p.Why != "probe failed" {
		t.Errorf("hub %+v; want unreachable, its probe failed", p)
	}
	if p := st.Peers[0]; p.Online || p.Why != "node offline" {
		t.Errorf("alpha %+v; want offline", p)
	}
	var none *Table
	if st := none.Status(now); st.State != "" || st.Peers == nil || st.Services == nil || st.Records == nil {
		t.Errorf("no table: %+v; want no state and empty lists", st)
	}
}
