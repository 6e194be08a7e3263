// Package table is the tailnet plugin's immutable lookup table: what each
// name of an instance's zones answers, built from one watch.Snapshot and
// the instance's Config. Build makes one on the watch's goroutine; a query
// reads it without a lock and asks it for its Answer.
package table

import (
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
)

// entry is what one name of the zone resolves to: one host, every node
// carrying a tag, or a Tailscale Service and its hosts.
type entry struct {
	host  string        // label of the host for a CNAME target; "" for a tag group or service
	nodes []*watch.Node // never empty, but for a service with no host
	// A service's VIPs, answered instead of its hosts' own addresses while
	// one host is reachable; both nil for a host or a tag group.
	vip4, vip6 []net.IP
	service    bool // a Tailscale Service, or an alias of one
	alias      bool // a Corefile alias or a tag group: an extra record of its name wins
}

// Table answers one plugin instance's questions from one snapshot. It is
// immutable and safe for concurrent use. A nil *Table is the table before
// the first snapshot: it serves nothing.
type Table struct {
	snap    *watch.Snapshot            // what it was built from; never nil
	cfg     Config                     // what it was built with
	names   map[string]*entry          // keys are lowercase labels without dots
	records map[string]*recordSet      // control's extra records; keys are lowercase FQDNs
	ptr     map[netip.Addr]*watch.Node // every tailnet address
	serial  uint32                     // SOA serial: when the snapshot was made
	self    *watch.Node                // this node; nil if unknown
}

// Config is what a plugin instance adds to a snapshot to make its table.
type Config struct {
	Aliases   map[string]string // alias label -> host label, both lowercase
	SvcAlias  map[string]string // alias label -> service name without "svc:", both lowercase
	Services  bool              // answer Tailscale Services
	Records   RecordMode        // which of control's extra records to serve
	Zones     []string          // the forward zones records are served in
	Tags      bool              // answer tag names
	TagPrefix string            // only tags "tag:PREFIX..." count; the name is what follows

	TTL   uint32 // of every record answered, in seconds
	CNAME bool   // answer a CNAME to HOST.ZONE before the addresses of a name below a host or of an alias
	Probe bool   // the probe runs: tell it which nodes queries reach
}

// Build indexes s for cfg. A name is, first to last: a host, a Tailscale
// Service, an extra record, a Corefile alias, a tag name; so that nothing
// control or a tag adds ever hijacks a host, and what control says beats
// a local alias (README, "Precedence").
func Build(s *watch.Snapshot, cfg Config) *Table {
	t := &Table{
		snap:   s,
		cfg:    cfg,
		names:  make(map[string]*entry, len(s.Nodes)),
		ptr:    make(map[netip.Addr]*watch.Node, 2*len(s.Nodes)),
		serial: uint32(s.Updated.Unix()),
	}
	for _, n := range s.Nodes {
		if n.Self {
			t.self = n
		}
		for _, a := range n.V4 {
			t.ptr[a] = n
		}
		for _, a := range n.V6 {
			t.ptr[a] = n
		}
		if n.Host != "" {
			t.names[n.Host] = &entry{host: n.Host, nodes: []*watch.Node{n}}
		}
	}
	services := t.addServices(s, cfg)
	for alias, host := range cfg.Aliases {
		if _, taken := t.names[alias]; taken {
			continue
		}
		if e, ok := t.names[host]; ok && !e.service {
			a := *e
			a.alias = true
			t.names[alias] = &a
		}
	}
	for alias, svc := range cfg.SvcAlias {
		if _, taken := t.names[alias]; !taken && services[svc] != nil {
			a := *services[svc]
			a.alias = true
			t.names[alias] = &a
		}
	}
	if cfg.Tags {
		t.addTags(s, cfg)
	}
	t.addRecords(s, cfg, services)
	return t
}

// addTags adds a name for each tag, for the nodes that carry it, unless
// the name is taken.
func (t *Table) addTags(s *watch.Snapshot, cfg Config) {
	groups := map[string]*entry{}
	for _, n := range s.Nodes {
		for _, tag := range n.Tags {
			name, ok := strings.CutPrefix(tag, "tag:"+cfg.TagPrefix)
			name = strings.ToLower(name)
			if !ok || name == "" || strings.Contains(name, ".") {
				continue
			}
			if _, taken := t.names[name]; taken && groups[name] == nil {
				continue
			}
			if groups[name] == nil {
				groups[name] = &entry{alias: true}
				t.names[name] = groups[name]
			}
			groups[name].nodes = append(groups[name].nodes, n)
		}
	}
}

// Serving reports whether t answers names at all: it was loaded, this node
// is Running, and a stale table is within its stale period.
func (t *Table) Serving() bool {
	return t != nil && t.snap.Serving(time.Now().UnixNano())
}

// Stale reports whether t was built from the last view of a lost
// tailscaled.
func (t *Table) Stale() bool { return t != nil && t.snap.State == watch.Stale }

// Serial is the zone's SOA serial: when the snapshot was made, in unix
// seconds; 0 before the first table.
func (t *Table) Serial() uint32 {
	if t == nil {
		return 0
	}
	return t.serial
}

// Self returns this node; nil if unknown or before the first table.
func (t *Table) Self() *watch.Node {
	if t == nil {
		return nil
	}
	return t.self
}

// Node returns the node that has the tailnet address addr, or nil.
func (t *Table) Node(addr netip.Addr) *watch.Node { return t.ptr[addr] }

// IsHost reports whether label, a lowercase label, names a node of the
// tailnet, in any state, or a Corefile alias of one; not a tag name or a
// service.
func (t *Table) IsHost(label string) bool {
	e := t.names[label]
	return e != nil && e.host != ""
}
