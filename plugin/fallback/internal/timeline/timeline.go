// Package timeline keeps fallback's bounded record of which source
// answered each name, and the recent switches between them.
package timeline

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tailhorizon/tailhorizon/internal/policy"
	"github.com/tailhorizon/tailhorizon/internal/trace"
	"github.com/tailhorizon/tailhorizon/plugin/fallback/internal/ede"
)

// Len is how many source switches a Timeline keeps.
const Len = 100

// Names bounds the names whose last source a Timeline remembers: names
// come from clients, so past it new names are not followed.
const Names = 10000

// Timeline remembers the last source that answered each name, and the
// last Len changes of it. The zero value is ready; it is safe for
// concurrent use, and a query whose name keeps its source takes no lock.
type Timeline struct {
	last  sync.Map // name -> string, the source that last answered it
	names atomic.Int64

	mu sync.Mutex
	// mu guards the following fields.
	ring [Len]trace.Switch
	n    int // switches recorded so far; the newest is ring[(n-1)%Len]
}

// Note records that source answered name, and why the sources before it
// passed it on (d, nil for none), if that changes its source.
func (tl *Timeline) Note(name, source string, d *policy.Decision) {
	if v, ok := tl.last.Load(name); ok {
		if v.(string) == source {
			return
		}
		tl.last.Store(name, source)
		tl.add(trace.Switch{At: time.Now(), Name: name, From: v.(string), To: source, Why: ede.Passed(d)})
		return
	}
	if tl.names.Add(1) > Names {
		tl.names.Add(-1)
		return
	}
	if _, loaded := tl.last.LoadOrStore(name, source); !loaded {
		tl.add(trace.Switch{At: time.Now(), Name: name, To: source, Why: ede.Passed(d)})
	}
}

func (tl *Timeline) add(s trace.Switch) {
	tl.mu.Lock()
	tl.ring[tl.n%Len] = s
	tl.n++
	tl.mu.Unlock()
}

// Followed returns how many names tl follows, at most Names.
func (tl *Timeline) Followed() int { return int(tl.names.Load()) }

// Switches returns the recorded switches, newest first.
func (tl *Timeline) Switches() []trace.Switch {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out := make([]trace.Switch, 0, min(tl.n, Len))
	for i := tl.n - 1; i >= 0 && i >= tl.n-Len; i-- {
		out = append(out, tl.ring[i%Len])
	}
	return out
}
