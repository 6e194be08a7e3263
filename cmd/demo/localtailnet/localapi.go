package localtailnet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"sync"
	"time"

	"tailscale.com/client/tailscale/apitype"
	"tailscale.com/types/logger"
)

// LocalAPI serves a node's LocalAPI on a unix socket, standing in for
// tailscaled's socket: point local.Client{Socket: Path, UseSocketOnly: true}
// at it. Stop and Start simulate tailscaled dying and coming back.
type LocalAPI struct {
	Path string // unix socket; short, as sun_path holds only 108 bytes

	proxy *httputil.ReverseProxy
	tr    *http.Transport // to the node's in-memory LocalAPI
	logf  logger.Logf

	mu  sync.Mutex
	srv *http.Server // nil while stopped; guarded by mu
}

// ServeLocalAPI serves n's LocalAPI on the unix socket path until Stop.
func (n *Node) ServeLocalAPI(path string, logf logger.Logf) (*LocalAPI, error) {
	tr := &http.Transport{DialContext: n.LocalClient().Dial}
	l := &LocalAPI{
		Path: path,
		tr:   tr,
		logf: logf,
		proxy: &httputil.ReverseProxy{
			Rewrite: func(r *httputil.ProxyRequest) {
				// The LocalAPI rejects any other Host.
				r.Out.URL.Scheme = "http"
				r.Out.URL.Host = apitype.LocalAPIHost
				r.Out.Host = apitype.LocalAPIHost
			},
			Transport:     tr,
			FlushInterval: -1, // watch-ipn-bus streams one JSON object per notify
			ErrorLog:      logger.StdLogger(logf),
		},
	}
	if err := l.Start(); err != nil {
		return nil, err
	}
	return l, nil
}

// Start listens on Path again. It is a no-op while already serving.
func (l *LocalAPI) Start() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.srv != nil {
		return nil
	}
	os.Remove(l.Path) // a socket left by a killed process
	ln, err := net.Listen("unix", l.Path)
	if err != nil {
		return fmt.Errorf("listen on localapi socket: %w", err)
	}
	l.srv = &http.Server{Handler: l.proxy, ErrorLog: logger.StdLogger(l.logf)}
	go l.srv.Serve(ln) // returns once Stop closes ln
	return nil
}

// Stop closes the listener and every open connection, ending WatchIPNBus
// streams as a dying tailscaled would, and waits for the requests to end.
// The socket file is removed. It is a no-op while stopped.
func (l *LocalAPI) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.srv == nil {
		return
	}
	l.srv.Close()
	// After Close, Shutdown only waits for Serve and the handlers to return.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l.srv.Shutdown(ctx)
	l.srv = nil
	l.tr.CloseIdleConnections()
}
