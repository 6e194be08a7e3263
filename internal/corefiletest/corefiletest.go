// Package corefiletest holds what the plugins' Corefile parser tests share:
// a controller for a server block of example.org, and the check of one
// table case.
package corefiletest

import (
	"strconv"
	"strings"
	"testing"

	"github.com/coredns/caddy"
)

// Controller returns a controller over input, as the server block
// "example.org." would give it to a plugin's setup.
func Controller(input string) *caddy.Controller {
	c := caddy.NewTestController("dns", input)
	c.ServerBlockKeys = []string{"example.org."}
	return c
}

// Check parses input with parse. With wantErr, the error must contain it;
// without, there must be no error, and check (if not nil) must find
// nothing wrong with the result: it returns what is wrong, or "".
func Check[T any](t *testing.T, parse func(*caddy.Controller) (T, error), input, wantErr string, check func(T) string) {
	t.Helper()
	got, err := parse(Controller(input))
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("parse error = %v; want one containing %q", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("parse error = %v; want none", err)
	}
	if check != nil {
		if msg := check(got); msg != "" {
			t.Error(msg)
		}
	}
}

// ErrorNamesLine checks that the error of parsing input names its line.
func ErrorNamesLine[T any](t *testing.T, parse func(*caddy.Controller) (T, error), input string, line int) {
	t.Helper()
	_, err := parse(caddy.NewTestController("dns", input))
	want := "Testfile:" + strconv.Itoa(line)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("parse error = %v; want it to name %s", err, want)
	}
}
