// Package policy carries, in a query's context, which sources may answer
// the name asked: the tailnet, the LAN (mDNS) or the public zone. The
// fallback plugin decides it from its per-name rules; the tailnet and mdns
// plugins read it and record that they answered, so the decision is
// enforced where the answer is made and checked in one place.
//
// Plugins never import each other; this package is how they agree.
package policy

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Source is one place an answer can come from; Sources is a set of them.
type Source uint8

// The sources, in the order the chain asks them.
const (
	Tailnet Source = 1 << iota // the tailnet plugin
	LAN                        // the mdns plugin
	Public                     // anything after them, and the fallback upstreams
)

// All is every source: the policy of a name no rule names.
const All = Tailnet | LAN | Public

var sourceNames = []struct {
	s    Source
	name string
}{{Tailnet, "tailnet"}, {LAN, "lan"}, {Public, "public"}}

// ParseSource returns the source called name: tailnet, lan or public.
func ParseSource(name string) (Source, error) {
	for _, sn := range sourceNames {
		if strings.EqualFold(name, sn.name) {
			return sn.s, nil
		}
	}
	return 0, fmt.Errorf("unknown source %q: want tailnet, lan or public", name)
}

// String lists the sources in s, "tailnet lan public" for All.
func (s Source) String() string {
	var names []string
	for _, sn := range sourceNames {
		if s&sn.s != 0 {
			names = append(names, sn.name)
		}
	}
	return strings.Join(names, " ")
}

// Decision is the policy of one query and what became of it. It lives for
// one query, and only that query's goroutine touches it.
type Decision struct {
	Allowed    Source // the sources that may answer
	AnsweredBy Source // the source that wrote the answer; 0 if none of ours
	// SOA is the SOA of the zone of the first source that passed a
	// private name on, for the NXDOMAIN the fallback then writes (RFC
	// 2308 §3); nil if none did.
	SOA *dns.SOA
	// StaleFor is how long the tailnet had lost tailscaled when it
	// answered from its last view; 0 for a live answer or none.
	StaleFor time.Duration

	passed [2]Reason // why tailnet (0) and lan (1) passed the name on; Unset if they did not
}

type ctxKey struct{}

// NewContext returns ctx carrying d.
func NewContext(ctx context.Context, d *Decision) context.Context {
	return context.WithValue(ctx, ctxKey{}, d)
}

// FromContext returns the decision in ctx, or nil when no fallback plugin
// made one: then every source may answer.
func FromContext(ctx context.Context) *Decision {
	d, _ := ctx.Value(ctxKey{}).(*Decision)
	return d
}

// Allows reports whether s may answer. A nil Decision allows everything.
func (d *Decision) Allows(s Source) bool {
	return d == nil || d.Allowed&s != 0
}

// WantsSOA reports whether a source that passes the name on should set
// SOA: the name is private, so no public answer follows and the fallback
// writes the NXDOMAIN, and no source has set it yet. It is false on nil.
func (d *Decision) WantsSOA() bool {
	return d != nil && d.Allowed&Public == 0 && d.SOA == nil
}

// Answered records that s wrote the answer. It is a no-op on nil.
func (d *Decision) Answered(s Source) {
	if d != nil {
		d.AnsweredBy = s
	}
}

// Passed records that s passed the name on, and why. It is a no-op on nil
// and for a source other than Tailnet and LAN.
func (d *Decision) Passed(s Source, r Reason) {
	if i := passedIndex(s); d != nil && i >= 0 {
		d.passed[i] = r
	}
}

// Why returns why s passed the name on; Unset if it did not, or on nil.
func (d *Decision) Why(s Source) Reason {
	if i := passedIndex(s); d != nil && i >= 0 {
		return d.passed[i]
	}
	return Unset
}

func passedIndex(s Source) int {
	switch s {
	case Tailnet:
		return 0
	case LAN:
		return 1
	}
	return -1
}

// Reason is why a source passed a name on rather than answer it.
type Reason uint8

// The reasons. All but Unset, Unknown and Unlisted mean the source knows the name
// but could not answer it honestly.
const (
	Unset       Reason = iota // the source did not pass the name on
	Unknown                   // the source has no such name
	Unlisted                  // lan: a host the LAN is not asked for
	Offline                   // tailnet: control says the node is offline
	ProbeFailed               // tailnet: the node failed its last probe
	KeyExpired                // tailnet: the node's key has expired
	NotRunning                // tailnet: this node is not Running
	Unreachable               // tailnet: tailscaled is unreachable, and the stale period is over
	LANTimeout                // lan: the host did not answer on the LAN in time, now or recently
	LANBusy                   // lan: too many lookups in flight
	LANDown                   // lan: no multicast interface to ask on
)

var reasonTexts = [...]string{
	Unset:       "",
	Unknown:     "no such name",
	Offline:     "node offline",
	ProbeFailed: "probe failed",
	KeyExpired:  "node key expired",
	NotRunning:  "this node is not Running",
	Unreachable: "tailscaled unreachable",
	LANTimeout:  "no answer on the LAN",
	LANBusy:     "too many LAN lookups in flight",
	LANDown:     "no multicast interface",
	Unlisted:    "not a LAN host",
}

// String says the reason in a few words, "" for Unset.
func (r Reason) String() string {
	if int(r) < len(reasonTexts) {
		return reasonTexts[r]
	}
	return fmt.Sprintf("reason %d", r)
}

// Failure reports whether r means the source knows the name but could not
// answer it honestly: the answer that follows is not the first choice.
func (r Reason) Failure() bool { return r > Unlisted }
