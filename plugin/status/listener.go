package status

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/tailhorizon/tailhorizon/internal/shared"
	"github.com/tailhorizon/tailhorizon/internal/trace"
)

// listeners are the running HTTP listeners by address, shared by the
// server blocks that name the same address and across reloads.
var listeners = shared.Registry[*listener, block]{Start: startListener}

// listener is the HTTP server of one address. It serves the blocks of
// its current users.
type listener struct {
	addr   string
	err    error // why it does not listen; nil if it does
	srv    *http.Server
	done   chan struct{}
	blocks atomic.Pointer[[]*block]
}

func startListener(addr string) *listener {
	l := &listener{addr: addr, done: make(chan struct{})}
	l.blocks.Store(&[]*block{})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		l.err = err
		close(l.done)
		return l
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /explain", l.serveExplain)
	mux.HandleFunc("GET /status.json", l.serveStatusJSON)
	mux.HandleFunc("GET /{$}", l.servePage)
	mux.HandleFunc("GET /status", l.servePage)
	l.srv = &http.Server{Handler: mux, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
	go func() {
		defer close(l.done)
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warningf("status listener %s: %v", addr, err)
		}
	}()
	return l
}

// Configure implements shared.Service: the blocks of its users.
func (l *listener) Configure(users []*block) {
	bs := append([]*block(nil), users...)
	l.blocks.Store(&bs)
}

// Stop implements shared.Service.
func (l *listener) Stop() {
	if l.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		l.srv.Shutdown(ctx)
		cancel()
	}
	<-l.done
}

// serveExplain answers GET /explain?name=NAME[&type=TYPE][&upstream=1]
// with the traces of NAME in each server block that serves it, as JSON;
// with upstream=1 a public answer is asked of fallback's upstreams.
func (l *listener) serveExplain(w http.ResponseWriter, r *http.Request) {
	qname, qtype, ok := parseQuestion(r.URL.Query().Get("name"), r.URL.Query().Get("type"))
	if !ok {
		count("explain", http.StatusBadRequest)
		http.Error(w, "want ?name=NAME, a domain name, and optionally &type=TYPE, such as A or AAAA", http.StatusBadRequest)
		return
	}
	now := time.Now()
	out := []trace.Trace{}
	for _, b := range *l.blocks.Load() {
		if b.serves(qname) {
			tr := b.trace(qname, qtype, now)
			if r.URL.Query().Get("upstream") == "1" {
				b.askUpstreams(r.Context(), &tr, qtype)
			}
			out = append(out, tr)
		}
	}
	count("explain", http.StatusOK)
	writeJSON(w, out)
}

// pageData is the status of every block, for the page and its JSON.
type pageData struct {
	Generated time.Time     `json:"generated"`
	Blocks    []blockStatus `json:"blocks"`
}

func (l *listener) data() pageData {
	d := pageData{Generated: time.Now().UTC(), Blocks: []blockStatus{}}
	for _, b := range *l.blocks.Load() {
		d.Blocks = append(d.Blocks, b.status())
	}
	return d
}

func (l *listener) serveStatusJSON(w http.ResponseWriter, _ *http.Request) {
	count("status.json", http.StatusOK)
	writeJSON(w, l.data())
}

func (l *listener) servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if err := page.Execute(w, l.data()); err != nil {
		log.Debugf("status page: %v", err)
	}
	count("page", http.StatusOK)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
