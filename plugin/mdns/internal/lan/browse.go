package lan

import (
	"context"
	stdlog "log"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/mdns"
)

// browseEvery is how often the service types are browsed.
const browseEvery = time.Minute

// browseWait is how long one browse listens for answers.
const browseWait = time.Second

// browseMax bounds the hosts one browse of one service type on one
// interface can name; hashicorp/mdns drops those past it.
const browseMax = 256

// browseLoop browses the service types of the services option on every
// interface, every browseEvery, and looks up the hosts that offer them, so
// that their first query is answered from the cache. The browse only
// names hosts: their addresses come from a lookup, through the same
// checks as every answer. It runs until ctx is cancelled, then returns nil.
func (r *Resolver) browseLoop(ctx context.Context) error {
	for {
		wait := time.Second // until there is an interface to browse on
		if r.browseOnce(ctx) {
			wait = browseEvery
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
	}
}

// browseOnce browses every service type on every interface, and reports
// whether there was an interface to browse on.
func (r *Resolver) browseOnce(ctx context.Context) bool {
	l := r.lst.Load()
	r.mu.Lock()
	services := r.browse
	r.mu.Unlock()
	if l == nil {
		return false
	}
	var found []string
	for _, svc := range services {
		for _, ifc := range l.ifaces {
			// Read only once the query has returned: hashicorp/mdns goes on
			// writing an entry after it has sent it.
			entries := make(chan *mdns.ServiceEntry, browseMax)
			err := mdns.QueryContext(ctx, &mdns.QueryParam{
				Service:   svc,
				Domain:    "local",
				Timeout:   browseWait,
				Interface: &net.Interface{Index: ifc.index, Name: ifc.name},
				Entries:   entries,
				Logger:    stdlog.New(debugWriter{}, "", 0),
			})
			close(entries)
			for e := range entries {
				if host, ok := localHost(e.Host); ok && !slices.Contains(found, host) {
					found = append(found, host)
				}
			}
			if err != nil {
				log.Debugf("browse %s on %s: %v", svc, ifc.name, err)
			}
			if ctx.Err() != nil {
				return true
			}
		}
	}
	// Only now: hashicorp/mdns's client shares port 5353 while it runs, and
	// could take the unicast answers to these lookups.
	for _, host := range found {
		if r.Cached(host) == nil {
			r.lookup(host, reasonBrowse)
		}
	}
	return true
}

// debugWriter sends hashicorp/mdns's log lines to the debug log.
type debugWriter struct{}

func (debugWriter) Write(p []byte) (int, error) {
	log.Debug(strings.TrimSpace(string(p)))
	return len(p), nil
}
