package rules

import (
	"strings"
	"testing"

	"github.com/tailhorizon/tailhorizon/internal/policy"
)

// TestSet: exact rules win over globs, the first matching glob wins, and
// a host no rule names may be answered by every source.
func TestSet(t *testing.T) {
	var rs Set
	for _, r := range [][]string{{"registry", "tailnet"}, {"ci-*", "tailnet", "lan"}, {"c*", "public"}, {"ci-1", "lan"}} {
		if err := rs.Add(r[0], r[1:]); err != nil {
			t.Fatalf("add %v: %v", r, err)
		}
	}
	cases := []struct {
		host    string
		sources policy.Source
		rule    string
	}{
		{"registry", policy.Tailnet, "registry"},
		{"ci-1", policy.LAN, "ci-1"},
		{"ci-42", policy.Tailnet | policy.LAN, "ci-*"},
		{"cache", policy.Public, "c*"},
		{"other", policy.All, ""},
	}
	for _, c := range cases {
		if got, rule := rs.Lookup(c.host), rs.Rule(c.host); got != c.sources || rule != c.rule {
			t.Errorf("%s: got %v by %q; want %v by %q", c.host, got, rule, c.sources, c.rule)
		}
	}
}

// TestAddErrors: a rule names a host label or a glob of one, and its
// sources once each, in the order the chain asks them.
func TestAddErrors(t *testing.T) {
	cases := []struct {
		pattern string
		sources []string
		want    string
	}{
		{"a.b", []string{"tailnet"}, "want a host label"},
		{"[", []string{"tailnet"}, "want a host label"},
		{"x", []string{"lan", "tailnet"}, "in the order they are asked"},
		{"x", nil, "name at least one source"},
		{"dup", []string{"lan"}, "given twice"},
	}
	var rs Set
	if err := rs.Add("dup", []string{"tailnet"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if err := rs.Add(c.pattern, c.sources); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("add %q %v: got %v; want an error saying %q", c.pattern, c.sources, err, c.want)
		}
	}
}
