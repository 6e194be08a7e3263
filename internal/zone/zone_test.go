package zone

import "testing"

func TestMatch(t *testing.T) {
	zones := []string{"example.org.", "sub.example.org.", "100.in-addr.arpa.", "."}
	cases := []struct {
		name, qname, want string
	}{
		{"apex", "example.org.", "example.org."},
		{"below", "hub.example.org.", "example.org."},
		{"longest wins", "a.sub.example.org.", "sub.example.org."},
		{"suffix without a dot", "notexample.org.", "."},
		{"escaped dot is no label boundary", `a\.example.org.`, "."},
		{"escaped backslash before the dot", `a\\.example.org.`, "example.org."},
		{"reverse", "2.0.64.100.in-addr.arpa.", "100.in-addr.arpa."},
		{"root only", "example.net.", "."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Match(zones, c.qname); got != c.want {
				t.Errorf("Match(%q) = %q; want %q", c.qname, got, c.want)
			}
		})
	}
	if got := Match([]string{"example.org."}, "example.net."); got != "" {
		t.Errorf("Match outside every zone = %q; want \"\"", got)
	}
}

func TestHostLabel(t *testing.T) {
	cases := []struct{ qname, zone, want string }{
		{"hub.example.org.", "example.org.", "hub"},
		{"a.b.hub.example.org.", "example.org.", "hub"},
		{`a\.b.hub.example.org.`, "example.org.", "hub"},
		{`a.hub\.x.example.org.`, "example.org.", `hub\.x`},
		{"a.hub.", ".", "hub"},
	}
	for _, c := range cases {
		t.Run(c.qname, func(t *testing.T) {
			if got := HostLabel(c.qname, c.zone); got != c.want {
				t.Errorf("HostLabel(%q, %q) = %q; want %q", c.qname, c.zone, got, c.want)
			}
		})
	}
}

func TestAllocs(t *testing.T) {
	zones := []string{"example.org.", "example.net."}
	got := testing.AllocsPerRun(100, func() {
		if z := Match(zones, "a.b.hub.example.org."); HostLabel("a.b.hub.example.org.", z) != "hub" {
			t.Fatal("wrong host")
		}
	})
	if got != 0 {
		t.Errorf("Match and HostLabel allocate %v times; want 0", got)
	}
}
