package tailnet

// Ready implements the ready.Readiness interface: ready once a first table
// was loaded from tailscaled.
func (t *Tailnet) Ready() bool { return t.table.Load() != nil }

// update builds t's table from a new snapshot. It runs on the watcher's
// goroutine, never on the query path.
func (t *Tailnet) update(s *snapshot) {
	t.table.Store(buildTable(s, t.tableConf))
	if t.listen != nil {
		t.listen.changed()
	}
}
