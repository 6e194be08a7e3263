package tailnet

import (
	"net/netip"
	"strings"
	"time"

	"github.com/tailhorizon/tailhorizon/plugin/tailnet/internal/watch"
)

// entry is what one name of the zone resolves to: one host, or every
// node carrying a tag.
type entry struct {
	host  string        // label of the host for a CNAME target; "" for a tag group
	nodes []*watch.Node // never empty
}

// table answers one plugin instance's questions from one snapshot. It is
// immutable and safe for concurrent use.
type table struct {
	snap     *watch.Snapshot            // what it was built from; never nil
	names    map[string]*entry          // keys are lowercase labels without dots
	ptr      map[netip.Addr]*watch.Node // every tailnet address
	serial   uint32                     // SOA serial: when the snapshot was made
	selfNode *watch.Node                // this node; nil if unknown
}

// tableConfig is what a plugin instance adds to a snapshot to make its table.
type tableConfig struct {
	aliases   map[string]string // alias label -> host label, both lowercase
	tags      bool              // answer tag names
	tagPrefix string            // only tags "tag:PREFIX..." count; the name is what follows
}

// buildTable indexes s for cfg. Hosts win over aliases, and Corefile
// aliases over tag names, so that adding a tag never hijacks a host.
func buildTable(s *watch.Snapshot, cfg tableConfig) *table {
	t := &table{
		snap:   s,
		names:  make(map[string]*entry, len(s.Nodes)),
		ptr:    make(map[netip.Addr]*watch.Node, 2*len(s.Nodes)),
		serial: uint32(s.Updated.Unix()),
	}
	for _, n := range s.Nodes {
		if n.Self {
			t.selfNode = n
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
	for alias, host := range cfg.aliases {
		if _, taken := t.names[alias]; taken {
			continue
		}
		if e, ok := t.names[host]; ok {
			t.names[alias] = e
		}
	}
	if !cfg.tags {
		return t
	}
	groups := map[string]*entry{}
	for _, n := range s.Nodes {
		for _, tag := range n.Tags {
			name, ok := strings.CutPrefix(tag, "tag:"+cfg.tagPrefix)
			name = strings.ToLower(name)
			if !ok || name == "" || strings.Contains(name, ".") {
				continue
			}
			if _, taken := t.names[name]; taken && groups[name] == nil {
				continue
			}
			if groups[name] == nil {
				groups[name] = &entry{}
				t.names[name] = groups[name]
			}
			groups[name].nodes = append(groups[name].nodes, n)
		}
	}
	return t
}

// serving reports whether t answers names at all: it was loaded, this node
// is Running, and a stale table is within its stale period.
func (t *table) serving() bool {
	return t != nil && t.snap.Serving(time.Now().UnixNano())
}

// stale reports whether t was built from the last view of a lost
// tailscaled.
func (t *table) stale() bool { return t.snap.State == watch.Stale }
