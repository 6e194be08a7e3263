package tailnet

import (
	"net/netip"
	"slices"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnsutil"

	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/embedded"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/listen"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/table"
	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
)

// onStartup starts what t answers from: the embedded node if it runs one,
// its place in the listen group, and its subscription to the watch.
func (t *Tailnet) onStartup() error {
	key, api := t.socket, func() watch.LocalAPI { return watch.Tailscaled(t.socket) }
	if t.node != nil {
		n, err := embedded.Start(t.node)
		if err != nil {
			return plugin.Error(name, err)
		}
		t.embedded = n
		key, api = t.node.Key(), func() watch.LocalAPI { return watch.Client(n.LocalClient()) }
	}
	if t.listen != nil {
		t.member = &listen.Member{Addrs: t.selfAddrs}
		if t.embedded != nil {
			t.member.Net = t.embedded
		}
		if err := t.listen.Start(t.member); err != nil {
			return plugin.Error(name, err)
		}
	}
	t.sub = watch.Acquire(key, api, t.watch, t.update)
	return nil
}

// onShutdown stops what onStartup started, in reverse.
func (t *Tailnet) onShutdown() error {
	if t.member != nil {
		t.listen.Stop(t.member)
		t.member = nil
	}
	if t.sub != nil {
		t.sub.Release()
		t.sub = nil
	}
	if t.embedded != nil {
		t.embedded.Release()
		t.embedded = nil
	}
	return nil
}

// update builds t's table from a new snapshot. It runs on the watch's
// goroutine, never on the query path.
func (t *Tailnet) update(s *watch.Snapshot) {
	cfg := t.tableConf
	cfg.TTL, cfg.Probe = t.ttl, t.watch.Probe > 0
	for _, z := range t.Zones {
		if dnsutil.IsReverse(z) == 0 {
			cfg.Zones = append(cfg.Zones, z)
		}
	}
	tbl := table.Build(s, cfg)
	t.table.Store(tbl)
	if s.Running {
		t.hosts.Store(tbl)
	}
	if t.listen != nil {
		t.listen.Changed()
	}
}

// selfAddrs returns this node's tailnet addresses from t's table.
func (t *Tailnet) selfAddrs() []netip.Addr {
	self := t.table.Load().Self()
	if self == nil {
		return nil
	}
	return append(slices.Clone(self.V4), self.V6...)
}
