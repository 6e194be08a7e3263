package status

// Ready implements the ready.Readiness interface: the listener is up.
func (s *Status) Ready() bool {
	l := s.listener.Load()
	return l != nil && l.err == nil
}
