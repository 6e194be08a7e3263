package watch

import (
	"testing"
	"time"
)

// TestReachable: a fresh probe result beats control's online bit, an
// expired key beats both, and a lapsed result leaves control's word.
func TestReachable(t *testing.T) {
	now := time.Unix(1700000000, 0).UnixNano()
	later, earlier := now+int64(time.Second), now-int64(time.Second)
	cases := []struct {
		name      string
		self      bool
		online    bool
		verdict   int64
		expired   bool
		keyExpiry int64
		want      bool
	}{
		{name: "online, never probed", online: true, want: true},
		{name: "offline, never probed", online: false, want: false},
		{name: "online, failed a ping (crash, power cut)", online: true, verdict: -later, want: false},
		{name: "offline, answers pings (control restarting)", online: false, verdict: later, want: true},
		{name: "online, failed ping lapsed", online: true, verdict: -earlier, want: true},
		{name: "offline, answer lapsed", online: false, verdict: earlier, want: false},
		{name: "expired, online and answering", online: true, verdict: later, expired: true, want: false},
		{name: "key expiry passed", online: true, keyExpiry: earlier, want: false},
		{name: "key expiry ahead", online: true, keyExpiry: later, want: true},
		{name: "self, whatever the probe says", self: true, verdict: -later, want: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := &Node{Host: "hub", Online: tc.online, Self: tc.self, Expired: tc.expired, KeyExpiry: tc.keyExpiry, Health: new(Health)}
			n.Health.verdict.Store(tc.verdict)
			if got := n.Reachable(now); got != tc.want {
				t.Errorf("reachable = %v; want %v", got, tc.want)
			}
		})
	}
}
