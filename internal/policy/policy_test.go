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

func TestPassed(t *testing.T) {
	d := &Decision{Allowed: All}
	d.Passed(Tailnet, ProbeFailed)
	d.Passed(LAN, LANTimeout)
	d.Passed(Public, Offline) // not a source that passes names on: ignored
	if got := d.Why(Tailnet); got != ProbeFailed {
		t.Errorf("Why(tailnet) = %v; want %v", got, ProbeFailed)
	}
	if got := d.Why(LAN); got != LANTimeout {
		t.Errorf("Why(lan) = %v; want %v", got, LANTimeout)
	}
	if got := d.Why(Public); got != Unset {
		t.Errorf("Why(public) = %v; want unset", got)
	}
	var none *Decision
	none.Passed(Tailnet, Offline) // must not panic
	if got := none.Why(Tailnet); got != Unset {
		t.Errorf("nil Why = %v; want unset", got)
	}
}

func TestReasonFailure(t *testing.T) {
	for r := Unset; r <= LANDown; r++ {
		want := r != Unset && r != Unknown && r != Unlisted
		if got := r.Failure(); got != want {
			t.Errorf("%q.Failure() = %v; want %v", r, got, want)
		}
		if r != Unset && r.String() == "" {
			t.Errorf("reason %d has no text", r)
		}
	}
}
