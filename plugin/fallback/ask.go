package fallback

import (
	"context"
	"net"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/trace"
)

// AskUpstreams asks f's upstreams for qname of qtype, as the public
// answer would, and returns what they say as a trace step. The status
// plugin calls it only when the trace's reader asks for it: it is the one
// part of a trace that sends a query.
func (f *Fallback) AskUpstreams(ctx context.Context, qname string, qtype uint16) trace.Step {
	st := trace.Step{Source: "upstreams"}
	if f.up.fwd == nil {
		st.Verdict, st.Knows = trace.Skip, "not started"
		return st
	}
	q := new(dns.Msg).SetQuestion(qname, qtype)
	q.SetEdns0(dns.DefaultMsgSize, false)
	w := &captureWriter{}
	if _, err := f.up.fwd.ServeDNS(ctx, w, q); err != nil || w.msg == nil {
		st.Verdict, st.Knows = trace.NXDomain, "no upstream answered"
		if err != nil {
			st.Reason = err.Error()
		}
		return st
	}
	st.Knows = "they answered " + dns.RcodeToString[w.msg.Rcode]
	st.Verdict = trace.Answer
	if w.msg.Rcode != dns.RcodeSuccess {
		st.Verdict = trace.NXDomain
	}
	for _, rr := range w.msg.Answer {
		st.Records = append(st.Records, rr.String())
	}
	return st
}

// captureWriter keeps the message written to it, as from a UDP client on
// loopback.
type captureWriter struct {
	dns.ResponseWriter // nil: only the methods below are called
	msg                *dns.Msg
}

func (w *captureWriter) WriteMsg(m *dns.Msg) error { w.msg = m; return nil }
func (w *captureWriter) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (w *captureWriter) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (w *captureWriter) Write(b []byte) (int, error) {
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil {
		return 0, err
	}
	w.msg = m
	return len(b), nil
}
