package fallback

// Ready implements the ready.Readiness interface. The fallback is ready
// once its upstreams are set up; whether they answer is a matter for each
// query, as with forward, so a public outage does not take the tailnet
// and LAN answers out of service.
func (f *Fallback) Ready() bool { return f.up.Started() }
