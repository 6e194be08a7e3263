package fallback

import (
	"fmt"
	"path"
	"strings"

	"github.com/tailhorizon/tailhorizon/internal/policy"
)

// rule gives the sources that may answer the hosts matching pattern.
type rule struct {
	pattern string        // lowercase glob over the host label, as path.Match
	sources policy.Source // never 0
}

// rules is the per-name source policy of one fallback block. It is
// immutable after parsing and safe for concurrent use.
type rules struct {
	exact map[string]policy.Source // host label -> sources, for patterns without glob characters
	globs []rule                   // the others, in Corefile order
}

// add appends a rule. Sources must be listed in the order the chain asks
// them, so that the Corefile reads as what happens.
func (rs *rules) add(pattern string, names []string) error {
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
	rs.globs = append(rs.globs, rule{pattern, sources})
	return nil
}

// lookup returns the sources that may answer names of host, a lowercase
// label. Exact rules win over globs; the first matching glob wins; with no
// match every source may answer.
func (rs *rules) lookup(host string) policy.Source {
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
