package corefile

import (
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
)

// option returns a controller positioned on the option of "plugin {\n option\n}".
func option(t *testing.T, line string) *caddy.Controller {
	t.Helper()
	c := caddy.NewTestController("dns", "plugin {\n"+line+"\n}")
	c.Next()
	if !c.NextBlock() {
		t.Fatalf("no option in %q", line)
	}
	return c
}

func TestInt(t *testing.T) {
	cases := []struct {
		line    string
		want    int
		wantErr string
	}{
		{"ttl 30", 30, ""},
		{"ttl 3601", 0, `ttl "3601": want a whole number from 0 to 3600`},
		{"ttl x", 0, "want a whole number"},
		{"ttl", 0, "Wrong argument count"},
		{"ttl 1 2", 0, "Wrong argument count"},
	}
	for _, c := range cases {
		got, err := Int(option(t, c.line), 0, 3600)
		if got != c.want || !errContains(err, c.wantErr) {
			t.Errorf("Int(%q) = %d, %v; want %d, %q", c.line, got, err, c.want, c.wantErr)
		}
	}
}

func TestDuration(t *testing.T) {
	cases := []struct {
		line    string
		hi      time.Duration
		want    time.Duration
		wantErr string
	}{
		{"probe 5s", 0, 5 * time.Second, ""},
		{"probe 1ms", 0, 0, "must be at least 100ms"},
		{"timeout 10s", 5 * time.Second, 0, "want a duration from 100ms to 5s"},
		{"probe soon", 0, 0, `probe "soon"`},
	}
	for _, c := range cases {
		got, err := Duration(option(t, c.line), 100*time.Millisecond, c.hi)
		if got != c.want || !errContains(err, c.wantErr) {
			t.Errorf("Duration(%q) = %s, %v; want %s, %q", c.line, got, err, c.want, c.wantErr)
		}
	}
}

func TestAlias(t *testing.T) {
	var aliases map[string]string
	if err := Alias(option(t, "alias Registry hub"), &aliases); err != nil || aliases["registry"] != "hub" {
		t.Errorf("Alias = %v, %v; want registry -> hub", aliases, err)
	}
	for _, line := range []string{"alias a.b hub", "alias x", `alias a\.b hub`} {
		if err := Alias(option(t, line), &aliases); err == nil {
			t.Errorf("Alias(%q) = nil; want an error", line)
		}
	}
}

func errContains(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}
