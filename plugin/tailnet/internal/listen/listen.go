// Package listen serves the server blocks whose tailnet block says
// `listen` on this node's tailnet addresses, and follows the addresses as
// the watch reports them.
package listen

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	clog "github.com/coredns/coredns/plugin/pkg/log"

	"github.com/miekg/dns"
)

var log = clog.NewWithPlugin("tailnet")

// Member is one tailnet instance of a group.
type Member struct {
	// Addrs returns this node's tailnet addresses, from the instance's
	// latest table; none before the first.
	Addrs func() []netip.Addr
	// Net opens the sockets: an embedded node's network stack; nil for
	// the kernel's.
	Net Network
}

// Network is where a group listens: tsnet.Server is one.
type Network interface {
	Listen(network, addr string) (net.Listener, error)
	ListenPacket(network, addr string) (net.PacketConn, error)
}

// Group serves the server blocks whose tailnet block says `listen` on
// this node's tailnet addresses, on the blocks' port, and follows the
// addresses as the IPN bus reports them. Unlike bind, which resolves its
// addresses once at start-up, it starts with tailscaled down and begins to
// listen as soon as the node has its address. Blocks with the same port
// share one group, in Corefile order, so views work on it as on the
// blocks' own listener.
type Group struct {
	port    string
	configs []*dnsserver.Config // in Corefile order; fixed before OnStartup

	mu sync.Mutex
	// mu guards the following fields.
	srv     *dnsserver.Server // runs the blocks' plugins; never listens itself
	members []*Member         // whose tables tell this node's addresses
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	wake    chan struct{} // capacity 1: the addresses may have changed
}

type groupKey struct{ port string }

// Join adds the server block of c to the group of its port, making the
// group first.
func Join(c *caddy.Controller) *Group {
	cfg := dnsserver.GetConfig(c)
	key := groupKey{cfg.Port}
	g, _ := c.Get(key).(*Group)
	if g == nil {
		g = &Group{port: cfg.Port, wake: make(chan struct{}, 1)}
		c.Set(key, g)
	}
	g.configs = append(g.configs, cfg)
	return g
}

// Start adds m, and runs the group once its first member starts. The
// server is built here, after every block was set up and before any
// listener serves, so that building its plugin chains races with no query.
func (g *Group) Start(m *Member) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.members = append(g.members, m)
	if g.srv != nil {
		return nil
	}
	srv, err := dnsserver.NewServer("dns://:"+g.port, g.configs)
	if err != nil {
		return err
	}
	g.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.wg.Go(func() { g.run(ctx) })
	g.Changed()
	return nil
}

// Stop removes m; the last member to go stops every listener.
func (g *Group) Stop(m *Member) {
	g.mu.Lock()
	g.members = slices.DeleteFunc(g.members, func(x *Member) bool { return x == m })
	last := len(g.members) == 0 && g.cancel != nil
	g.mu.Unlock()
	if last {
		g.cancel()
		g.wg.Wait()
	}
}

// Changed tells the group that the addresses may have changed.
func (g *Group) Changed() {
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// addrs returns this node's tailnet addresses from a member's table.
func (g *Group) addrs() []netip.Addr {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, m := range g.members {
		if addrs := m.Addrs(); len(addrs) > 0 {
			return addrs
		}
	}
	return nil
}

// run binds and unbinds listeners as the addresses change, until ctx is
// cancelled, then closes them all and returns nil. An address that cannot
// be bound yet is tried again every second.
func (g *Group) run(ctx context.Context) error {
	bound := map[netip.Addr][]*dns.Server{}
	defer func() {
		for _, srvs := range bound {
			shutdown(srvs)
		}
	}()
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-g.wake:
		case <-retry.C:
		}
		want := g.addrs()
		for a, srvs := range bound {
			if !slices.Contains(want, a) {
				shutdown(srvs)
				delete(bound, a)
				log.Infof("stopped listening on %s", net.JoinHostPort(a.String(), g.port))
			}
		}
		failed := false
		for _, a := range want {
			if bound[a] != nil {
				continue
			}
			srvs, err := g.listen(ctx, a)
			if err != nil {
				log.Warningf("listen on tailnet address %s: %v; trying again", a, err)
				failed = true
				continue
			}
			bound[a] = srvs
			log.Infof("listening on tailnet address %s", net.JoinHostPort(a.String(), g.port))
		}
		if failed {
			retry.Reset(time.Second)
		}
	}
}

// listen serves UDP and TCP on a:port. The sockets are bound with
// IP_FREEBIND, so an address tailscaled announced but has not yet put on
// its interface can be bound already.
func (g *Group) listen(ctx context.Context, a netip.Addr) ([]*dns.Server, error) {
	addr := net.JoinHostPort(a.String(), g.port)
	pc, ln, err := g.sockets(ctx, addr)
	if err != nil {
		return nil, err
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		ctx := context.WithValue(context.Background(), dnsserver.Key{}, g.srv)
		ctx = context.WithValue(ctx, dnsserver.LoopKey{}, 0)
		g.srv.ServeDNS(ctx, w, r)
	})
	srvs := []*dns.Server{
		{PacketConn: pc, Net: "udp", Handler: handler},
		{Listener: ln, Net: "tcp", Handler: handler, ReadTimeout: 3 * time.Second, WriteTimeout: 5 * time.Second},
	}
	for _, s := range srvs {
		go s.ActivateAndServe()
	}
	return srvs, nil
}

// sockets opens the UDP and TCP sockets of addr: in the embedded node's
// network stack when the group's blocks run one, else in the kernel's.
func (g *Group) sockets(ctx context.Context, addr string) (net.PacketConn, net.Listener, error) {
	g.mu.Lock()
	var node Network
	if len(g.members) > 0 {
		node = g.members[0].Net
	}
	g.mu.Unlock()
	if node != nil {
		pc, err := node.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := node.Listen("tcp", addr)
		if err != nil {
			pc.Close()
			return nil, nil, err
		}
		return pc, ln, nil
	}
	lc := net.ListenConfig{Control: freebind}
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return nil, nil, err
	}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		pc.Close()
		return nil, nil, err
	}
	return pc, ln, nil
}

func shutdown(srvs []*dns.Server) {
	for _, s := range srvs {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s.ShutdownContext(ctx)
		cancel()
	}
}
