// Package world runs tailhorizon's demo world: the bundled coredns serving
// a zone on 127.0.0.1, answering from a real tailnet run on loopback in a
// network namespace of its own (control, DERP, and tsnet nodes hub, laptop
// and nas), from an mDNS responder on a LAN made of a veth pair into that
// namespace, and from a local stand-in for the zone's public authority.
// Nodes go offline and back on command, so the answers can be watched as
// they move between the tailnet, the LAN and the public records.
//
// Nothing leaves the machine: the tailnet lives in its namespace, the mDNS
// LAN is a veth pair into it, and the public stand-in is on 127.0.0.1.
// Everything stops, and the temporary directory and namespace are gone,
// when Run returns.
package world

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"

	"github.com/miekg/dns"

	"github.com/tailhorizon/tailhorizon/internal/freeport"
)

// Config says where the demo serves and what it runs.
type Config struct {
	Listen  string // the DNS address, "127.0.0.1:5300"
	Metrics string // prometheus address, "" for none
	Control string // HTTP address to take nodes offline and back, "" for none
	Zone    string // the zone, "example.org"
	// Socket is a real tailscaled's LocalAPI socket. Empty runs the
	// embedded tailnet instead.
	Socket string
	Out    io.Writer // where the banner and node changes are written
	// Log, if not nil, takes the standard logger's output, which CoreDNS
	// logs through, for the run, with the ready plugin's "Plugins not
	// ready" written once (see quietReadyLog). Nil leaves the logger alone.
	Log io.Writer
	In  io.Reader // lines naming a node to take offline or back; nil for none
	// WorldOnly runs the world without a coredns, for benchmarks and load
	// runs that start their own: it writes the world's socket, LAN
	// interface, public zone file and nodes on Out as "key=value" lines,
	// then "ready".
	WorldOnly bool
}

// startTimeout bounds bringing the world up, and each command to it.
const startTimeout = 2 * time.Minute

// Run runs the demo until ctx ends, then stops everything it started.
func Run(ctx context.Context, cfg Config) error {
	dir, err := os.MkdirTemp("", "tailhorizon-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	d := &demo{cfg: cfg, socket: cfg.Socket}
	if cfg.Socket == "" {
		w, err := startWorld(ctx, dir)
		if err != nil {
			return fmt.Errorf("demo world: %w", err)
		}
		defer w.stop()
		d.world = w
		d.socket = w.socket
	}
	if cfg.WorldOnly {
		return d.runWorldOnly(ctx)
	}
	publicAddr, err := loopbackAddr()
	if err != nil {
		return err
	}
	readyAddr, err := loopbackAddr()
	if err != nil {
		return err
	}
	corefile, err := writeFiles(dir, d.corefileData(publicAddr, readyAddr))
	if err != nil {
		return err
	}
	if cfg.Log != nil {
		defer quietReadyLog(cfg.Log)()
	}
	caddy.Quiet, dnsserver.Quiet = true, true
	inst, err := caddy.Start(caddy.CaddyfileInput{Contents: corefile, Filepath: filepath.Join(dir, "Corefile"), ServerTypeName: "dns"})
	if err != nil {
		return fmt.Errorf("start coredns: %w", err)
	}
	defer func() { inst.Stop(); inst.ShutdownCallbacks() }()
	d.readyAddr = readyAddr
	if !d.waitReady(ctx) || !d.waitTailnet(ctx) {
		fmt.Fprintf(cfg.Out, "warning: the plugins are not ready after %v: is tailscaled running?\n", readyTimeout)
	}
	if cfg.Control != "" {
		stop, err := d.serveControl()
		if err != nil {
			return err
		}
		defer stop()
	}
	d.banner()
	if cfg.In != nil {
		go d.readCommands(cfg.In)
	}
	<-ctx.Done()
	fmt.Fprintln(cfg.Out, "stopping the demo")
	return nil
}

// demo is a running demo.
type demo struct {
	cfg       Config
	socket    string
	readyAddr string        // the ready plugin's address
	world     *worldProcess // nil with a real tailscaled
}

// runWorldOnly serves the control endpoint for the world and describes it.
func (d *demo) runWorldOnly(ctx context.Context) error {
	if d.world == nil {
		return errNoWorld
	}
	if d.cfg.Control != "" {
		stop, err := d.serveControl()
		if err != nil {
			return err
		}
		defer stop()
	}
	zonePath := filepath.Join(filepath.Dir(d.socket), "public.db")
	if err := os.WriteFile(zonePath, []byte(publicZone(d.cfg.Zone)), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(d.cfg.Out, "socket=%s\nlan_interface=%s\nlan_prefix=%s\npublic_zone=%s\n", d.socket, d.world.veth, lanHostAddr, zonePath)
	for _, n := range d.world.nodes() {
		lan := "-"
		if n.LAN.IsValid() {
			lan = n.LAN.String()
		}
		fmt.Fprintf(d.cfg.Out, "node=%s %s %s %v %s\n", n.Name, n.IPv4, n.IPv6, n.Online, lan)
	}
	fmt.Fprintln(d.cfg.Out, "ready")
	<-ctx.Done()
	return nil
}

// loopbackAddr returns an address on 127.0.0.1 free for TCP and UDP.
func loopbackAddr() (string, error) {
	port, err := freeport.Find()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), err
}

// readyTimeout bounds the wait for the plugins' first state: a tailscaled
// that is down never makes tailnet ready.
const readyTimeout = 15 * time.Second

// waitReady reports whether the ready plugin says every plugin is ready
// (tailnet has its first table, mdns its sockets) within readyTimeout. It
// says once that it waits, and once that the wait is over.
func (d *demo) waitReady(ctx context.Context) bool {
	c := &http.Client{Timeout: time.Second}
	url := "http://" + d.readyAddr + "/ready"
	start, said := time.Now(), false
	ok := pollUntil(ctx, start.Add(readyTimeout), func() bool {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		if !said {
			fmt.Fprintf(d.cfg.Out, "waiting for the plugins to be ready (%s), for at most %v\n", url, readyTimeout)
			said = true
		}
		return false
	})
	if ok && said {
		fmt.Fprintf(d.cfg.Out, "the plugins are ready after %.1f s\n", time.Since(start).Seconds())
	}
	return ok
}

// quietReadyLog sends the standard logger to w, with the ready plugin's
// "Plugins not ready" line written only the first time: the plugin logs
// every poll of /ready that finds a plugin not ready, and waitReady polls
// every 50 ms. It returns the function that restores the logger.
func quietReadyLog(w io.Writer) (restore func()) {
	prev := log.Writer()
	log.SetOutput(&onceWriter{w: w, once: "plugin/ready: Plugins not ready"})
	return func() { log.SetOutput(prev) }
}

// onceWriter writes to w every line but the second and later ones that
// hold once. The standard logger writes one line per Write, under its lock.
type onceWriter struct {
	w    io.Writer
	once string
	seen bool
}

func (o *onceWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(o.once)) {
		if o.seen {
			return len(p), nil
		}
		o.seen = true
	}
	return o.w.Write(p)
}

// waitTailnet reports whether the coredns answers the world's nodes with
// their tailnet addresses within readyTimeout; with a real tailscaled it
// has nothing to check.
func (d *demo) waitTailnet(ctx context.Context) bool {
	if d.world == nil {
		return true
	}
	c := &dns.Client{Timeout: 500 * time.Millisecond}
	deadline := time.Now().Add(readyTimeout)
	for _, n := range d.world.nodes() {
		m := new(dns.Msg).SetQuestion(dns.Fqdn(n.Name+"."+d.cfg.Zone), dns.TypeA)
		if !pollUntil(ctx, deadline, func() bool {
			r, _, err := c.ExchangeContext(ctx, m, d.cfg.Listen)
			return err == nil && len(r.Answer) > 0 && r.Answer[0].(*dns.A).A.String() == n.IPv4.String()
		}) {
			return false
		}
	}
	return true
}

// pollUntil calls ok every 50 ms until it reports true (then pollUntil
// does), deadline passes or ctx ends.
func pollUntil(ctx context.Context, deadline time.Time, ok func() bool) bool {
	for {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}
