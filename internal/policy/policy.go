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
