package tailnet

// HostKnown reports whether label, a lowercase label, names a node of the
// tailnet, in any state, or an alias of one, as of the last table built
// while this node was Running: a tailnet that goes down or logs out keeps
// its last names. loaded is false until there was such a table. The mdns
// plugin of the same server block asks it which names may be LAN hosts;
// it is one atomic load, with no I/O and no allocation.
func (t *Tailnet) HostKnown(label string) (known, loaded bool) {
	tbl := t.hosts.Load()
	if tbl == nil {
		return false, false
	}
	return tbl.IsHost(label), true
}
