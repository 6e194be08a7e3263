package tailnet

// Ready implements the ready.Readiness interface: ready once a first table
// was loaded from tailscaled.
func (t *Tailnet) Ready() bool { return t.table.Load() != nil }
