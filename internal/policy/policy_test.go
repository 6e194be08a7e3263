package policy

import (
	"context"
	"testing"

	"github.com/miekg/dns"
)

func TestParseSource(t *testing.T) {
	cases := []struct {
		in      string
		want    Source
		wantErr bool
	}{
		{"tailnet", Tailnet, false},
		{"LAN", LAN, false},
		{"public", Public, false},
		{"wan", 0, true},
	}
	for _, c := range cases {
		got, err := ParseSource(c.in)
		if got != c.want || (err != nil) != c.wantErr {
			t.Errorf("ParseSource(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.wantErr)
		}
	}
	if got := All.String(); got != "tailnet lan public" {
		t.Errorf("All.String() = %q; want %q", got, "tailnet lan public")
	}
}

func TestDecisionInContext(t *testing.T) {
	if d := FromContext(context.Background()); !d.Allows(Public) {
		t.Error("no decision must allow every source")
	}
	d := &Decision{Allowed: Tailnet}
	ctx := NewContext(context.Background(), d)
	got := FromContext(ctx)
	if got != d || got.Allows(Public) || !got.Allows(Tailnet) {
		t.Errorf("FromContext = %+v; want %+v allowing only the tailnet", got, d)
	}
	got.Answered(Tailnet)
	if d.AnsweredBy != Tailnet {
		t.Errorf("AnsweredBy = %v; want tailnet", d.AnsweredBy)
	}
	var none *Decision
	none.Answered(LAN) // must not panic
}

func TestWantsSOA(t *testing.T) {
	cases := []struct {
		name string
		d    *Decision
		want bool
	}{
		{"no decision", nil, false},
		{"public allowed: the public answer follows", &Decision{Allowed: All}, false},
		{"private name", &Decision{Allowed: Tailnet | LAN}, true},
		{"private name, SOA already set", &Decision{Allowed: LAN, SOA: new(dns.SOA)}, false},
	}
	for _, c := range cases {
		if got := c.d.WantsSOA(); got != c.want {
			t.Errorf("%s: WantsSOA = %v; want %v", c.name, got, c.want)
		}
	}
}
