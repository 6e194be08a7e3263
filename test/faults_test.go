package test

import (
	"context"
	"math"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// The fault tests (issue 6) break what the tailnet plugin depends on while
// clients keep asking, on the real tailnet rig. Run them together with
// -run TestFault.

// Outcomes of one query for a name whose expected address is known.
const (
	live   = "live"   // the expected address with a full TTL
	stale  = "stale"  // the expected address with a TTL of at most 5: tailscaled is gone
	public = "public" // the next plugin's answer: the name fell through
	failed = "error"  // no answer at all: a timeout or a network error
)

// maxStaleTTL is the TTL cap of answers from a lost tailscaled's table
// (plugin/tailnet staleTTL).
const maxStaleTTL = 5

// target is a name the load asks for and the address that answers it.
type target struct {
	name string
	addr netip.Addr
}

// classify names the outcome of one A query for tg.
func classify(r *dns.Msg, err error, tg target) string {
	switch {
	case err != nil:
		return failed
	case r.Rcode != dns.RcodeSuccess:
		return dns.RcodeToString[r.Rcode] // SERVFAIL, NXDOMAIN, ...
	case fellThrough(r):
		return public
	case !hasA(r, tg.addr):
		return "other: " + strings.Join(answers(r), ", ")
	case r.Answer[0].Header().Ttl <= maxStaleTTL:
		return stale
	default:
		return live
	}
}

// Load shape: a few clients, each asking its next question a moment after
// the last answer, so they watch every state change without hogging the
// two shared cores under -race.
const (
	loadWorkers = 4
	loadPause   = 10 * time.Millisecond
	loadTimeout = time.Second // a query unanswered for this long counts as failed
	loadLimit   = time.Minute // a load stops by itself after this
	loadMax     = 10000       // and after this many queries per worker
)

// run is a stretch of one outcome, in the order one worker saw them.
type run struct {
	outcome string
	n       int
	first   time.Time // when the run's first answer (or failure) arrived
}

// load asks for targets from loadWorkers goroutines, round robin, until
// stop. Each worker waits for its answer before asking again, so its runs
// are in the order the server's states followed each other.
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	runs [loadWorkers][]run // guarded by mu
}

// startLoad starts a load on server; it is stopped when t ends at the latest.
func startLoad(t *testing.T, server string, targets ...target) *load {
	ctx, cancel := context.WithTimeout(context.Background(), loadLimit)
	l := &load{cancel: cancel}
	for i := range loadWorkers {
		l.wg.Go(func() {
			c := &dns.Client{Timeout: loadTimeout}
			for q := 0; q < loadMax && ctx.Err() == nil; q++ {
				tg := targets[(i+q)%len(targets)]
				r, _, err := c.Exchange(new(dns.Msg).SetQuestion(dns.Fqdn(tg.name), dns.TypeA), server)
				l.add(i, classify(r, err, tg))
				select {
				case <-ctx.Done():
				case <-time.After(loadPause):
				}
			}
		})
	}
	t.Cleanup(l.stop)
	return l
}

func (l *load) add(worker int, outcome string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rs := l.runs[worker]
	if len(rs) > 0 && rs[len(rs)-1].outcome == outcome {
		rs[len(rs)-1].n++
		return
	}
	l.runs[worker] = append(rs, run{outcome: outcome, n: 1, first: time.Now()})
}

// stop ends the load and waits for its workers; it may be called again.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// waitAll waits up to limit until every worker's latest answer is outcome.
func (l *load) waitAll(t *testing.T, outcome string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		l.mu.Lock()
		all := true
		for _, rs := range l.runs {
			all = all && len(rs) > 0 && rs[len(rs)-1].outcome == outcome
		}
		l.mu.Unlock()
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every client got %s within %s: %v", outcome, limit, l.totals())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// totals counts the outcomes of all workers.
func (l *load) totals() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[string]int{}
	for _, rs := range l.runs {
		for _, r := range rs {
			m[r.outcome] += r.n
		}
	}
	return m
}

// checkSequence checks that every worker saw exactly the outcomes want, in
// that order: anything else, a SERVFAIL or a timeout included, fails.
func (l *load) checkSequence(t *testing.T, want ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, rs := range l.runs {
		var got []string
		for _, r := range rs {
			got = append(got, r.outcome)
		}
		if !slices.Equal(got, want) {
			t.Errorf("client %d saw %q; want %q", i, got, want)
		}
	}
}

// began returns how long after t0 the workers' last run of outcome began,
// for the first worker to see it and for the last one.
func (l *load) began(outcome string, t0 time.Time) (earliest, latest time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	earliest = math.MaxInt64
	for _, rs := range l.runs {
		for i := len(rs) - 1; i >= 0; i-- {
			if rs[i].outcome == outcome {
				d := rs[i].first.Sub(t0)
				earliest, latest = min(earliest, d), max(latest, d)
				break
			}
		}
	}
	return earliest, latest
}

// TestFaultTailscaledRestart kills tailscaled's socket under load and
// brings it back, once within the stale period and once after it: clients
// get the stale table, then the next plugin's answer, never a SERVFAIL or
// a timeout, and live answers within 2s of the restart.
func TestFaultTailscaledRestart(t *testing.T) {
	const stalePeriod = 2 * time.Second
	w := startWorld(t, stalePeriod)
	targets := []target{{"hub.example.org", w.hub.IPv4}, {"alpha.example.org", w.alpha.IPv4}}
	cases := []struct {
		name string
		want []string // what every client sees; the next to last is what it sees at the restart
	}{
		{"back within the stale period", []string{live, stale, live}},
		{"back after the stale period", []string{live, stale, public, live}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := startLoad(t, w.dns, targets...)
			l.waitAll(t, live, 5*time.Second)
			w.api.Stop()
			stopped := time.Now()
			l.waitAll(t, c.want[len(c.want)-2], stalePeriod+5*time.Second)
			if err := w.api.Start(); err != nil {
				t.Fatal(err)
			}
			restarted := time.Now()
			l.waitAll(t, live, 10*time.Second)
			time.Sleep(200 * time.Millisecond) // and they stay live
			l.stop()
			l.checkSequence(t, c.want...)
			if slices.Contains(c.want, public) {
				first, last := l.began(public, stopped)
				t.Logf("fell through %s to %s after the stop", ms(first), ms(last))
				if first < stalePeriod {
					t.Errorf("a client got the next plugin's answer %s after the stop; want the stale table for %s", first, stalePeriod)
				}
			}
			earliest, latest := l.began(live, restarted)
			t.Logf("down for %s; live again %s to %s after the restart; outcomes %v",
				ms(restarted.Sub(stopped)), ms(earliest), ms(latest), l.totals())
			if latest > 2*time.Second {
				t.Errorf("a client got live answers only %s after the restart; want within 2s", latest)
			}
		})
	}
}

// TestFaultControlDown stops the control server under load and starts it
// again: the node keeps its last netmap, so every peer keeps answering its
// tailnet address with a full TTL, and once control is back, changes flow
// again.
func TestFaultControlDown(t *testing.T) {
	const down = 3 * time.Second // several of the nodes' reconnect attempts
	w := startWorld(t, time.Minute)
	l := startLoad(t, w.dns,
		target{"alpha.example.org", w.alpha.IPv4},
		target{"registry-box.example.org", w.box.IPv4},
		target{"beta.example.org", w.beta.IPv4})
	l.waitAll(t, live, 5*time.Second)
	w.net.StopControl()
	time.Sleep(down)
	if w.hub.Server.Sys().HealthTracker.Get().GetInPollNetMap() {
		t.Errorf("hub still in a map poll %s after control stopped", down)
	}
	if err := w.net.StartControl(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	// tailscale's control client retries with a growing backoff: some 7s.
	for _, n := range []*tailnettest.Node{w.hub, w.beta} {
		for !n.Server.Sys().HealthTracker.Get().GetInPollNetMap() {
			if time.Since(restarted) > 30*time.Second {
				t.Fatalf("%s not back in a map poll 30s after control came back", n.Hostname)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("hub and beta back in a map poll %s after control came back", ms(time.Since(restarted)))
	l.stop()
	l.checkSequence(t, live)
	t.Logf("outcomes with control down for %s, then back: %v", down, l.totals())

	w.beta.Close()
	took := waitFor(t, 10*time.Second, "beta falls through", func() *dns.Msg {
		return exchange(t, w.dns, "beta.example.org", dns.TypeA)
	}, fellThrough)
	t.Logf("beta fell through %s after it left", ms(took))
}

// TestFaultPeerFlap flips beta online and offline at control 100 times under
// load, each flip pushed to the node coredns watches as a real netmap:
// every flip shows in the answers, the last state wins, and neither
// goroutines nor the heap grow. Probing is off: beta answers its pings
// throughout, which would outvote control (TestProbeOutvotesControl).
func TestFaultPeerFlap(t *testing.T) {
	const flaps = 100
	w := startWorld(t, time.Minute, "probe off")
	beta := target{"beta.example.org", w.beta.IPv4}
	ask := func() *dns.Msg { return exchange(t, w.dns, beta.name, dns.TypeA) }
	isLive := func(r *dns.Msg) bool { return classify(r, nil, beta) == live }
	flap := func() {
		w.net.SetOnline(w.beta, false)
		waitFor(t, 5*time.Second, "beta falls through", ask, fellThrough)
		w.net.SetOnline(w.beta, true)
		waitFor(t, 5*time.Second, "beta answered again", ask, isLive)
	}
	flap() // warm up: the first flip makes what later ones reuse
	heap, goroutines := steadyHeap(), runtime.NumGoroutine()

	l := startLoad(t, w.dns, beta)
	start := time.Now()
	for range flaps {
		flap()
	}
	took := time.Since(start)
	// A burst of flips that control coalesces, ending offline: the last wins.
	for i := range flaps + 1 {
		w.net.SetOnline(w.beta, i%2 == 1)
	}
	l.waitAll(t, public, 5*time.Second)
	time.Sleep(200 * time.Millisecond) // a late map must not bring beta back
	if r := ask(); !fellThrough(r) {
		t.Errorf("beta after the burst: %v; want the next plugin's answer", answers(r))
	}
	l.stop()
	got := l.totals()
	t.Logf("%d flaps in %s (%s each); outcomes %v", flaps, ms(took), ms(took/flaps), got)
	if len(got) != 2 || got[live] == 0 || got[public] == 0 {
		t.Errorf("outcomes %v; want only %s and %s", got, live, public)
	}

	// The load's goroutines are gone; tailscale's come and go.
	g := settle(t, "goroutines", func() int { return runtime.NumGoroutine() }, goroutines+goroutineSlack)
	h := steadyHeap()
	t.Logf("goroutines %d -> %d; heap %.1f -> %.1f MiB", goroutines, g, mib(heap), mib(h))
	if h > heap+heapSlack {
		t.Errorf("heap grew from %.1f to %.1f MiB over %d flaps; want at most %.0f MiB more", mib(heap), mib(h), flaps, mib(heapSlack))
	}
}

// TestFaultReload reloads the Corefile 100 times under load, 20ms apart,
// alternating an alias so that each reload changes something: each takes
// effect at once, at most a few queries in the instants of the swaps go
// unanswered, and no goroutine or socket is left behind.
func TestFaultReload(t *testing.T) {
	const reloads = 100
	// At most this many queries may go unanswered over all reloads: one
	// caught in flight on the old server as it stops, now and then.
	const maxLost = reloads / 10
	w := startWorld(t, time.Minute)
	auth := startAuthority(t)
	corefile := fallbackCorefile(w.api.Path, auth) // fallback's proxies, over forward's
	configs := []struct {
		corefile string
		registry netip.Addr // what the alias answers
	}{
		{corefile, w.beta.IPv4},
		{strings.Replace(corefile, "alias registry beta", "alias registry hub", 1), w.hub.IPv4},
	}
	inst := w.coredns
	t.Cleanup(func() { inst.Stop(); inst.ShutdownCallbacks() }) // the last one
	reload := func(i int) {
		c := configs[i%len(configs)]
		next, err := inst.Restart(caddy.CaddyfileInput{Contents: []byte(c.corefile), Filepath: "Corefile", ServerTypeName: "dns"})
		if err != nil {
			t.Fatalf("reload %d: %v", i, err)
		}
		inst = next
		if addr := inst.Servers()[0].LocalAddr().String(); addr != w.dns {
			t.Fatalf("reload %d moved the server from %s to %s", i, w.dns, addr)
		}
		if r := exchange(t, w.dns, "registry.example.org", dns.TypeA); !hasA(r, c.registry) {
			t.Fatalf("registry after reload %d: %v; want %s at once", i, answers(r), c.registry)
		}
	}
	reload(1) // warm up: fallback's proxies and metrics now exist
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)

	l := startLoad(t, w.dns, target{"hub.example.org", w.hub.IPv4}, target{"blog.example.org", netip.MustParseAddr(vpsIPv4)})
	l.waitAll(t, live, 5*time.Second)
	start := time.Now()
	for i := range reloads {
		reload(i)
		time.Sleep(20 * time.Millisecond) // a couple of queries per client between reloads
	}
	took := time.Since(start)
	time.Sleep(100 * time.Millisecond)
	l.stop()
	got := l.totals()
	t.Logf("%d reloads in %s; outcomes %v", reloads, ms(took), got)
	for o, n := range got {
		if o != live && o != failed {
			t.Errorf("%d answers %q; want only %s ones (or %s)", n, o, live, failed)
		}
	}
	if got[failed] > maxLost {
		t.Errorf("%d queries unanswered over %d reloads; want at most %d", got[failed], reloads, maxLost)
	}

	g := settle(t, "goroutines", func() int { return runtime.NumGoroutine() }, goroutines+goroutineSlack)
	f := settle(t, "open files", func() int { return openFDs(t) }, fds+fdSlack)
	t.Logf("goroutines %d -> %d; open files %d -> %d", goroutines, g, fds, f)
}

// Leak tolerances. A leak per flap or per reload shows as 100 or more;
// the slack covers tailscale's own comings and goings (DERP and disco
// timers, netcheck, sockets of the control client's retries) and the
// test's exchanges.
const (
	goroutineSlack = 10
	fdSlack        = 10
	heapSlack      = 8 << 20
)

// settle waits up to 5s until measure is at most limit and returns its
// last value; it fails t if it stays above. It collects garbage while it
// waits: a forward proxy (fallback's upstreams are forward's) stops its
// connection manager, and closes the upstream sockets that one caches,
// only from its finalizer, so each reload leaves one goroutine and a few
// sockets per upstream behind until the next GC.
func settle(t *testing.T, what string, measure func() int, limit int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		n := measure()
		if n <= limit {
			return n
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: %d after 5s; want at most %d", what, n, limit)
			if what == "goroutines" {
				buf := make([]byte, 1<<20)
				t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
			}
			return n
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("count open files: %v", err)
	}
	return len(ents)
}

// steadyHeap returns the bytes of live heap objects after a collection,
// once they stop shrinking: what an earlier test in the process left
// behind can take a few hundred milliseconds to go (it once weighed 110 MiB).
func steadyHeap() uint64 {
	h := heapAfterGC()
	for range 15 { // 3s at most
		time.Sleep(200 * time.Millisecond)
		next := heapAfterGC()
		if next+1<<20 > h {
			return next
		}
		h = next
	}
	return h
}

func heapAfterGC() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
