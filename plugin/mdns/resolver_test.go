package mdns

import (
	"context"
	"testing"
	"time"
)

// noInterface names an interface that does not exist, so that a started
// resolver never opens a socket: unit tests never touch multicast.
const noInterface = "th-none0"

func TestAcquireRelease(t *testing.T) {
	a, b := New(), New()
	a.conf.interfaces = []string{noInterface}
	b.conf.interfaces = []string{noInterface}
	b.conf.size, b.timeout = 20000, time.Second
	ra := acquire(a)
	rb := acquire(b)
	if ra != rb {
		t.Fatal("two instances with the same interfaces got two resolvers; want one shared")
	}
	if ra.listening() {
		t.Error("listening without an interface")
	}
	ra.mu.Lock()
	window := ra.window
	ra.mu.Unlock()
	if window != time.Second {
		t.Errorf("lookup window = %s; want the largest timeout, 1s", window)
	}
	release(a, ra)
	if ra.ctx.Err() != nil {
		t.Error("the resolver stopped while b still uses it")
	}
	release(b, rb) // waits for its goroutines
	if ra.ctx.Err() == nil {
		t.Error("the resolver still runs after its last release")
	}
	registry.Lock()
	n := len(registry.resolvers)
	registry.Unlock()
	if n != 0 {
		t.Errorf("registry holds %d resolvers after release; want 0", n)
	}
}

func TestMaintainReturnsNilOnCancel(t *testing.T) {
	r := newResolver(noInterface, config{size: 10, maxTTL: time.Minute}, time.Second)
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

func TestReady(t *testing.T) {
	m := New()
	if m.Ready() {
		t.Error("ready before OnStartup; want not ready")
	}
	m.conf.interfaces = []string{noInterface}
	res := acquire(m)
	m.res.Store(res)
	if m.Ready() {
		t.Error("ready without a multicast interface; want not ready")
	}
	m.res.Store(nil)
	release(m, res)
	m.res.Store(newFakeLAN().resolver(time.Second))
	if !m.Ready() {
		t.Error("not ready with a resolver that can ask; want ready")
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
