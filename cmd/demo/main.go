// Command demo runs tailhorizon's demo world (see cmd/demo/world): the
// bundled coredns on 127.0.0.1:5300 answering example.org from an embedded
// tailnet, an mDNS LAN and a public stand-in, with nodes that can be taken
// offline and back. `make run` runs it; Ctrl-C stops it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tailhorizon/tailhorizon/cmd/coredns/bundle"
	"github.com/tailhorizon/tailhorizon/cmd/demo/world"
)

func main() {
	if world.IsWorld() {
		os.Exit(world.WorldMain())
	}
	cfg := world.Config{Out: os.Stdout, In: os.Stdin, Log: os.Stderr}
	flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:5300", "DNS address to serve the zone on")
	flag.StringVar(&cfg.Zone, "zone", "example.org", "the zone")
	flag.StringVar(&cfg.Control, "control", "127.0.0.1:5380", `HTTP address to take nodes offline and back ("" for none)`)
	flag.StringVar(&cfg.Metrics, "metrics", "127.0.0.1:9153", `prometheus address ("" for none)`)
	flag.StringVar(&cfg.Socket, "socket", "", "a real tailscaled's LocalAPI socket, instead of the embedded tailnet")
	flag.BoolVar(&cfg.WorldOnly, "world-only", false, "run only the world, without coredns, and describe it in key=value lines (for test/bench)")
	flag.Parse()

	bundle.Install()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := world.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	fmt.Println("demo stopped; nothing is left behind")
}
