// Package rules holds fallback's per-name source policy: which sources
// may answer the names of a host label, as the Corefile's policy lines
// say.
package rules

import (
	"fmt"
	"path"
	"strings"

	"github.com/tailhorizon/tailhorizon/internal/policy"
)

// glob gives the sources that may answer the hosts matching pattern.
type glob struct {
	pattern string        // lowercase glob over the host label, as path.Match
	sources policy.Source // never 0
}

// Set is the per-name source policy of one fallback block. The zero
// value has no rules; it is immutable after parsing and safe for
// concurrent use.
type Set struct {
	exact map[string]policy.Source // host label -> sources, for patterns without glob characters
	globs []glob                   // the others, in Corefile order
}

// Add appends a rule: the sources named (as policy.ParseSource reads
// them) may answer the hosts matching pattern. Sources must be listed in the order the chain asks
// them, so that the Corefile reads as what happens.
func (rs *Set) Add(pattern string, names []string) error {
	pattern = strings.ToLower(pattern)
	if _, err := path.Match(pattern, ""); err != nil || strings.Contains(pattern, ".") {
		return fmt.Errorf("policy %q: want a host label or a glob of one, like registry or ci-*", pattern)
	}
	var sources, last policy.Source
	for _, n := range names {
		s, err := policy.ParseSource(n)
		if err != nil {
			return fmt.Errorf("policy %s: %w", pattern, err)
		}
		if s <= last {
			return fmt.Errorf("policy %s: list the sources once each, in the order they are asked: tailnet, lan, public", pattern)
		}
		sources, last = sources|s, s
	}
	if sources == 0 {
		return fmt.Errorf("policy %s: name at least one source", pattern)
	}
	if !strings.ContainsAny(pattern, `*?[\`) {
		if _, dup := rs.exact[pattern]; dup {
			return fmt.Errorf("policy %s: given twice", pattern)
		}
		if rs.exact == nil {
			rs.exact = map[string]policy.Source{}
		}
		rs.exact[pattern] = sources
		return nil
	}
	rs.globs = append(rs.globs, glob{pattern, sources})
	return nil
}

// Lookup returns the sources that may answer names of host, a lowercase
// label. Exact rules win over globs; the first matching glob wins; with no
// match every source may answer.
func (rs *Set) Lookup(host string) policy.Source {
	if s, ok := rs.exact[host]; ok {
		return s
	}
	for _, r := range rs.globs {
		if ok, _ := path.Match(r.pattern, host); ok {
			return r.sources
		}
	}
	return policy.All
}

// Rule returns the pattern of the policy rule for host, a lowercase
// label, as Lookup finds it; "" when no rule names it.
func (rs *Set) Rule(host string) string {
	if _, ok := rs.exact[host]; ok {
		return host
	}
	for _, r := range rs.globs {
		if ok, _ := path.Match(r.pattern, host); ok {
			return r.pattern
		}
	}
	return ""
}
