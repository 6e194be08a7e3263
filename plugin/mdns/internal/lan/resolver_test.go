package lan

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// noInterface names an interface that does not exist, so that a started
// resolver never opens a socket: unit tests never touch multicast.
const noInterface = "th-none0"

func TestAcquireRelease(t *testing.T) {
	a := &Options{Interfaces: []string{noInterface}, Size: 10000, MaxTTL: 2 * time.Minute, Window: 300 * time.Millisecond}
	b := &Options{Interfaces: []string{noInterface}, Size: 20000, MaxTTL: 2 * time.Minute, Window: time.Second}
	ra := Acquire(a)
	rb := Acquire(b)
	if ra != rb {
		t.Fatal("two instances with the same interfaces got two resolvers; want one shared")
	}
	if ra.Listening() {
		t.Error("listening without an interface")
	}
	ra.mu.Lock()
	window := ra.window
	ra.mu.Unlock()
	if window != time.Second {
		t.Errorf("lookup window = %s; want the largest timeout, 1s", window)
	}
	Release(a)
	if ra.ctx.Err() != nil {
		t.Error("the resolver stopped while b still uses it")
	}
	Release(b) // waits for its goroutines
	if ra.ctx.Err() == nil {
		t.Error("the resolver still runs after its last release")
	}
	// The registry no longer holds it: the next Acquire starts another.
	rc := Acquire(a)
	defer Release(a)
	if rc == ra {
		t.Error("the registry still holds the resolver after its last release")
	}
}

// TestReloadLowers: a reload that lowers size, max_ttl or timeout lowers
// them on the shared resolver once the old instance lets it go; a smaller
// cache evicts its least recently used hosts at once, and counts them.
func TestReloadLowers(t *testing.T) {
	old := &Options{Interfaces: []string{noInterface}, Size: 50, MaxTTL: 10 * time.Minute, Window: time.Second, NegTTL: 30 * time.Second}
	r := Acquire(old)
	for i := range 50 {
		r.cache.learn(fmt.Sprintf("h%d", i), []Record{rec("198.18.1.20", 120)}, true, false, time.Now())
	}
	settings := func() (int, time.Duration, time.Duration, time.Duration) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.cache.mu.Lock()
		defer r.cache.mu.Unlock()
		return r.cache.size, r.maxTTL, r.window, r.cache.negTTL
	}
	// The reload: the new instance acquires before the old one releases.
	reloaded := &Options{Interfaces: []string{noInterface}, Size: 20, MaxTTL: time.Minute, Window: 300 * time.Millisecond, NegTTL: 10 * time.Second}
	if Acquire(reloaded) != r {
		t.Fatal("the reloaded instance got another resolver; want the shared one")
	}
	if size, maxTTL, window, negTTL := settings(); size != 50 || maxTTL != 10*time.Minute || window != time.Second || negTTL != 10*time.Second {
		t.Errorf("during the reload: size %d, max_ttl %s, window %s, negative TTL %s; want 50, 10m, 1s, 10s", size, maxTTL, window, negTTL)
	}
	evicted := testutil.ToFloat64(evictions.WithLabelValues(r.key))
	Release(old)
	defer Release(reloaded)
	if size, maxTTL, window, negTTL := settings(); size != 20 || maxTTL != time.Minute || window != 300*time.Millisecond || negTTL != 10*time.Second {
		t.Errorf("after the reload: size %d, max_ttl %s, window %s, negative TTL %s; want 20, 1m, 300ms, 10s", size, maxTTL, window, negTTL)
	}
	if got := r.Len(); got != 20 {
		t.Errorf("cache holds %d hosts after the reload; want the new size, 20", got)
	}
	for _, h := range []string{"h30", "h49"} {
		if !r.cache.has(h) {
			t.Errorf("%s, among the 20 most recently used, was evicted", h)
		}
	}
	for _, h := range []string{"h0", "h29"} {
		if r.cache.has(h) {
			t.Errorf("%s, not among the 20 most recently used, was kept", h)
		}
	}
	if got := testutil.ToFloat64(evictions.WithLabelValues(r.key)) - evicted; got != 30 {
		t.Errorf("evictions_total grew by %v; want 30", got)
	}
}

func TestMaintainReturnsNilOnCancel(t *testing.T) {
	r := New(Options{Interfaces: []string{noInterface}, Size: 10, MaxTTL: time.Minute, Window: time.Second}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	r.ctx = ctx
	cancel()
	if err := r.maintain(ctx, []string{noInterface}); err != nil {
		t.Errorf("maintain = %v; want nil", err)
	}
	if err := r.browseLoop(ctx); err != nil {
		t.Errorf("browseLoop = %v; want nil", err)
	}
}

func TestPickInterfacesNamed(t *testing.T) {
	if got := pickInterfaces([]string{noInterface}); len(got) != 0 {
		t.Errorf("pickInterfaces(%s) = %v; want none", noInterface, got)
	}
	for _, ifc := range pickInterfaces([]string{"lo"}) {
		t.Errorf("pickInterfaces(lo) = %v; want none: loopback is never asked", ifc.name)
	}
}

// TestAnswerDuringSendArmsNoRetry: an answer that ends a lookup before its
// send returns leaves no retry timer behind (a flood of such answers piled
// them up for half a window each).
func TestAnswerDuringSendArmsNoRetry(t *testing.T) {
	r := newFakeLAN().resolver(time.Hour) // it answers beta, both families, within send
	f := r.lookup("beta", reasonMiss)
	if !isClosed(f.done) || f.retry != nil {
		t.Errorf("lookup ended = %v, retry armed = %v; want ended, none", isClosed(f.done), f.retry != nil)
	}
}

// ask finds host as the plugin's handler does: from the cache, or after
// waiting on its lookup.
func ask(r *Resolver, host string) *HostRecs {
	if recs := r.Cached(host); recs != nil {
		return recs
	}
	if f := r.Lookup(host); f != nil {
		<-f.Done()
	}
	return r.Cached(host)
}

func TestExpiryAndRefresh(t *testing.T) {
	lan := newFakeLAN()
	r := lan.resolver(10 * time.Millisecond)
	ask(r, "beta")
	steps := []struct {
		name        string
		advance     time.Duration
		wantLookups int
		wantRefresh bool
	}{
		{"fresh: from the cache", 60 * time.Second, 1, false},
		{"past 80% of the TTL: answered, and a refresh asked for", 40 * time.Second, 1, true},
		{"again: the refresh is asked for once", time.Second, 1, false},
		{"expired: looked up again", 30 * time.Second, 2, false},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			lan.advance(s.advance)
			if recs := ask(r, "beta"); recs == nil || len(recs.V4) != 1 || recs.V4[0].Expires <= r.Now() {
				t.Fatalf("records = %+v; want one valid A", recs)
			}
			if got := lan.lookups("beta"); got != s.wantLookups {
				t.Errorf("lookups = %d; want %d", got, s.wantLookups)
			}
			refresh := false
			select {
			case h := <-r.refreshCh:
				refresh = h == "beta"
			default:
			}
			if refresh != s.wantRefresh {
				t.Errorf("refresh asked = %v; want %v", refresh, s.wantRefresh)
			}
		})
	}
}

// TestOneFamily: a host with one family ends the lookup's wait for the
// other at once when its responder says so with NSEC (RFC 6762 §6.1),
// and grace after the first answer when it does not; meanwhile its entry
// is Pending, so that a query for the missing type waits instead of
// getting NODATA before the other family had its chance.
func TestOneFamily(t *testing.T) {
	cases := []struct {
		name string
		recs []Record
	}{
		{"with NSEC", []Record{rec("198.18.1.30", 120), NSEC(false, true)}},
		{"without NSEC", []Record{rec("198.18.1.30", 120)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newFakeLAN().resolver(time.Hour) // only an answer ends the lookup
			r.query = func(string, bool) error { return nil }
			f := r.Lookup("printer")
			r.Learn("printer", c.recs)
			if !isClosed(f.Wait(dns.TypeA)) {
				t.Error("the wait for A did not end on the A record")
			}
			nsec := len(c.recs) == 2
			if got := isClosed(f.Done()); got != nsec {
				t.Errorf("lookup ended at once = %v; want %v", got, nsec)
			}
			if recs := r.Cached("printer"); recs == nil || recs.Pending == nsec {
				t.Errorf("entry %+v; want Pending %v", recs, !nsec)
			}
			select {
			case <-f.Done(): // grace, never the hour-long window
			case <-time.After(10 * time.Second):
				t.Fatal("the lookup did not end after its first answer")
			}
			if !isClosed(f.Wait(dns.TypeAAAA)) && nsec {
				t.Error("the wait for AAAA did not end on the NSEC")
			}
			recs := r.Cached("printer")
			if recs == nil || recs.Pending || recs.Has(dns.TypeAAAA) || !recs.Has(dns.TypeA) {
				t.Errorf("after the lookup: %+v; want the A, no AAAA, not pending", recs)
			}
		})
	}
}

// TestBothFamiliesInOnePacket: A and AAAA in one answer end the lookup at
// once and make one entry, never Pending.
func TestBothFamiliesInOnePacket(t *testing.T) {
	r := newFakeLAN().resolver(time.Hour) // the fake LAN answers beta with both, within send
	f := r.Lookup("beta")
	if !isClosed(f.Done()) {
		t.Fatal("the lookup still waits after both families came")
	}
	if recs := r.Cached("beta"); recs == nil || recs.Pending || !recs.Has(dns.TypeA) || !recs.Has(dns.TypeAAAA) {
		t.Errorf("beta: %+v; want A and AAAA, not pending", recs)
	}
}
