package world

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	stdlog "log"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/mdns"
	"tailscale.com/types/logger"

	"github.com/tailhorizon/tailhorizon/cmd/demo/localtailnet"
)

// The world is this program run again in a network namespace of its own
// (envWorld holds its directory): a tailnet on loopback with the nodes
// below, whose "desktop" LocalAPI is served on a unix socket in that
// directory for the coredns outside. It takes commands on stdin, a line
// each, and writes a worldState line on stdout after start-up and after
// each command. It stops when stdin closes.
const envWorld = "TAILHORIZON_DEMO_WORLD"

// Addresses of the demo LAN, a veth pair between the namespace of the
// coredns and the world's: from 198.18.0.0/15, never a real network.
var (
	lanHostAddr = netip.MustParsePrefix("198.18.1.1/24") // the coredns side
	lanNASAddr  = netip.MustParsePrefix("198.18.1.2/24") // nas.local, in the world
)

// nodes of the demo tailnet; "desktop" is the device coredns runs on.
var nodes = []struct {
	name string
	tags []string
	note string
}{
	{name: "desktop", note: "this device: coredns watches its LocalAPI"},
	{name: "hub", tags: []string{"tag:web"}, note: "hosts registry and grafana"},
	{name: "laptop"},
	{name: "nas", note: "also on the LAN as nas.local"},
}

// nodeState is a node as the world reports it.
type nodeState struct {
	Name   string     `json:"name"`
	IPv4   netip.Addr `json:"ipv4"`
	IPv6   netip.Addr `json:"ipv6"`
	LAN    netip.Addr `json:"lan,omitzero"` // its mDNS address, if it has one
	Online bool       `json:"online"`
	Note   string     `json:"note,omitempty"`
}

// worldState is one line of the world's stdout.
type worldState struct {
	Nodes []nodeState `json:"nodes,omitempty"`
	Error string      `json:"error,omitempty"`
}

// IsWorld reports whether this process is the demo world. A main that
// runs the demo calls it first:
//
//	if world.IsWorld() { os.Exit(world.WorldMain()) }
func IsWorld() bool { return os.Getenv(envWorld) != "" }

// WorldMain runs the world and returns the process's exit code.
func WorldMain() int {
	if err := runWorld(os.Getenv(envWorld)); err != nil {
		json.NewEncoder(os.Stdout).Encode(worldState{Error: err.Error()})
		return 1
	}
	return 0
}

// runWorld brings the tailnet up in dir, then serves commands until stdin
// closes. The first line names the LAN interface the parent moved into
// this namespace ("lan IFACE"), or says there is none ("nolan").
func runWorld(dir string) error {
	if err := ipCommands([][]string{
		{"link", "set", "lo", "up"},
		// Tailscale needs one address that is not loopback to come up.
		{"addr", "add", "198.18.0.1/32", "dev", "lo"},
	}); err != nil {
		return err
	}
	in := bufio.NewScanner(os.Stdin)
	if !in.Scan() {
		return fmt.Errorf("no first command")
	}
	lan, _ := strings.CutPrefix(in.Text(), "lan ")
	if lan == "nolan" {
		lan = ""
	}

	// The LAN goes first: an interface that comes up later makes every
	// node re-poll control, and control sees them all go offline at once.
	var lanAddr netip.Addr
	if lan != "" {
		stop, err := serveLAN(lan)
		if err != nil {
			return err
		}
		defer stop()
		lanAddr = lanNASAddr.Addr()
	}

	logf := logger.Discard
	if os.Getenv("TAILHORIZON_DEMO_VERBOSE") != "" {
		logf = stdlog.New(os.Stderr, "", stdlog.LstdFlags).Printf
	}
	localtailnet.Quiet(filepath.Join(dir, "logs"))
	tn, err := localtailnet.Start(logf)
	if err != nil {
		return err
	}
	defer tn.Close()
	w := &world{tn: tn, dir: dir, lan: lanAddr}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, n := range nodes {
		node, err := tn.AddNode(ctx, filepath.Join(dir, "nodes"), n.name, n.tags...)
		if err != nil {
			return err
		}
		w.nodes = append(w.nodes, node)
	}
	api, err := w.nodes[0].ServeLocalAPI(filepath.Join(dir, socketName), logf)
	if err != nil {
		return err
	}
	defer api.Stop()
	out := json.NewEncoder(os.Stdout)
	out.Encode(w.state(""))
	for in.Scan() {
		out.Encode(w.state(w.command(in.Text())))
	}
	return nil
}

// socketName is the LocalAPI socket's name in the world's directory.
const socketName = "tailscaled.sock"

// world is the running tailnet.
type world struct {
	tn    *localtailnet.Tailnet
	dir   string
	nodes []*localtailnet.Node
	lan   netip.Addr // nas's address on the LAN; zero without one
}

// command runs "offline NAME" or "online NAME" and returns an error text.
func (w *world) command(line string) string {
	verb, name, _ := strings.Cut(line, " ")
	for i, n := range w.nodes {
		if n.Hostname != name {
			continue
		}
		if i == 0 {
			return "desktop is this device; take another node offline"
		}
		switch verb {
		case "offline":
			n.Close()
		case "online":
			if !n.Closed() {
				return ""
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := w.tn.Restart(ctx, n); err != nil {
				return err.Error()
			}
		default:
			return fmt.Sprintf("unknown command %q", verb)
		}
		return ""
	}
	return fmt.Sprintf("no node %q", name)
}

// state reports every node, and errText if not empty.
func (w *world) state(errText string) worldState {
	st := worldState{Error: errText}
	for i, n := range w.nodes {
		ns := nodeState{Name: n.Hostname, IPv4: n.IPv4, IPv6: n.IPv6, Online: !n.Closed(), Note: nodes[i].note}
		if n.Hostname == "nas" {
			ns.LAN = w.lan
		}
		st.Nodes = append(st.Nodes, ns)
	}
	return st
}

// serveLAN puts nas's LAN address on iface and answers mDNS questions for
// nas.local there with hashicorp/mdns, until stop.
func serveLAN(iface string) (stop func(), err error) {
	if err := ipCommands([][]string{
		{"addr", "add", lanNASAddr.String(), "dev", iface},
		{"link", "set", iface, "up", "multicast", "on"},
		{"route", "add", "224.0.0.0/4", "dev", iface},
	}); err != nil {
		return nil, err
	}
	// hashicorp/mdns answers by unicast with the default IP TTL, and mdns
	// hears only TTL 255 (RFC 6762 §11); this namespace is the world's own.
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_default_ttl", []byte("255"), 0o644); err != nil {
		return nil, fmt.Errorf("mdns responder: %w", err)
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, err
	}
	svc, err := mdns.NewMDNSService("nas", "_smb._tcp", "local.", "nas.local.", 445,
		[]net.IP{lanNASAddr.Addr().AsSlice()}, []string{"tailhorizon demo"})
	if err != nil {
		return nil, err
	}
	srv, err := mdns.NewServer(&mdns.Config{Zone: svc, Iface: ifi, Logger: stdlog.New(os.Stderr, "mdns: ", 0)})
	if err != nil {
		return nil, fmt.Errorf("mdns responder: %w", err)
	}
	return func() { srv.Shutdown() }, nil
}

// ipCommands runs ip with each set of arguments in turn.
func ipCommands(cmds [][]string) error {
	for _, args := range cmds {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}
