package world

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"
)

// errNoWorld is the answer to commands when the demo runs on a real
// tailscaled: its nodes are not ours to take offline.
var errNoWorld = errors.New("the demo runs on a real tailscaled: its nodes are not the demo's to take offline")

// setNode takes a node offline ("offline"), back ("online"), or the other
// way round ("toggle"), and returns the nodes as they are afterwards.
func (d *demo) setNode(ctx context.Context, name, verb string) ([]nodeState, error) {
	if d.world == nil {
		return nil, errNoWorld
	}
	if verb == "toggle" {
		verb = "offline"
		for _, n := range d.world.nodes() {
			if n.Name == name && !n.Online {
				verb = "online"
			}
		}
	}
	if verb != "offline" && verb != "online" {
		return nil, fmt.Errorf("unknown action %q: offline, online or toggle", verb)
	}
	st, err := d.world.send(ctx, verb+" "+name)
	if err != nil {
		return nil, err
	}
	if st.Error != "" {
		return nil, errors.New(st.Error)
	}
	return st.Nodes, nil
}

// serveControl serves, on cfg.Control:
//
//	GET  /nodes                        the nodes, as JSON
//	POST /nodes/NAME/{offline,online,toggle}
func (d *demo) serveControl() (stop func(), err error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /nodes", func(w http.ResponseWriter, r *http.Request) {
		if d.world == nil {
			http.Error(w, errNoWorld.Error(), http.StatusNotImplemented)
			return
		}
		json.NewEncoder(w).Encode(d.world.nodes())
	})
	mux.HandleFunc("POST /nodes/{name}/{verb}", func(w http.ResponseWriter, r *http.Request) {
		nodes, err := d.setNode(r.Context(), r.PathValue("name"), r.PathValue("verb"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(nodes)
	})
	ln, err := net.Listen("tcp", d.cfg.Control)
	if err != nil {
		return nil, fmt.Errorf("control endpoint: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) // returns when stop closes it
	return func() { srv.Close() }, nil
}

// readCommands toggles the node named on each line of in, until in ends.
func (d *demo) readCommands(in io.Reader) {
	s := bufio.NewScanner(in)
	for s.Scan() {
		name := strings.TrimSpace(s.Text())
		if name == "" {
			d.printNodes()
			continue
		}
		fmt.Fprintf(d.cfg.Out, "toggling %s...\n", name)
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		_, err := d.setNode(ctx, name, "toggle")
		cancel()
		if err != nil {
			fmt.Fprintln(d.cfg.Out, "error:", err)
			continue
		}
		d.printNodes()
	}
}

// printNodes writes the nodes as a table.
func (d *demo) printNodes() {
	if d.world == nil {
		return
	}
	tw := tabwriter.NewWriter(d.cfg.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tTAILNET\t\tSTATE\tLAN\tNOTE")
	for _, n := range d.world.nodes() {
		state, lan := "offline", "-"
		if n.Online {
			state = "online"
		}
		if n.LAN.IsValid() {
			lan = n.LAN.String()
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.IPv4, n.IPv6, state, lan, n.Note)
	}
	tw.Flush()
}

// banner says what runs and what to try.
func (d *demo) banner() {
	out, zone := d.cfg.Out, d.cfg.Zone
	host, port, _ := net.SplitHostPort(d.cfg.Listen)
	fmt.Fprintf(out, "\ntailhorizon demo: coredns answers %s on %s\n", zone, d.cfg.Listen)
	if d.world == nil {
		fmt.Fprintf(out, "tailnet: the tailscaled at %s; each peer answers as PEER.%s\n", d.socket, zone)
	} else {
		fmt.Fprintf(out, "tailnet: an embedded control server, DERP and these tsnet nodes, in a namespace of their own:\n")
		d.printNodes()
		if d.world.veth == "" {
			fmt.Fprintln(out, "mDNS: off (making the demo LAN, a veth pair, needs root)")
		}
	}
	fmt.Fprintf(out, "public: a stand-in for the zone's authority (the VPS proxy is 203.0.113.10)\n\nTry:\n")
	dig := fmt.Sprintf("dig @%s -p %s +noall +answer", host, port)
	for _, name := range []string{"grafana.hub", "registry", "nas", "laptop"} {
		fmt.Fprintf(out, "  %s %s.%s\n", dig, name, zone)
	}
	rev := "TAILNET-ADDRESS" // of one of the tailscaled's peers
	if d.world != nil {
		for _, n := range d.world.nodes() {
			if n.Name == "hub" {
				rev = n.IPv4.String()
			}
		}
	}
	fmt.Fprintf(out, "  %s -x %s\n", dig, rev)
	if d.world != nil {
		fmt.Fprintf(out, "\nType a node's name and Enter to take it offline or back (hub, laptop, nas)")
		if d.cfg.Control != "" {
			fmt.Fprintf(out, ", or:\n  curl -X POST http://%s/nodes/hub/toggle\n", d.cfg.Control)
		} else {
			fmt.Fprintln(out, ".")
		}
		fmt.Fprintln(out, "hub offline: grafana.hub answers from the public zone; registry, tailnet and LAN only, gets NXDOMAIN.")
		if d.world.veth != "" {
			fmt.Fprintln(out, "nas offline: nas answers with its LAN address, over mDNS.")
		}
	}
	fmt.Fprintf(out, "Ready: curl http://%s/ready\n", d.readyAddr)
	if d.cfg.Metrics != "" {
		fmt.Fprintf(out, "Metrics: curl -s http://%s/metrics | grep -E 'coredns_(tailnet|mdns|fallback)_'\n", d.cfg.Metrics)
	}
	fmt.Fprintln(out, "Ctrl-C stops everything.")
}
