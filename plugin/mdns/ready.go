package mdns

// Ready implements the ready.Readiness interface: ready once the resolver
// listens on at least one multicast interface.
func (m *MDNS) Ready() bool {
	res := m.res.Load()
	return res != nil && res.Listening()
}
