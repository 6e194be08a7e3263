package status

import (
	"net"
	"sync/atomic"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	clog "github.com/coredns/coredns/plugin/pkg/log"
)

var log = clog.NewWithPlugin(name)

func init() { plugin.Register(name, setup) }

// Status is one status directive: its address, and its server block once
// started.
type Status struct {
	addr     string
	block    block
	listener atomic.Pointer[listener] // nil outside OnStartup..OnShutdown
}

func setup(c *caddy.Controller) error {
	s, err := parse(c)
	if err != nil {
		return plugin.Error(name, err)
	}
	cfg := dnsserver.GetConfig(c)
	c.OnStartup(func() error {
		s.find(cfg)
		l := listeners.Acquire(s.addr, &s.block)
		s.listener.Store(l)
		if l.err != nil {
			return plugin.Error(name, l.err)
		}
		return nil
	})
	c.OnShutdown(func() error {
		if s.listener.Swap(nil) != nil {
			listeners.Release(s.addr, &s.block)
		}
		return nil
	})
	return nil
}

// find reads the plugins of the server block of cfg, in chain order.
func (s *Status) find(cfg *dnsserver.Config) {
	b := block{server: cfg.Transport + "://" + cfg.Zone + ":" + cfg.Port, view: cfg.ViewName, zones: []string{cfg.Zone}}
	for _, h := range cfg.Handlers() {
		if p, ok := h.(policySource); ok {
			b.policy = p
			p.RecordSwitches()
		}
		if e, ok := h.(explainer); ok {
			b.sources = append(b.sources, e)
		}
		if t, ok := h.(tailnetStatus); ok {
			b.tailnets = append(b.tailnets, t)
		}
		if l, ok := h.(lanStatus); ok {
			b.lans = append(b.lans, l)
		}
	}
	s.block = b
}

// parse reads one status line: status [ADDRESS].
func parse(c *caddy.Controller) (*Status, error) {
	s := &Status{addr: defaultAddr}
	i := 0
	for c.Next() {
		if i > 0 {
			return nil, plugin.ErrOnce
		}
		i++
		args := c.RemainingArgs()
		switch len(args) {
		case 0:
		case 1:
			if _, _, err := net.SplitHostPort(args[0]); err != nil {
				return nil, c.Errf("address %q: want HOST:PORT, such as 127.0.0.1:9154", args[0])
			}
			s.addr = args[0]
		default:
			return nil, c.ArgErr()
		}
		if c.NextBlock() {
			return nil, c.Errf("unknown property %q", c.Val())
		}
	}
	return s, nil
}
