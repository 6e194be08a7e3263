package shared

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// fakeService records what the registry tells it.
type fakeService struct {
	key    string
	events *[]string
}

func (f *fakeService) Configure(users []*string) {
	var names []string
	for _, u := range users {
		names = append(names, *u)
	}
	slices.Sort(names)
	*f.events = append(*f.events, fmt.Sprintf("configure %s %s", f.key, strings.Join(names, ",")))
}

func (f *fakeService) Stop() { *f.events = append(*f.events, "stop "+f.key) }

func TestRegistry(t *testing.T) {
	a, b, c := "a", "b", "c"
	type step struct {
		acquire bool
		key     string
		user    *string
	}
	cases := []struct {
		name  string
		steps []step
		want  []string
	}{
		{
			name:  "one user: started, configured, stopped",
			steps: []step{{true, "sock", &a}, {false, "sock", &a}},
			want:  []string{"start sock", "configure sock a", "stop sock"},
		},
		{
			name: "a reload: the new user comes before the old one goes, and the service lives on",
			steps: []step{{true, "sock", &a}, {true, "sock", &b}, {false, "sock", &a},
				{false, "sock", &b}},
			want: []string{"start sock", "configure sock a", "configure sock a,b", "configure sock b", "stop sock"},
		},
		{
			name:  "two keys, two services",
			steps: []step{{true, "x", &a}, {true, "y", &c}, {false, "x", &a}, {false, "y", &c}},
			want:  []string{"start x", "configure x a", "start y", "configure y c", "stop x", "stop y"},
		},
		{
			name:  "a release of a key that does not run does nothing",
			steps: []step{{false, "sock", &a}},
			want:  nil,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var events []string
			r := &Registry[*fakeService, string]{Start: func(key string) *fakeService {
				events = append(events, "start "+key)
				return &fakeService{key: key, events: &events}
			}}
			for _, s := range tc.steps {
				if s.acquire {
					if svc := r.Acquire(s.key, s.user); svc.key != s.key {
						t.Fatalf("Acquire(%s) returned the service of %s", s.key, svc.key)
					}
				} else {
					r.Release(s.key, s.user)
				}
			}
			if !slices.Equal(events, tc.want) {
				t.Errorf("events:\n%s\nwant:\n%s", strings.Join(events, "\n"), strings.Join(tc.want, "\n"))
			}
			if len(r.running) != 0 {
				t.Errorf("%d services left running", len(r.running))
			}
		})
	}
}
