package mdns

import (
	"testing"
	"time"

	"github.com/tailhorizon/tailhorizon/plugin/mdns/internal/lan"
)

// noInterface names an interface that does not exist, so that a started
// resolver never opens a socket: unit tests never touch multicast.
const noInterface = "th-none0"

func TestReady(t *testing.T) {
	m := New()
	if m.Ready() {
		t.Error("ready before OnStartup; want not ready")
	}
	m.opts.Interfaces = []string{noInterface}
	m.res.Store(lan.Acquire(&m.opts))
	if m.Ready() {
		t.Error("ready without a multicast interface; want not ready")
	}
	m.res.Store(nil)
	lan.Release(&m.opts)
	m.res.Store(newFakeLAN().resolver(time.Second))
	if !m.Ready() {
		t.Error("not ready with a resolver that can ask; want ready")
	}
}
