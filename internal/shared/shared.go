// Package shared runs the background services that plugin instances share:
// one per key (a LocalAPI socket, a list of interfaces), started by the
// first instance that asks for it and stopped when the last one lets it
// go, so that a reload, which starts the new instances before it stops the
// old ones, keeps the service running. Each instance brings its own
// settings, and the service is told of all of them after every change:
// a setting follows reloads both up and down.
package shared

import "sync"

// Service is a background service shared by the users of one key.
type Service[U any] interface {
	// Configure gives the service the settings of its current users, in
	// no particular order. It is called after every Acquire and Release
	// while the service runs, one call at a time.
	Configure(users []*U)
	// Stop stops the service and waits for it. It is called once, after
	// its last user released it.
	Stop()
}

// Registry holds the running services by key. The zero value is not
// usable: set Start.
type Registry[S Service[U], U any] struct {
	// Start starts the service of key for its first user, before
	// Configure is called.
	Start func(key string) S

	mu sync.Mutex
	// mu guards the following field.
	running map[string]*entry[S, U]
}

type entry[S Service[U], U any] struct {
	svc   S
	users []*U
}

// Acquire registers u as a user of the service of key, starting it if it
// does not run, and returns the service. Each Acquire is matched by one
// Release of the same u.
func (r *Registry[S, U]) Acquire(key string, u *U) S {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.running[key]
	if e == nil {
		if r.running == nil {
			r.running = map[string]*entry[S, U]{}
		}
		e = &entry[S, U]{svc: r.Start(key)}
		r.running[key] = e
	}
	e.users = append(e.users, u)
	e.svc.Configure(e.users)
	return e.svc
}

// Release unregisters u from the service of key, and stops the service
// when u was its last user.
func (r *Registry[S, U]) Release(key string, u *U) {
	r.mu.Lock()
	e := r.running[key]
	if e == nil {
		r.mu.Unlock()
		return
	}
	for i, v := range e.users {
		if v == u {
			e.users = append(e.users[:i:i], e.users[i+1:]...)
			break
		}
	}
	last := len(e.users) == 0
	if last {
		delete(r.running, key)
	} else {
		e.svc.Configure(e.users)
	}
	r.mu.Unlock()
	if last {
		e.svc.Stop() // outside mu: a service's goroutines may acquire another
	}
}
