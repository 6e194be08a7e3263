package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
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

// TestConformance asks tailhorizon and two references serving the same
// records, stock CoreDNS file and Knot DNS, the same questions with kdig,
// and compares what a DNS engineer compares: the rcode, the AA, TC, RA and
// AD flags, the owners and types of the answer and authority sections,
// EDNS (presence, version, DO, size), whether the client had to retry over
// TCP, and the case of the names. Every difference that remains is listed,
// with its reason, in conformanceDifferences and in docs/conformance.md;
// any other difference fails the test, and so does a listed one that no
// longer occurs.
//
// tailhorizon runs in three shapes: "chain", the tailnet zones in front
// of the public zone served by file in the same server block; "device",
// docs/corefiles/device.Corefile's shape, where fallback asks the zone's
// public authority (a stock file server) for what tailnet does not
// answer; and "device-knot", the same with knot as the public authority. The references, "file" and "knot" (knotd, Debian package knot),
// serve the tailnet's names (its SOA, NS and hosts, wildcards below the
// hosts, PTRs) and the public zone's as zone files.
func TestConformance(t *testing.T) {
	tailnettest.Require(t)
	kdig, err := exec.LookPath("kdig")
	if err != nil {
		tailnettest.SkipOrFail(t, "needs kdig (apt-get install knot-dnsutils)")
	}
	digBin, err := exec.LookPath("dig")
	if err != nil {
		tailnettest.SkipOrFail(t, "needs dig (apt-get install dnsutils)")
	}
	refs := []string{"file", "knot"}
	knotd, err := exec.LookPath("knotd")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("needs knotd (apt-get install knot), and CI must compare with it")
		}
		t.Log("knotd is not installed (apt-get install knot): comparing with file only")
		refs = refs[:1]
	}

	tn := tailnettest.Start(t)
	hub := tn.AddNode(t, "hub") // the node tailhorizon runs on: the zone's NS
	alpha := tn.AddNode(t, "alpha")
	api := hub.ServeLocalAPI(t)

	dir := t.TempDir()
	public := filepath.Join(dir, "db.public")
	reference := filepath.Join(dir, "db.reference")
	reverseRef := filepath.Join(dir, "db.reverse")
	writeFile(t, public, conformancePublicZone())
	writeFile(t, reference, conformanceReferenceZone(hub, alpha))
	writeFile(t, reverseRef, conformanceReverseZone(hub, alpha))

	authority := fixture.Port(t)
	startCoreDNS(t, fmt.Sprintf("example.org:%d {\n    bind 127.0.0.1\n    file %s\n}\n", authority, public))
	// The tailnet zones: example.org and the reverse zone of the nodes'
	// addresses, 64.100.in-addr.arpa (the first of 100.64.0.0/10's 64).
	tailnet := "    tailnet example.org 64.100.in-addr.arpa {\n        socket " + api.Path + "\n        fallthrough example.org\n    }\n"
	device := func(authority string) string {
		return "example.org:%[1]d 64.100.in-addr.arpa:%[1]d {\n    bind 127.0.0.1\n" +
			"    fallback example.org {\n        to " + authority + "\n        policy registry tailnet lan\n    }\n" + tailnet + "}\n"
	}
	targets := map[string]string{}
	shapes := []string{"chain", "device"} // tailhorizon's
	corefiles := map[string]string{
		"file": "example.org:%[1]d {\n    bind 127.0.0.1\n    file " + reference + "\n}\n" +
			"64.100.in-addr.arpa:%[1]d {\n    bind 127.0.0.1\n    file " + reverseRef + "\n}\n",
		"chain": "example.org:%[1]d 64.100.in-addr.arpa:%[1]d {\n    bind 127.0.0.1\n" + tailnet +
			"    file " + public + " example.org\n}\n",
		"device": device(fmt.Sprintf("127.0.0.1:%d", authority)),
	}
	if knotd != "" {
		targets["knot"] = startKnot(t, knotd, map[string]string{"example.org": reference, "64.100.in-addr.arpa": reverseRef})
		// The device chain in front of a public authority that is not
		// CoreDNS, and truncates at 1232 octets whatever the query offers.
		corefiles["device-knot"] = device(startKnot(t, knotd, map[string]string{"example.org": public}))
		shapes = append(shapes, "device-knot")
	}
	for name, corefile := range corefiles {
		port := fixture.Port(t)
		startCoreDNS(t, fmt.Sprintf(corefile, port))
		targets[name] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	for _, name := range shapes {
		waitFor(t, 20*time.Second, name+" knows the tailnet", func() *dns.Msg {
			return exchange(t, targets[name], "alpha.example.org", dns.TypeA)
		}, func(r *dns.Msg) bool { return hasA(r, alpha.IPv4) })
	}

	c := conformanceClient{kdig: kdig, dig: digBin}
	matrix := conformanceMatrix(hub)
	got := map[string]map[string]shape{} // target, case: the reply
	for target, addr := range targets {
		got[target] = map[string]shape{}
		for _, q := range matrix {
			got[target][q.name] = c.ask(t, addr, q)
		}
	}

	seen := make([]bool, len(conformanceDifferences))
	for _, ref := range refs {
		for _, target := range shapes {
			t.Run(target+" against "+ref, func(t *testing.T) {
				for _, q := range matrix {
					for _, d := range compare(q.name, got[target][q.name], got[ref][q.name]) {
						d.target, d.against = target, ref
						i := slices.IndexFunc(conformanceDifferences, func(l difference) bool { return l.matches(d) })
						switch row, pending := pendingI13[q.name]; {
						case i >= 0:
							seen[i] = true
						case pending:
							t.Logf("PENDING (issue 13: %s): %s: %s: tailhorizon %q, %s %q", row, q.name, d.field, d.th, ref, d.ref)
						default:
							t.Errorf("%s: %s differs: tailhorizon %q, %s %q; list it in conformanceDifferences and docs/conformance.md only if it is right", q.name, d.field, d.th, ref, d.ref)
						}
					}
				}
			})
		}
	}
	for i, d := range conformanceDifferences {
		if !seen[i] && slices.Contains(refs, d.against) && (d.target == "" || slices.Contains(shapes, d.target)) {
			t.Errorf("listed difference not seen: %s: %s: tailhorizon %q, %s %q; take it out of conformanceDifferences and docs/conformance.md", d.q, d.field, d.th, d.against, d.ref)
		}
	}

	// What holds for every server, whatever the others say.
	for target := range targets {
		for _, q := range matrix {
			r := got[target][q.name]
			if q.sent != "" && r.question != q.sent {
				t.Errorf("%s: %s: question %q; want the query's own case %q (0x20)", target, q.name, r.question, q.sent)
			}
		}
	}
	if t.Failed() || testing.Verbose() {
		for _, q := range matrix {
			for i, target := range append(slices.Clone(refs), shapes...) {
				name := ""
				if i == 0 {
					name = q.name
				}
				t.Logf("%-24s %-6s %s", name, target, got[target][q.name])
			}
		}
	}
}

// startKnot runs knotd serving zones (name: zone file) on a free loopback
// port until the test ends, and returns its address once it answers.
func startKnot(t *testing.T, knotd string, zones map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	port := fixture.Port(t)
	var conf strings.Builder
	fmt.Fprintf(&conf, "server:\n    rundir: %[1]s\n    listen: 127.0.0.1@%[2]d\n"+
		"database:\n    storage: %[1]s\n"+
		"log:\n  - target: stderr\n    any: warning\n"+
		"template:\n  - id: default\n    storage: %[1]s\n    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n"+
		"zone:\n", dir, port)
	for _, z := range slices.Sorted(maps.Keys(zones)) {
		fmt.Fprintf(&conf, "  - domain: %s\n    file: %s\n", z, zones[z])
	}
	confFile := filepath.Join(dir, "knot.conf")
	writeFile(t, confFile, conf.String())
	cmd := exec.Command(knotd, "-c", confFile)
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("knotd:\n%s", log.String())
		}
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for _, z := range slices.Sorted(maps.Keys(zones)) {
		fixture.Eventually(t, "knotd serves "+z, func() bool {
			m := new(dns.Msg).SetQuestion(dns.Fqdn(z), dns.TypeSOA)
			r, _, err := (&dns.Client{Timeout: 200 * time.Millisecond}).Exchange(m, addr)
			return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1
		})
	}
	return addr
}

// conformancePublicZone is the zone's public side: what the VPS
// publishes at the apex and for its public names.
func conformancePublicZone() string {
	return `$ORIGIN example.org.
@       3600 IN SOA   ns1.example.org. hostmaster.example.org. 2026120201 7200 1800 86400 60
@       3600 IN NS    ns1.example.org.
` + conformancePublicRecords()
}

// conformancePublicRecords are the public zone's records but its SOA and
// NS: names of the apex that the tailnet does not own, and public hosts.
func conformancePublicRecords() string {
	return `@       300  IN A     198.51.100.7
@       300  IN MX    10 mail.example.org.
@       300  IN TXT   "v=spf1 -all"
@       300  IN HTTPS 1 . alpn=h2
@       300  IN CAA   0 issue "letsencrypt.org"
ns1     300  IN A     198.51.100.7
mail    300  IN A     198.51.100.25
www     300  IN A     198.51.100.80
big     300  IN TXT   ` + bigTXT + `
huge    300  IN TXT   ` + hugeTXT + `
`
}

// hugeTXT does not fit a 1232-octet UDP answer, but fits 4096.
var hugeTXT = strings.TrimSpace(strings.Repeat(`"`+strings.Repeat("y", 250)+`" `, 6))

// conformanceReferenceZone is what tailhorizon serves, as one zone file:
// the tailnet's apex (SOA and NS naming the node it runs on), its hosts
// and the names below them, and the public records.
func conformanceReferenceZone(self, peer *tailnettest.Node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN example.org.\n@ 10 IN SOA %[1]s.example.org. hostmaster.example.org. 1 3600 600 86400 10\n@ 10 IN NS %[1]s.example.org.\n", self.Hostname)
	for _, n := range []*tailnettest.Node{self, peer} {
		for _, owner := range []string{n.Hostname, "*." + n.Hostname} {
			fmt.Fprintf(&b, "%s 10 IN A %s\n%s 10 IN AAAA %s\n", owner, n.IPv4, owner, n.IPv6)
		}
	}
	return b.String() + conformancePublicRecords()
}

// conformanceReverseZone is the tailnet's reverse zone for the nodes'
// addresses, as one zone file: the same SOA and NS, and a PTR a node.
func conformanceReverseZone(self, peer *tailnettest.Node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$ORIGIN 64.100.in-addr.arpa.\n@ 10 IN SOA %[1]s.example.org. hostmaster.example.org. 1 3600 600 86400 10\n@ 10 IN NS %[1]s.example.org.\n", self.Hostname)
	for _, n := range []*tailnettest.Node{self, peer} {
		fmt.Fprintf(&b, "%s. 10 IN PTR %s.example.org.\n", reverse(n.IPv4), n.Hostname)
	}
	return b.String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A conformanceQuery is one question of the matrix.
type conformanceQuery struct {
	name string
	// kdig: the query as kdig's arguments, name and type last (kdig
	// writes names in lower case, in the query and in its output).
	kdig []string
	// dig: the query as dig's arguments, for what needs the name's case
	// (0x20): the question and the owners are read from dig.
	dig  []string
	sent string // the question's name as sent, when its case is checked
	// wire: a message kdig cannot send (UPDATE, QDCOUNT other than 1) or
	// whose refusal it does not show (transfers), sent by miekg/dns over
	// net ("udp" or "tcp").
	wire func() *dns.Msg
	net  string
}

// conformanceMatrix is the questions, in the order they are asked.
func conformanceMatrix(self *tailnettest.Node) []conformanceQuery {
	k := func(name string, args ...string) conformanceQuery { return conformanceQuery{name: name, kdig: args} }
	label63 := strings.Repeat("a", 63)
	// 255 octets on the wire: 3 labels of 63, one of 45, hub.example.org.
	name255 := strings.Join([]string{label63, label63, label63, strings.Repeat("b", 45), "hub.example.org."}, ".")
	if l := len(name255) + 1; l != 255 {
		panic(fmt.Sprintf("name255 is %d octets", l))
	}
	q := []conformanceQuery{
		k("apex SOA", "example.org", "SOA"),
		k("apex NS", "example.org", "NS"),
		k("apex A", "example.org", "A"),
		k("apex MX", "example.org", "MX"),
		k("apex TXT", "example.org", "TXT"),
		k("apex HTTPS", "example.org", "HTTPS"),
		k("apex CAA", "example.org", "CAA"),
		k("host A", "hub.example.org", "A"),
		k("host AAAA", "alpha.example.org", "AAAA"),
		k("host NODATA", "hub.example.org", "MX"),
		k("below host", "grafana.hub.example.org", "A"),
		k("public name", "www.example.org", "A"),
		k("NXDOMAIN", "nosuch.example.org", "A"),
		k("private NXDOMAIN", "registry.example.org", "A"), // device: policy registry tailnet lan
		k("apex ANY", "example.org", "ANY"),
		k("host ANY", "hub.example.org", "ANY"),
		k("public ANY", "www.example.org", "ANY"),
		k("NOTIFY", "example.org", "NOTIFY=1"),
		k("reverse SOA", "64.100.in-addr.arpa", "SOA"),
		k("reverse NS", "64.100.in-addr.arpa", "NS"),
		k("PTR", reverse(self.IPv4), "PTR"),
		k("PTR NXDOMAIN", "9.9.64.100.in-addr.arpa", "PTR"),
		k("no EDNS", "+noedns", "hub.example.org", "A"),
		k("EDNS 512", "+bufsize=512", "hub.example.org", "A"),
		k("EDNS 1232", "+bufsize=1232", "hub.example.org", "A"),
		k("EDNS 4096", "+bufsize=4096", "hub.example.org", "A"),
		k("EDNS version 1", "+edns=1", "hub.example.org", "A"),
		k("DO host", "+dnssec", "hub.example.org", "A"),
		k("DO NXDOMAIN", "+dnssec", "nosuch.example.org", "A"),
		k("DO apex SOA", "+dnssec", "example.org", "SOA"),
		k("big TXT no EDNS, UDP", "+noedns", "+ignore", "big.example.org", "TXT"),
		k("big TXT no EDNS", "+noedns", "big.example.org", "TXT"),
		k("big TXT EDNS 512", "+bufsize=512", "big.example.org", "TXT"),
		k("big TXT EDNS 1232", "+bufsize=1232", "big.example.org", "TXT"),
		k("big TXT EDNS 4096", "+bufsize=4096", "big.example.org", "TXT"),
		k("huge TXT EDNS 1232", "+bufsize=1232", "huge.example.org", "TXT"),
		k("huge TXT EDNS 4096", "+bufsize=4096", "huge.example.org", "TXT"),
		k("63-octet label", label63+".hub.example.org", "A"),
		k("255-octet name", name255, "A"),
		{name: "0x20 host", dig: []string{"HuB.ExAmPlE.oRg", "A"}, sent: "HuB.ExAmPlE.oRg."},
		{name: "0x20 below host", dig: []string{"GraFana.hUb.example.ORG", "A"}, sent: "GraFana.hUb.example.ORG."},
		{name: "0x20 public", dig: []string{"WwW.eXaMpLe.OrG", "A"}, sent: "WwW.eXaMpLe.OrG."},
		{name: "0x20 apex", dig: []string{"ExAmPlE.oRg", "SOA"}, sent: "ExAmPlE.oRg."},
	}
	for _, netw := range []string{"udp", "tcp"} {
		q = append(q,
			conformanceQuery{name: "AXFR " + netw, net: netw, wire: func() *dns.Msg {
				return new(dns.Msg).SetQuestion("example.org.", dns.TypeAXFR)
			}},
			conformanceQuery{name: "IXFR " + netw, net: netw, wire: func() *dns.Msg {
				return new(dns.Msg).SetIxfr("example.org.", 1, "hub.example.org.", "hostmaster.example.org.")
			}},
		)
	}
	q = append(q,
		conformanceQuery{name: "UPDATE", net: "udp", wire: func() *dns.Msg {
			m := new(dns.Msg).SetUpdate("example.org.")
			rr, _ := dns.NewRR("new.example.org. 60 IN A 192.0.2.1")
			m.Insert([]dns.RR{rr})
			return m
		}},
		conformanceQuery{name: "QDCOUNT 0", net: "udp", wire: func() *dns.Msg {
			m := new(dns.Msg)
			m.Id = dns.Id()
			return m
		}},
		conformanceQuery{name: "QDCOUNT 2", net: "udp", wire: func() *dns.Msg {
			m := new(dns.Msg).SetQuestion("hub.example.org.", dns.TypeA)
			m.Question = append(m.Question, dns.Question{Name: "alpha.example.org.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
			return m
		}},
	)
	return q
}

// A shape is what the matrix compares of a reply.
type shape struct {
	reply     bool   // false: no reply within the client's timeout
	rcode     string // with the extended bits of EDNS
	flags     string // "aa tc ra ad", those set
	answer    string // "owner TYPE, ..." in order, owners as the client shows them
	authority string
	edns      string // "none" or "v0 do 1232"
	tcp       bool   // the client retried over TCP after a truncated UDP reply
	question  string // the question's name, in its case (dig only)
}

func (s shape) String() string {
	if !s.reply {
		return "no reply"
	}
	tcp := ""
	if s.tcp {
		tcp = " (retried over TCP)"
	}
	return fmt.Sprintf("%s [%s] an: %s | ns: %s | edns: %s%s", s.rcode, s.flags, s.answer, s.authority, s.edns, tcp)
}

// A difference is one field of one case in which a target and the
// reference differ; as listed in conformanceDifferences, with why.
type difference struct {
	target  string // "chain", "device" or "device-knot"; "" for all
	against string // the reference: "file" or "knot"
	q       string // the case's name
	field   string
	th, ref string // tailhorizon's value and the reference's
	reason  string
	// like, when set, covers the values th and ref stand for: a family of
	// differences with one reason.
	like func(th, ref string) bool
}

// matches reports whether the listed difference l covers got, a
// difference seen; a q of "*" covers every case.
func (l difference) matches(got difference) bool {
	if l.against != got.against || (l.target != "" && l.target != got.target) || (l.q != "*" && l.q != got.q) || l.field != got.field {
		return false
	}
	if l.like != nil {
		return l.like(got.th, got.ref)
	}
	return l.th == got.th && l.ref == got.ref
}

// ednsSizeOnly reports whether two EDNS values ("v0 do 1232") differ in
// the UDP size only.
func ednsSizeOnly(th, ref string) bool {
	cut := func(s string) string { i := strings.LastIndex(s, " "); return s[:max(i, 0)] }
	return th != "none" && ref != "none" && cut(th) == cut(ref)
}

// sameName reports whether two sections differ in the case of their
// names only.
func sameName(th, ref string) bool { return strings.EqualFold(th, ref) }

// compare lists the fields in which th and ref differ.
func compare(q string, th, ref shape) []difference {
	var out []difference
	add := func(field, a, b string) {
		if a != b {
			out = append(out, difference{q: q, field: field, th: a, ref: b})
		}
	}
	if !th.reply || !ref.reply {
		add("reply", fmt.Sprint(th), fmt.Sprint(ref))
		return out
	}
	add("rcode", th.rcode, ref.rcode)
	add("flags", th.flags, ref.flags)
	add("answer", th.answer, ref.answer)
	add("authority", th.authority, ref.authority)
	add("edns", th.edns, ref.edns)
	add("tcp", strconv.FormatBool(th.tcp), strconv.FormatBool(ref.tcp))
	add("question", th.question, ref.question)
	return out
}

// conformanceTimeout bounds each question: what has no reply by then has
// none (file drops a NOTIFY, knot a query of two questions). It is long
// enough for a loaded machine.
const (
	conformanceTimeout = 2 * time.Second
	conformanceWait    = "2" // conformanceTimeout, for kdig's +time and dig's
)

// conformanceClient asks the matrix's questions with kdig, dig, or
// miekg/dns for what those cannot send.
type conformanceClient struct {
	kdig, dig string
}

func (c conformanceClient) ask(t *testing.T, addr string, q conformanceQuery) shape {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	switch {
	case q.wire != nil:
		cl := &dns.Client{Net: q.net, Timeout: conformanceTimeout}
		r, _, err := cl.Exchange(q.wire(), addr)
		if err != nil {
			return shape{}
		}
		return shapeOf(r)
	case q.dig != nil:
		args := append([]string{"@" + host, "-p", port, "+norec", "+time=" + conformanceWait, "+tries=1", "+noall", "+question", "+answer", "+comments"}, q.dig...)
		out, err := exec.Command(c.dig, args...).Output()
		if err != nil {
			t.Fatalf("dig %s: %v", strings.Join(args, " "), err)
		}
		return digShape(string(out))
	}
	args := append([]string{"@" + host, "-p", port, "+json", "+time=" + conformanceWait, "+retry=0", "+norecurse"}, q.kdig...)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(c.kdig, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stdout.Len() == 0 {
		if strings.Contains(stderr.String(), "timeout") {
			return shape{}
		}
		t.Fatalf("kdig %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	s, err := kdigShape(stdout.Bytes())
	if err != nil {
		t.Fatalf("kdig %s: %v: %s", strings.Join(args, " "), err, stdout.String())
	}
	s.tcp = strings.Contains(stderr.String(), "retrying over TCP")
	return s
}

// kdigMsg is the part of kdig's JSON (RFC 8427) the matrix reads.
type kdigMsg struct {
	AA, TC, RA, AD int
	RCODE          int
	Answer         []kdigRR `json:"answerRRs"`
	Authority      []kdigRR `json:"authorityRRs"`
	Additional     []kdigRR `json:"additionalRRs"`
}

type kdigRR struct {
	NAME     string
	TYPEname string
	TYPE     uint16
	CLASS    uint16
	TTL      uint32
	NS       string `json:"rdataNS"`
	PTR      string `json:"rdataPTR"`
}

func kdigShape(b []byte) (shape, error) {
	var m kdigMsg
	if err := json.Unmarshal(b, &m); err != nil {
		return shape{}, err
	}
	s := shape{reply: true, edns: "none"}
	var flags []string
	for _, f := range []struct {
		on   int
		name string
	}{{m.AA, "aa"}, {m.TC, "tc"}, {m.RA, "ra"}, {m.AD, "ad"}} {
		if f.on != 0 {
			flags = append(flags, f.name)
		}
	}
	s.flags = strings.Join(flags, " ")
	rcode := m.RCODE
	for _, rr := range m.Additional {
		if rr.TYPE == dns.TypeOPT {
			rcode |= int(rr.TTL>>24) << 4
			s.edns = ednsString(uint8(rr.TTL>>16), rr.TTL&0x8000 != 0, rr.CLASS)
		}
	}
	s.rcode = rcodeString(rcode, s.edns != "none")
	s.answer = kdigSection(m.Answer, true)
	s.authority = kdigSection(m.Authority, false)
	return s, nil
}

// rcodeString names an rcode; 16 is BADVERS in a reply with EDNS
// (RFC 6891 §6.1.3), BADSIG only in TSIG.
func rcodeString(rcode int, edns bool) string {
	if rcode == dns.RcodeBadVers && edns {
		return "BADVERS"
	}
	return dns.RcodeToString[rcode]
}

// kdigSection writes a section as "owner TYPE, ...", with the target of
// an NS or PTR in the answer (target): that a nameserver or a pointer
// names the right host matters, the rest of the data does not here.
func kdigSection(rrs []kdigRR, target bool) string {
	var out []string
	for _, rr := range rrs {
		s := rr.NAME + " " + rr.TYPEname
		if t := rr.NS + rr.PTR; target && t != "" {
			s += " " + t
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

func ednsString(version uint8, do bool, size uint16) string {
	d := ""
	if do {
		d = " do"
	}
	return fmt.Sprintf("v%d%s %d", version, d, size)
}

// shapeOf reads a reply that miekg/dns received.
func shapeOf(r *dns.Msg) shape {
	s := shape{reply: true, edns: "none", rcode: rcodeString(r.Rcode, r.IsEdns0() != nil)}
	var flags []string
	for _, f := range []struct {
		on   bool
		name string
	}{{r.Authoritative, "aa"}, {r.Truncated, "tc"}, {r.RecursionAvailable, "ra"}, {r.AuthenticatedData, "ad"}} {
		if f.on {
			flags = append(flags, f.name)
		}
	}
	s.flags = strings.Join(flags, " ")
	if o := r.IsEdns0(); o != nil {
		s.edns = ednsString(o.Version(), o.Do(), o.UDPSize())
	}
	s.answer = rrSection(r.Answer)
	s.authority = rrSection(r.Ns)
	return s
}

func rrSection(rrs []dns.RR) string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.Header().Name+" "+dns.TypeToString[rr.Header().Rrtype])
	}
	return strings.Join(out, ", ")
}

// digShape reads dig's "+noall +comments +question +answer" output: the
// header, the question's name and the answer's owners in their case.
func digShape(out string) shape {
	s := shape{reply: true, edns: "none"}
	var answer []string
	section := ""
	for line := range strings.Lines(out) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, ";; ->>HEADER<<-"):
			if _, st, ok := strings.Cut(line, "status: "); ok {
				s.rcode, _, _ = strings.Cut(st, ",")
			}
		case strings.HasPrefix(line, ";; flags:"):
			f, _, _ := strings.Cut(strings.TrimPrefix(line, ";; flags:"), ";")
			var flags []string
			for _, w := range strings.Fields(f) {
				if slices.Contains([]string{"aa", "tc", "ra", "ad"}, w) {
					flags = append(flags, w)
				}
			}
			s.flags = strings.Join(flags, " ")
		case strings.HasPrefix(line, "; EDNS:"):
			// "; EDNS: version: 0, flags: do; udp: 1232"
			var v uint8
			var size uint16
			fmt.Sscanf(line[strings.Index(line, "version:"):], "version: %d", &v)
			if i := strings.Index(line, "udp: "); i >= 0 {
				fmt.Sscanf(line[i:], "udp: %d", &size)
			}
			_, fl, _ := strings.Cut(line, "flags:")
			fl, _, _ = strings.Cut(fl, ";")
			s.edns = ednsString(v, slices.Contains(strings.Fields(fl), "do"), size)
		case strings.HasPrefix(line, ";; QUESTION SECTION"):
			section = "question"
		case strings.HasPrefix(line, ";; ANSWER SECTION"):
			section = "answer"
		case line == "" || strings.HasPrefix(line, ";;"):
		case section == "question":
			s.question = strings.Fields(strings.TrimPrefix(line, ";"))[0]
		case section == "answer":
			f := strings.Fields(line)
			answer = append(answer, f[0]+" "+f[3])
		}
	}
	s.answer = strings.Join(answer, ", ")
	s.authority = "(not read)"
	return s
}

// pendingI13 are the cases whose outcome the fixes of issue 13's table
// change, by the row, while those fixes are not merged here: their
// differences are logged, not failed. A row leaves this list when its fix
// lands, and its cases then match the reference or are listed in
// conformanceDifferences with the right-hand column.
var pendingI13 = map[string]string{}

// conformanceDifferences are the differences from stock file that are
// right, or harmless, each with its reason; docs/conformance.md explains
// them with their RFC sections.
var conformanceDifferences = []difference{
	// Against stock CoreDNS file.
	{against: "file", q: "*", field: "authority", th: "", ref: "example.org. NS",
		reason: "an answer from the tailnet has no NS RRset in authority; file adds the apex NS to every positive answer. " +
			"RFC 1034 §4.3.2 (steps 3.a and 6) does not ask for it, resolvers already hold the NS from the delegation, " +
			"and it is what BIND's minimal-responses leaves out"},
	{against: "file", q: "*", field: "authority", th: "", ref: "64.100.in-addr.arpa. NS",
		reason: "as for example.org: an answer from the tailnet's reverse zone has no NS RRset in authority"},
	{against: "file", q: "apex ANY", field: "answer", th: "example.org. SOA, example.org. NS hub.example.org.", ref: "",
		reason: "RFC 8482 §4.1: an ANY query may be answered with a subset of the name's RRsets; tailnet gives the two it owns " +
			"at the apex. file's NODATA says the name has no records at all, which is wrong for an ANY query at a name that has some"},
	{against: "file", q: "apex ANY", field: "authority", th: "", ref: "example.org. SOA",
		reason: "the SOA of file's NODATA; tailnet's answer is positive"},
	{against: "file", q: "host ANY", field: "answer", th: "hub.example.org. A, hub.example.org. AAAA", ref: "",
		reason: "RFC 8482 §4.1, as at the apex: tailnet gives the host's A and AAAA RRsets"},
	{against: "file", q: "host ANY", field: "authority", th: "", ref: "example.org. SOA",
		reason: "the SOA of file's NODATA; tailnet's answer is positive"},
	{against: "file", q: "0x20 host", field: "answer", th: "HuB.ExAmPlE.oRg. A", ref: "hub.example.org. A",
		reason: "tailnet writes the owner as the query wrote it, file as the zone does; names compare without case " +
			"(RFC 4343 §3), and a 0x20 resolver checks the question, which both echo as sent"},
	{against: "file", q: "0x20 below host", field: "answer", th: "GraFana.hUb.example.ORG. A", ref: "grafana.hub.example.org. A",
		reason: "as for 0x20 host; file writes the wildcard's expansion in the zone's case"},
	{against: "file", q: "NOTIFY", field: "reply", th: "NOTIMP [] an:  | ns:  | edns: none", ref: "no reply",
		reason: "tailhorizon is nobody's secondary: NOTIMP ends the sender's NOTIFY transaction at once (RFC 1996 §3.12), where " +
			"NOERROR would say it was accepted; file ignores a NOTIFY from a host that is not its primary (RFC 1996 §3.10), " +
			"and the sender retries until it gives up. Neither takes the NOTIFY"},
	{against: "file", target: "device-knot", q: "public ANY", field: "answer", th: "www.example.org. A", ref: "",
		reason: "the public answer is knot's, one RRset (RFC 8482 §4.1), which fallback passes on; file answers NODATA"},
	{against: "file", target: "device-knot", q: "public ANY", field: "authority", th: "", ref: "example.org. SOA",
		reason: "the SOA of file's NODATA"},
	{against: "file", target: "device-knot", q: "0x20 public", field: "answer", like: sameName,
		reason: "the public answer is knot's, which writes the owner as the query wrote it; harmless (RFC 4343 §3)"},

	// Against Knot DNS (knotd 3.2), where tailhorizon or CoreDNS does
	// otherwise.
	{against: "knot", q: "*", field: "authority", th: "example.org. NS", ref: "",
		reason: "a public answer comes from CoreDNS file, which adds the apex NS to positive answers; knot, like tailnet, does not. " +
			"Optional either way (RFC 1034 §4.3.2)"},
	{against: "knot", q: "*", field: "edns", like: ednsSizeOnly,
		reason: "the UDP size in a reply's OPT: CoreDNS writes the query's, knot its own (1232). RFC 6891 " +
			"makes it the responder's, but a client reads it only as a hint for its next queries, and the replies fit either"},
	{against: "knot", q: "huge TXT EDNS 4096", field: "tcp", th: "false", ref: "true",
		reason: "knot sends at most 1232 octets over UDP whatever the query offers (its default, after DNS Flag Day 2020), so the " +
			"1500-octet answer is truncated and kdig asks again over TCP; CoreDNS fills the 4096 the query offers. Both deliver it whole"},
	{against: "knot", q: "apex ANY", field: "answer", th: "example.org. SOA, example.org. NS hub.example.org.", ref: "example.org. A",
		reason: "RFC 8482 §4.1: a subset of the RRsets; tailnet gives those it owns, knot one of them"},
	{against: "knot", q: "host ANY", field: "answer", th: "hub.example.org. A, hub.example.org. AAAA", ref: "hub.example.org. A",
		reason: "RFC 8482 §4.1: a subset of the RRsets; tailnet gives the A and AAAA, knot the first RRset only"},
	{against: "knot", q: "public ANY", field: "answer", th: "", ref: "www.example.org. A",
		reason: "a public name's ANY goes to the public zone, CoreDNS file, which answers NODATA (see the file table); knot gives one RRset"},
	{against: "knot", q: "public ANY", field: "authority", th: "example.org. SOA", ref: "",
		reason: "the SOA of file's NODATA"},
	{against: "knot", q: "NOTIFY", field: "rcode", th: "NOTIMP", ref: "NOTAUTH",
		reason: "both turn the NOTIFY down: tailhorizon is nobody's secondary (RFC 1996 §3.12), knot is not this zone's secondary " +
			"and says the sender is not authorised"},
	{against: "knot", q: "AXFR udp", field: "rcode", th: "REFUSED", ref: "NOTIMP",
		reason: "both refuse a transfer none is configured for (RFC 5936 §2.2); knot does no AXFR over UDP at all (RFC 5936 defines none)"},
	{against: "knot", q: "AXFR tcp", field: "rcode", th: "REFUSED", ref: "NOTAUTH",
		reason: "both refuse a transfer none is configured for; REFUSED is RFC 5936 §2.2's word, knot's NOTAUTH says not authorised"},
	{against: "knot", q: "IXFR udp", field: "rcode", th: "REFUSED", ref: "NOTAUTH",
		reason: "as AXFR over TCP (RFC 1995)"},
	{against: "knot", q: "IXFR tcp", field: "rcode", th: "REFUSED", ref: "NOTAUTH",
		reason: "as AXFR over TCP"},
	{against: "knot", q: "UPDATE", field: "rcode", th: "NOTIMP", ref: "NOTAUTH",
		reason: "both turn the update down (RFC 2136): CoreDNS does not do updates, knot does them but not for this client"},
	{against: "knot", q: "QDCOUNT 2", field: "reply", th: "FORMERR [] an:  | ns:  | edns: none", ref: "no reply",
		reason: "RFC 9619 lets a responder answer FORMERR to more than one question, or drop it as knot does"},
	{against: "knot", q: "0x20 public", field: "answer", like: sameName,
		reason: "knot writes every owner as the query wrote it; a public answer comes from CoreDNS file, in the zone's case. " +
			"Harmless (RFC 4343 §3); the question is echoed as sent by all"},
	{against: "knot", q: "0x20 apex", field: "answer", like: sameName,
		reason: "tailnet writes the apex SOA's owner as the zone's name, not as the query wrote it (unlike its hosts); harmless (RFC 4343 §3)"},
}

// TestConformanceDocs: docs/conformance.md has a row for every listed
// difference, naming its case (or, for one of every case, its field),
// in any case.
func TestConformanceDocs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "docs", "conformance.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := strings.Cut(string(b), "## Differences")
	table, _, _ = strings.Cut(table, "\n## ")
	var rows []string
	for line := range strings.Lines(table) {
		if strings.HasPrefix(line, "| ") {
			rows = append(rows, line)
		}
	}
	for _, d := range conformanceDifferences {
		want := d.q
		if d.q == "*" {
			want = d.field
		}
		if !slices.ContainsFunc(rows, func(r string) bool { return strings.Contains(strings.ToLower(r), strings.ToLower(want)) }) {
			t.Errorf("docs/conformance.md: no row of the Differences table names %q (%s: %s)", want, d.q, d.field)
		}
	}
}
