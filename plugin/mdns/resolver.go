package mdns

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// config is what a resolver is set up with. Server blocks that list the
// same interfaces share one resolver; the largest size, max_ttl and
// timeout among them apply, and the services of all are browsed.
type config struct {
	interfaces []string      // interface names; empty: every suitable one
	size       int           // cache entries
	maxTTL     time.Duration // cap on the TTL of learnt records
	services   []string      // service types to browse, like "_workstation._tcp"
}

// maxFlights bounds the lookups in flight at once, so that a flood of
// queries for names nobody has cannot turn into a flood of packets.
const maxFlights = 256

// rescanEvery is how often the interfaces are read again, and how often
// expired entries are swept.
const rescanEvery = 30 * time.Second

// resolver asks the LAN for hosts and keeps what it hears in a cache. One
// resolver serves every instance that lists the same interfaces.
type resolver struct {
	key   string // the interface list, "" for the default: the registry key and metric label
	cache *cache
	now   func() int64 // unix nanoseconds; tests replace it
	// query sends the questions for host, asking for a unicast answer if
	// qu is set; tests set it, nil means the listener's send.
	query func(host string, qu bool) error
	// window is how long a lookup waits for a first answer.
	window time.Duration

	lst       atomic.Pointer[listener] // nil until listening on an interface
	refreshCh chan string              // hosts to refresh; never blocks a query

	mu sync.Mutex
	// mu guards the following fields.
	flights  map[string]*flight // lookups in flight by host
	subs     map[*MDNS]config
	maxTTL   time.Duration
	browse   []string        // service types to browse
	browsing bool            // the browse loop runs
	ctx      context.Context // cancelled when the last instance releases the resolver
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the maintain loop and the listener's readers

	// The following fields are only used by the maintain loop.
	c4     *ipv4.PacketConn // nil until opened, or without IPv4
	c6     *ipv6.PacketConn // nil until opened, or without IPv6
	warned bool             // the lack of an interface was logged
}

// flight is one lookup of a host on the LAN. Its channels are closed
// once each, under resolver.mu.
type flight struct {
	done       chan struct{} // the lookup ended
	any        chan struct{} // a first answer came
	got4, got6 chan struct{} // an A, an AAAA record came
	start      time.Time
	timer      *time.Timer // ends the flight
	retry      *time.Timer // asks again for a multicast answer; may be nil
}

// wait returns the channel closed when an answer for qtype came.
func (f *flight) wait(qtype uint16) <-chan struct{} {
	switch qtype {
	case dns.TypeA:
		return f.got4
	case dns.TypeAAAA:
		return f.got6
	}
	return f.any
}

func newResolver(key string, conf config, window time.Duration) *resolver {
	r := &resolver{
		key:       key,
		cache:     newCache(conf.size, time.Second, entriesGauge.WithLabelValues(key), evictions.WithLabelValues(key)),
		now:       func() int64 { return time.Now().UnixNano() },
		window:    window,
		refreshCh: make(chan string, 64),
		flights:   map[string]*flight{},
		subs:      map[*MDNS]config{},
		maxTTL:    conf.maxTTL,
	}
	return r
}

// registry holds the running resolvers by interface list.
var registry = struct {
	sync.Mutex
	resolvers map[string]*resolver
}{resolvers: map[string]*resolver{}}

// acquire returns the running resolver for m's interfaces, starting one if
// needed, and subscribes m to it.
func acquire(m *MDNS) *resolver {
	key := strings.Join(m.conf.interfaces, ",")
	registry.Lock()
	defer registry.Unlock()
	r := registry.resolvers[key]
	if r == nil {
		r = newResolver(key, m.conf, m.timeout)
		registry.resolvers[key] = r
		r.ctx, r.cancel = context.WithCancel(context.Background())
		r.wg.Go(func() { r.maintain(r.ctx, m.conf.interfaces) })
	}
	r.mu.Lock()
	r.subs[m] = m.conf
	r.configureLocked(m.ttl, m.timeout)
	if len(r.browse) > 0 && !r.browsing {
		r.browsing = true
		r.wg.Go(func() { r.browseLoop(r.ctx) })
	}
	r.mu.Unlock()
	return r
}

// release unsubscribes m and stops the resolver when nobody uses it.
func release(m *MDNS, r *resolver) {
	registry.Lock()
	r.mu.Lock()
	delete(r.subs, m)
	last := len(r.subs) == 0
	r.mu.Unlock()
	if last {
		delete(registry.resolvers, r.key)
	}
	registry.Unlock()
	if last {
		r.cancel()
		r.wg.Wait()
	}
}

// configureLocked merges the settings of the subscribed instances.
func (r *resolver) configureLocked(ttl uint32, timeout time.Duration) {
	r.browse = nil
	for _, c := range r.subs {
		r.cache.configure(c.size, max(time.Duration(ttl)*time.Second, time.Second))
		r.maxTTL = max(r.maxTTL, c.maxTTL)
		for _, s := range c.services {
			if !slices.Contains(r.browse, s) {
				r.browse = append(r.browse, s)
			}
		}
	}
	r.window = max(r.window, timeout)
}

// listening reports whether the resolver can ask the LAN.
func (r *resolver) listening() bool { return r.lst.Load() != nil || r.query != nil }

// cached returns the valid records of host, or nil. A query for an entry
// near its expiry asks for a refresh, once, without waiting for it.
func (r *resolver) cached(host string) *hostRecs {
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

// lookup starts the lookup of host, or joins the one in flight, and
// returns it. It returns nil when too many lookups are in flight.
func (r *resolver) lookup(host, reason string) *flight {
	r.mu.Lock()
	if f := r.flights[host]; f != nil {
		r.mu.Unlock()
		return f
	}
	if len(r.flights) >= maxFlights {
		r.mu.Unlock()
		return nil
	}
	f := &flight{done: make(chan struct{}), any: make(chan struct{}), got4: make(chan struct{}), got6: make(chan struct{}), start: time.Now()}
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
func (r *resolver) end(host string, f *flight) bool {
	r.mu.Lock()
	if r.flights[host] != f {
		r.mu.Unlock()
		return false
	}
	delete(r.flights, host)
	answered := isClosed(f.any)
	retry := f.retry
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

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// wanted reports whether records of host may enter the cache, and whether
// they may make a new entry: a lookup of host is in flight.
func (r *resolver) wanted(host string) (ok, create bool) {
	r.mu.Lock()
	inFlight := r.flights[host] != nil
	r.mu.Unlock()
	return inFlight || r.cache.has(host), inFlight
}

// learn puts the records of host from one accepted packet in the cache,
// and tells the lookup waiting for them; it ends once both families came.
func (r *resolver) learn(host string, recs []learnt) {
	ok, create := r.wanted(host)
	if !ok || !r.cache.learn(host, recs, create, time.Unix(0, r.now())) {
		return
	}
	r.mu.Lock()
	f := r.flights[host]
	if f == nil {
		r.mu.Unlock()
		return
	}
	for _, l := range recs {
		got := f.got6
		if l.addr.Is4() {
			got = f.got4
		}
		if l.ttl > 0 && !isClosed(got) {
			close(got)
		}
	}
	if !isClosed(f.any) && (isClosed(f.got4) || isClosed(f.got6)) {
		close(f.any)
		lookupDuration.WithLabelValues(r.key, "true").Observe(time.Since(f.start).Seconds())
	}
	both := isClosed(f.got4) && isClosed(f.got6)
	r.mu.Unlock()
	if both {
		r.end(host, f)
	}
}

// maintain opens the listener, refreshes the entries asked for near their
// expiry, and rereads the interfaces every rescanEvery.
// It runs until ctx is cancelled, then returns nil.
func (r *resolver) maintain(ctx context.Context, names []string) error {
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
