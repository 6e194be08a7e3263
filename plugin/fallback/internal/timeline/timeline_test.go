package timeline

import (
	"fmt"
	"testing"

	"github.com/tailhorizon/tailhorizon/internal/policy"
)

// TestNote: a name's first source and each change are switches, newest
// first, with why the sources before it passed the name on; a name that
// keeps its source is not.
func TestNote(t *testing.T) {
	offline := &policy.Decision{Allowed: policy.All}
	offline.Passed(policy.Tailnet, policy.Offline)
	steps := []struct {
		name, source string
		d            *policy.Decision
	}{
		{"hub.example.org.", "tailnet", nil},
		{"hub.example.org.", "tailnet", nil}, // no change
		{"hub.example.org.", "lan", offline},
		{"nas.example.org.", "lan", nil},
	}
	var tl Timeline
	for _, s := range steps {
		tl.Note(s.name, s.source, s.d)
	}
	want := []struct{ name, from, to, why string }{
		{"nas.example.org.", "", "lan", ""},
		{"hub.example.org.", "tailnet", "lan", "tailnet: node offline"},
		{"hub.example.org.", "", "tailnet", ""},
	}
	got := tl.Switches()
	if len(got) != len(want) {
		t.Fatalf("switches %+v; want %+v", got, want)
	}
	for i, w := range want {
		if g := got[i]; g.Name != w.name || g.From != w.from || g.To != w.to || g.Why != w.why {
			t.Errorf("switch %d: %+v; want %+v", i, g, w)
		}
	}
}

// TestBounded: a Timeline keeps the last Len switches, and follows at most
// Names names.
func TestBounded(t *testing.T) {
	var tl Timeline
	for i := range Names + 10 {
		tl.Note(fmt.Sprintf("n%d.example.org.", i), "tailnet", nil)
	}
	if got := tl.Followed(); got != Names {
		t.Errorf("follows %d names; want %d", got, Names)
	}
	if got := tl.Switches(); len(got) != Len || got[0].Name != fmt.Sprintf("n%d.example.org.", Names-1) {
		t.Errorf("%d switches, newest %v; want %d, the last name followed first", len(got), got[0], Len)
	}
}
