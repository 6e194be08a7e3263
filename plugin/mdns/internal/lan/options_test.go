package lan

import (
	"reflect"
	"testing"
	"time"
)

func TestMerge(t *testing.T) {
	eth0 := []string{"eth0"}
	cases := []struct {
		name  string
		users []*Options
		want  Options
	}{
		{"no users", nil, Options{}},
		{"one user", []*Options{
			{Interfaces: eth0, Size: 100, MaxTTL: time.Minute, NegTTL: 10 * time.Second, Window: 300 * time.Millisecond, Services: []string{"_ssh._tcp"}},
		}, Options{Interfaces: eth0, Size: 100, MaxTTL: time.Minute, NegTTL: 10 * time.Second, Window: 300 * time.Millisecond, Services: []string{"_ssh._tcp"}}},
		{"largest size, max_ttl and window", []*Options{
			{Interfaces: eth0, Size: 100, MaxTTL: 5 * time.Minute, NegTTL: 10 * time.Second, Window: 300 * time.Millisecond},
			{Interfaces: eth0, Size: 500, MaxTTL: time.Minute, NegTTL: 10 * time.Second, Window: time.Second},
		}, Options{Interfaces: eth0, Size: 500, MaxTTL: 5 * time.Minute, NegTTL: 10 * time.Second, Window: time.Second}},
		{"smallest negative TTL", []*Options{
			{Size: 1, NegTTL: 30 * time.Second},
			{Size: 1, NegTTL: 5 * time.Second},
			{Size: 1, NegTTL: 10 * time.Second},
		}, Options{Size: 1, NegTTL: 5 * time.Second}},
		{"negative TTL at least one second", []*Options{
			{Size: 1, NegTTL: 10 * time.Second},
			{Size: 1, NegTTL: 0}, // ttl 0
		}, Options{Size: 1, NegTTL: time.Second}},
		{"services: union, sorted, without duplicates", []*Options{
			{Size: 1, Services: []string{"_workstation._tcp", "_ssh._tcp"}},
			{Size: 1},
			{Size: 1, Services: []string{"_http._tcp", "_ssh._tcp"}},
		}, Options{Size: 1, NegTTL: time.Second, Services: []string{"_http._tcp", "_ssh._tcp", "_workstation._tcp"}}},
		{"order does not matter", []*Options{
			{Size: 500, MaxTTL: time.Minute, NegTTL: 2 * time.Second, Window: time.Second, Services: []string{"_b._udp"}},
			{Size: 100, MaxTTL: time.Hour, NegTTL: 20 * time.Second, Window: 10 * time.Millisecond, Services: []string{"_a._tcp"}},
		}, Options{Size: 500, MaxTTL: time.Hour, NegTTL: 2 * time.Second, Window: time.Second, Services: []string{"_a._tcp", "_b._udp"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Merge(c.users); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v; want %+v", got, c.want)
			}
		})
	}
}

// TestMergeKeepsUsers: Merge does not change what it is given.
func TestMergeKeepsUsers(t *testing.T) {
	a := &Options{Interfaces: []string{"eth0"}, Size: 1, Services: []string{"_z._tcp", "_a._tcp"}}
	Merge([]*Options{a, {Size: 2, Services: []string{"_m._tcp"}}})
	if a.Services[0] != "_z._tcp" || a.Size != 1 {
		t.Errorf("Merge changed its input: %+v", a)
	}
}
