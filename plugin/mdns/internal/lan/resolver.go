// Package lan asks the LAN for hosts with multicast DNS (RFC 6762) and
// keeps what it hears in a bounded cache: the background half of the mdns
// plugin. A Resolver owns the mDNS sockets of one list of interfaces, the
// cache the answers and announcements on them fill, the lookups in flight,
// and the optional browse of service types. Plugin instances that list the
// same interfaces share one Resolver, through Acquire and Release, and it
// runs with the Merge of their Options.
package lan

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clog "github.com/coredns/coredns/plugin/pkg/log"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/tailhorizon/tailhorizon/internal/shared"
)

// name is the plugin's: the prefix of the log lines and the subsystem of
// the metrics.
const name = "mdns"

var log = clog.NewWithPlugin(name)

// MaxFlights bounds the lookups in flight at once, so that a flood of
// queries for names nobody has cannot turn into a flood of packets.
const MaxFlights = 256

// grace is how long a lookup waits, after its first answer, for the
// other address family: a responder that has both answers both questions
// in one packet (RFC 6762 §6.4), and one that has only one family says so
// with an NSEC record (§6.1), which ends the wait at once. Without that
// NSEC, a query for the missing family is answered NODATA this long after
// the first answer.
const grace = 30 * time.Millisecond

// rescanEvery is how often the interfaces are read again, and how often
// expired entries are swept.
const rescanEvery = 30 * time.Second

// Resolver asks the LAN for hosts and keeps what it hears in a cache. It
// is safe for concurrent use.
type Resolver struct {
	key   string // the interface list, "" for the default: the registry key and metric label
	cache *cache
	now   func() int64 // unix nanoseconds
	// query sends the questions for host, asking for a unicast answer if
	// qu is set; nil means the listener's send.
	query func(host string, qu bool) error

	lst       atomic.Pointer[listener] // nil until listening on an interface
	refreshCh chan string              // hosts to refresh; never blocks a query
	ctx       context.Context          // cancelled by Stop
	cancel    context.CancelFunc
	wg        sync.WaitGroup // the maintain and browse loops, and the listener's readers

	mu sync.Mutex
	// mu guards the following fields.
	flights    map[string]*Flight // lookups in flight by host
	window     time.Duration      // how long a lookup waits for a first answer
	maxTTL     time.Duration      // cap on the TTL of learnt records
	browse     []string           // service types to browse
	background bool               // Configure starts the loops: a Resolver of the registry
	maintains  bool               // the maintain loop runs
	browsing   bool               // the browse loop runs

	// The following fields are only used by the maintain loop.
	c4     *ipv4.PacketConn // nil until opened, or without IPv4
	c6     *ipv6.PacketConn // nil until opened, or without IPv6
	warned bool             // the lack of an interface was logged
}

// Flight is one lookup of a host on the LAN. Its channels are closed
// once each, under Resolver.mu.
type Flight struct {
	done       chan struct{} // the lookup ended
	any        chan struct{} // a first answer came
	got4, got6 chan struct{} // an A, an AAAA record came
	start      time.Time
	timer      *time.Timer // ends the flight: at the window's end, or grace after the first answer
	retry      *time.Timer // asks again for a multicast answer; may be nil
}

// Wait returns a channel that is closed when an answer for qtype came: an
// A or AAAA record for those types, or an NSEC record saying the host has
// none; any of these for the others.
func (f *Flight) Wait(qtype uint16) <-chan struct{} {
	switch qtype {
	case dns.TypeA:
		return f.got4
	case dns.TypeAAAA:
		return f.got6
	}
	return f.any
}

// Done returns a channel that is closed when the lookup ended: both
// families came (or were denied by NSEC), grace passed after the first
// answer, or its window is over.
func (f *Flight) Done() <-chan struct{} { return f.done }

// newResolver returns a Resolver for the interfaces of key, with empty
// settings and nothing running.
func newResolver(key string) *Resolver {
	r := &Resolver{
		key:       key,
		cache:     newCache(entriesGauge.WithLabelValues(key), evictions.WithLabelValues(key)),
		now:       func() int64 { return time.Now().UnixNano() },
		refreshCh: make(chan string, 64),
		flights:   map[string]*Flight{},
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// New returns a Resolver with the settings o that asks the LAN with query
// in place of the multicast sockets, and whose clock is now (unix
// nanoseconds; nil for the time of day). It is not shared, opens no
// socket and runs nothing in the background, so what the LAN answers
// reaches it only through Learn, and its Configure changes only its
// settings. It is for testing the users of a Resolver without a LAN;
// Acquire is the way to a Resolver on the LAN.
func New(o Options, query func(host string, qu bool) error, now func() int64) *Resolver {
	r := newResolver(strings.Join(o.Interfaces, ","))
	r.query = query
	if now != nil {
		r.now = now
	}
	r.apply(Merge([]*Options{&o}))
	return r
}

// registry holds the running resolvers by interface list.
var registry = shared.Registry[*Resolver, Options]{Start: start}

func start(key string) *Resolver {
	r := newResolver(key)
	r.background = true
	return r
}

// Acquire returns the running Resolver for the interfaces of o, starting
// one if needed, and adds o to its users. o is the caller's settings and
// its identity: it must not change until the matching Release.
func Acquire(o *Options) *Resolver { return registry.Acquire(strings.Join(o.Interfaces, ","), o) }

// Release removes o from the users of its Resolver, which applies the
// settings of the others, or stops when o was the last.
func Release(o *Options) { registry.Release(strings.Join(o.Interfaces, ","), o) }

// Configure applies the Merge of the settings of users, and starts the
// loops of a Resolver of the registry on its first call. It implements
// shared.Service.
func (r *Resolver) Configure(users []*Options) {
	o := Merge(users)
	r.apply(o)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.background {
		return
	}
	if !r.maintains {
		r.maintains = true
		r.wg.Go(func() { r.maintain(r.ctx, o.Interfaces) })
	}
	if len(r.browse) > 0 && !r.browsing {
		r.browsing = true
		r.wg.Go(func() { r.browseLoop(r.ctx) })
	}
}

// apply sets the settings of o, lower ones included: a smaller cache
// evicts its least recently used entries at once.
func (r *Resolver) apply(o Options) {
	r.cache.configure(o.Size, o.NegTTL)
	r.mu.Lock()
	r.window, r.maxTTL, r.browse = o.Window, o.MaxTTL, o.Services
	r.mu.Unlock()
}

// Stop stops the loops, closes the sockets and waits for the readers. It
// implements shared.Service.
func (r *Resolver) Stop() {
	r.cancel()
	r.wg.Wait()
}

// Listening reports whether the resolver can ask the LAN.
func (r *Resolver) Listening() bool { return r.lst.Load() != nil || r.query != nil }

// Now returns the resolver's clock, in unix nanoseconds: the time the
// expiry of the cached records is measured against.
func (r *Resolver) Now() int64 { return r.now() }

// Len returns the number of hosts in the cache, expired and unknown ones
// included.
func (r *Resolver) Len() int { return r.cache.len() }

// InFlight returns the number of lookups in flight.
func (r *Resolver) InFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.flights)
}

// Cached returns the valid records of host, a lowercase label, or nil. A
// query for an entry near its expiry asks for a refresh, once, without
// waiting for it.
func (r *Resolver) Cached(host string) *HostRecs {
	now := r.now()
	e, recs := r.cache.get(host, now)
	if recs == nil {
		return nil
	}
	if recs.refreshAt != 0 && now >= recs.refreshAt && !e.refreshing.Swap(true) {
		select {
		case r.refreshCh <- host:
		default:
			e.refreshing.Store(false) // the loop is busy; the next query asks again
		}
	}
	return recs
}

// Lookup starts the lookup of host, a lowercase label, for a query that
// found nothing in the cache, or joins the one in flight, and returns it.
// It returns nil when MaxFlights lookups are in flight.
func (r *Resolver) Lookup(host string) *Flight { return r.lookup(host, reasonMiss) }

func (r *Resolver) lookup(host, reason string) *Flight {
	r.mu.Lock()
	if f := r.flights[host]; f != nil {
		r.mu.Unlock()
		return f
	}
	if len(r.flights) >= MaxFlights {
		r.mu.Unlock()
		return nil
	}
	f := &Flight{done: make(chan struct{}), any: make(chan struct{}), got4: make(chan struct{}), got6: make(chan struct{}), start: time.Now()}
	r.flights[host] = f
	f.timer = time.AfterFunc(r.window, func() { r.end(host, f) })
	r.mu.Unlock()

	lookups.WithLabelValues(r.key, reason).Inc()
	send := r.query
	if l := r.lst.Load(); l != nil && send == nil {
		send = l.send
	}
	// A first question asks for a unicast answer (RFC 6762 §5.4): a
	// responder that announced the host in the last second would not
	// multicast it again. Halfway through the window, unanswered, it is
	// asked again for a multicast answer, in case the unicast one went to
	// another socket on port 5353 (avahi's). A refresh asks for a multicast
	// answer at once, which refreshes every cache on the link.
	qu := reason != reasonRefresh
	if send == nil || send(host, qu) != nil {
		r.end(host, f)
		return f
	}
	if qu {
		r.mu.Lock()
		// An answer may have ended the flight before send returned: a
		// retry armed then would outlive it, and a flood of quick answers
		// would pile up timers for half a window.
		if r.flights[host] == f {
			f.retry = time.AfterFunc(r.window/2, func() {
				if !isClosed(f.any) && !isClosed(f.done) {
					send(host, false)
				}
			})
		}
		r.mu.Unlock()
	}
	return f
}

// end finishes flight f of host, when its window is over or both families
// came. It reports whether f was still in flight.
func (r *Resolver) end(host string, f *Flight) bool {
	r.mu.Lock()
	if r.flights[host] != f {
		r.mu.Unlock()
		return false
	}
	delete(r.flights, host)
	answered := isClosed(f.any)
	retry := f.retry
	if answered {
		r.cache.settle(host) // under mu, so that no Learn marks it pending again
	}
	r.mu.Unlock()
	f.timer.Stop()
	if retry != nil {
		retry.Stop()
	}
	if !answered {
		r.cache.fail(host, time.Unix(0, r.now()))
		lookupDuration.WithLabelValues(r.key, "false").Observe(time.Since(f.start).Seconds())
	}
	close(f.done)
	return true
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// wanted reports whether records of host may enter the cache: a lookup
// of host is in flight, or it is in the cache.
func (r *Resolver) wanted(host string) bool {
	r.mu.Lock()
	inFlight := r.flights[host] != nil
	r.mu.Unlock()
	return inFlight || r.cache.has(host)
}

// Learn puts the records of host from one answer or announcement in the
// cache, if host was asked for (a lookup of it is in flight, or it is in
// the cache), and tells the lookup waiting for them. The lookup ends once
// both families came or were denied by NSEC, or grace after its first
// answer. The sockets' readers call it with what passed the packet
// checks; a Resolver made by New hears the LAN only through it.
func (r *Resolver) Learn(host string, recs []Record) {
	has4, has6 := families(recs)
	r.mu.Lock()
	f := r.flights[host]
	// Holding mu orders this against end, which settles the entry.
	pending := f != nil && !((has4 || isClosed(f.got4)) && (has6 || isClosed(f.got6)))
	if !r.cache.learn(host, recs, f != nil, pending, time.Unix(0, r.now())) || f == nil {
		r.mu.Unlock()
		return
	}
	if has4 && !isClosed(f.got4) {
		close(f.got4)
	}
	if has6 && !isClosed(f.got6) {
		close(f.got6)
	}
	if !isClosed(f.any) && (has4 || has6) {
		close(f.any)
		lookupDuration.WithLabelValues(r.key, "true").Observe(time.Since(f.start).Seconds())
		if time.Until(f.start.Add(r.window)) > grace {
			f.timer.Reset(grace) // end may then run twice; the second call does nothing
		}
	}
	both := !pending
	r.mu.Unlock()
	if both {
		r.end(host, f)
	}
}

// families reports whether recs answer, or deny with NSEC, the A and the
// AAAA question. A goodbye answers nothing.
func families(recs []Record) (has4, has6 bool) {
	for _, l := range recs {
		switch {
		case !l.Addr.IsValid():
			has4, has6 = has4 || l.NoA, has6 || l.NoAAAA
		case l.TTL == 0:
		case l.Addr.Is4():
			has4 = true
		default:
			has6 = true
		}
	}
	return has4, has6
}

// maintain opens the listener, refreshes the entries asked for near their
// expiry, and rereads the interfaces every rescanEvery.
// It runs until ctx is cancelled, then returns nil.
func (r *Resolver) maintain(ctx context.Context, names []string) error {
	ticker := time.NewTicker(rescanEvery)
	defer ticker.Stop()
	defer r.closeListener()
	r.rescan(names)
	for {
		select {
		case <-ctx.Done():
			return nil
		case host := <-r.refreshCh:
			r.lookup(host, reasonRefresh)
		case <-ticker.C:
			r.rescan(names)
			r.cache.sweep(r.now(), 10000)
		}
	}
}
