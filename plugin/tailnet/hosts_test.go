package tailnet

import (
	"testing"

	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
)

// TestHostKnown: the names mdns may ask the LAN for are the nodes in any
// state and the aliases, not tag names; they survive a snapshot taken
// while this node is not Running; before any table nothing is loaded.
func TestHostKnown(t *testing.T) {
	tn := newTestTailnet(nil, nil)
	if known, loaded := tn.HostKnown("hub"); known || loaded {
		t.Errorf("before any table: known %v, loaded %v; want false, false", known, loaded)
	}
	tn.update(testSnapshot())
	cases := []struct {
		label string
		want  bool
	}{
		{"hub", true},
		{"alpha", true}, // offline
		{"self", true},
		{"registry-box", true},
		{"registry", true}, // an alias of hub
		{"web", false},     // a tag name: several nodes, not a host
		{"git", false},     // an alias of a host the tailnet does not have
		{"blog", false},    // only in the public zone
		{"Hub", false},     // labels are lowercase
	}
	for _, c := range cases {
		t.Run(c.label, func(t *testing.T) {
			if known, loaded := tn.HostKnown(c.label); known != c.want || !loaded {
				t.Errorf("HostKnown(%q) = %v, %v; want %v, true", c.label, known, loaded, c.want)
			}
		})
	}
	tn.update(&watch.Snapshot{State: watch.Live}) // logged out: not Running, no nodes
	if known, loaded := tn.HostKnown("hub"); !known || !loaded {
		t.Errorf("after a logout: HostKnown(hub) = %v, %v; want the last names kept", known, loaded)
	}
}

func TestHostKnownAllocs(t *testing.T) {
	tn := newTestTailnet(testSnapshot(), nil)
	if n := testing.AllocsPerRun(100, func() { tn.HostKnown("blog") }); n != 0 {
		t.Errorf("HostKnown allocates %v times; want 0", n)
	}
}
