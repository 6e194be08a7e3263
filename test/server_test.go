package test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"

	"github.com/miekg/dns"
)

// startMu serializes starts: caddy's globals are not safe for parallel starts.
var startMu sync.Mutex

// startCoreDNS starts a Corefile in this process, as the coredns binary
// does, and returns the instance and the UDP address of its first server.
// The instance is stopped when the test ends.
func startCoreDNS(t testing.TB, corefile string) (*caddy.Instance, string) {
	t.Helper()
	startMu.Lock()
	caddy.Quiet, dnsserver.Quiet = true, true
	inst, err := caddy.Start(caddy.CaddyfileInput{Contents: []byte(corefile), Filepath: "Corefile", ServerTypeName: "dns"})
	startMu.Unlock()
	if err != nil {
		t.Fatalf("start coredns: %v", err)
	}
	t.Cleanup(func() { inst.Stop(); inst.ShutdownCallbacks() })
	srvs := inst.Servers()
	if len(srvs) == 0 || srvs[0].LocalAddr() == nil {
		t.Fatal("coredns started no UDP server")
	}
	return inst, srvs[0].LocalAddr().String()
}

// exchange asks server one question over UDP with the Go client.
func exchange(t testing.TB, server, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Timeout: 2 * time.Second}
	m := new(dns.Msg).SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	r, _, err := c.Exchange(m, server)
	if err != nil {
		t.Fatalf("query %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

// answers returns the answer section as "name ttl type data" strings,
// without the class, for readable comparisons.
func answers(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		f := strings.Fields(rr.String())
		out = append(out, strings.Join(slices.Delete(f, 2, 3), " ")) // without the class
	}
	return out
}

// waitFor asks until check passes on the answer, for at most limit, and
// returns how long that took.
func waitFor(t testing.TB, limit time.Duration, what string, ask func() *dns.Msg, check func(*dns.Msg) bool) time.Duration {
	t.Helper()
	start := time.Now()
	var last *dns.Msg
	for time.Since(start) < limit {
		if last = ask(); check(last) {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s; last answer:\n%v", what, limit, last)
	return 0
}
