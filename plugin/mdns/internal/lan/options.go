package lan

import (
	"slices"
	"time"
)

// Options are the settings one plugin instance brings to the Resolver it
// shares. A Resolver runs with the Merge of the Options of its current
// users, computed again after every Acquire and Release, so that its
// settings follow reloads both up and down.
type Options struct {
	// Interfaces names the interfaces to ask and listen on; empty means
	// every one that is up, multicast-capable, not loopback and not
	// Tailscale's. It is the key: instances that list the same interfaces,
	// in the same order, share one Resolver.
	Interfaces []string
	Size       int           // the most hosts in the cache, unknown ones included; at least 1
	MaxTTL     time.Duration // cap on the TTL of a learnt record
	NegTTL     time.Duration // how long a host that did not answer stays unknown
	Window     time.Duration // how long a lookup waits for a first answer: the plugin's timeout
	Services   []string      // service types to browse, like "_workstation._tcp"; none for no browse
}

// Merge returns the settings a Resolver shared by users runs with: their
// Interfaces (the same for every user of one Resolver; the first user's),
// the largest Size, MaxTTL and Window, the smallest NegTTL but at least one
// second, and the union of their Services, sorted. It returns the zero
// Options for no users.
func Merge(users []*Options) Options {
	if len(users) == 0 {
		return Options{}
	}
	o := Options{Interfaces: slices.Clone(users[0].Interfaces), NegTTL: users[0].NegTTL}
	for _, u := range users {
		o.Size = max(o.Size, u.Size)
		o.MaxTTL = max(o.MaxTTL, u.MaxTTL)
		o.Window = max(o.Window, u.Window)
		o.NegTTL = min(o.NegTTL, u.NegTTL)
		o.Services = append(o.Services, u.Services...)
	}
	o.NegTTL = max(o.NegTTL, time.Second)
	slices.Sort(o.Services)
	o.Services = slices.Compact(o.Services)
	return o
}
