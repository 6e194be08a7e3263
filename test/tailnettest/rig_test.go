package tailnettest

import (
	"context"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"tailscale.com/client/local"
	"tailscale.com/ipn"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest"
)

func TestMain(m *testing.M) { os.Exit(RunInNetns(m)) }

const watchMask = ipn.NotifyInitialStatus | ipn.NotifyPeerChanges | ipn.NotifyPeerPatches

func TestNetns(t *testing.T) {
	Require(t)
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	if len(ifs) != 1 || ifs[0].Name != "lo" || ifs[0].Flags&net.FlagUp == 0 {
		t.Errorf("interfaces = %v; want only lo, up", ifs)
	}
	addrs, err := ifs[0].Addrs()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(addrs, func(a net.Addr) bool { return a.String() == netnsAddr }) {
		t.Errorf("lo addrs = %v; want %s", addrs, netnsAddr)
	}
	// A UDP connect sends nothing; it only consults the routing table.
	if c, err := net.Dial("udp", "192.0.2.1:9"); err == nil {
		c.Close()
		t.Error("route to 192.0.2.1: got one; want none")
	}
}

// The subtests share one tailnet and run in order: "offline" closes alpha.
func TestTailnet(t *testing.T) {
	tstest.ResourceCheck(t) // every goroutine ends by the last cleanup
	t0 := time.Now()
	tn := Start(t)
	hub := tn.AddNode(t, "hub")
	alpha := tn.AddNode(t, "alpha")
	reg := tn.AddNode(t, "registry-box", "tag:registry")
	t.Logf("control, DERP and 3 nodes up in %v", time.Since(t0).Round(time.Millisecond))

	api := hub.ServeLocalAPI(t)
	lc := LocalClient(api.Path)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	t.Run("status", func(t *testing.T) {
		st := waitStatus(t, lc, "2 peers online", func(st *ipnstate.Status) bool {
			return len(st.Peer) == 2 && countOnline(st) == 2
		})
		if st.BackendState != "Running" {
			t.Errorf("BackendState = %q; want Running", st.BackendState)
		}
		for _, n := range []*Node{alpha, reg} {
			p := peerByName(st, n.Hostname+"."+Domain+".")
			if p == nil {
				t.Fatalf("no peer %s.%s. in %v", n.Hostname, Domain, peerNames(st))
			}
			if !slices.Contains(p.TailscaleIPs, n.IPv4) || !slices.Contains(p.TailscaleIPs, n.IPv6) {
				t.Errorf("%s IPs = %v; want %v and %v", n.Hostname, p.TailscaleIPs, n.IPv4, n.IPv6)
			}
			if p.NodeID != n.ID {
				t.Errorf("%s NodeID = %v; want %v", n.Hostname, p.NodeID, n.ID)
			}
		}
		p := peerByName(st, "registry-box."+Domain+".")
		if p.Tags == nil || !slices.Equal(p.Tags.AsSlice(), []string{"tag:registry"}) {
			t.Errorf("registry-box tags = %v; want [tag:registry]", p.Tags)
		}
		if p := peerByName(st, "alpha."+Domain+"."); p.Tags != nil && p.Tags.Len() > 0 {
			t.Errorf("alpha tags = %v; want none", p.Tags.AsSlice())
		}
	})

	t.Run("ping", func(t *testing.T) {
		start := time.Now()
		pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
		defer pcancel()
		res, err := lc.Ping(pctx, reg.IPv4, tailcfg.PingDisco)
		if err != nil {
			t.Fatalf("ping %v: %v", reg.IPv4, err)
		}
		if res.Err != "" {
			t.Fatalf("ping %v: %s", reg.IPv4, res.Err)
		}
		t.Logf("disco ping %s: %.1fms (endpoint %q, derp %d), call %v",
			res.NodeName, res.LatencySeconds*1e3, res.Endpoint, res.DERPRegionID, time.Since(start).Round(time.Millisecond))
	})

	t.Run("localapi_restart", func(t *testing.T) {
		w, err := lc.WatchIPNBus(ctx, watchMask)
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		defer w.Close()
		if _, err := w.Next(); err != nil {
			t.Fatalf("first notify: %v", err)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := w.Next()
			errc <- err
		}()
		start := time.Now()
		api.Stop()
		select {
		case err := <-errc:
			if err == nil {
				t.Fatal("watch after Stop: got a notify; want an error")
			}
			t.Logf("watch ended %v after Stop: %v", time.Since(start).Round(time.Millisecond), err)
		case <-time.After(5 * time.Second):
			t.Fatal("watch still open 5s after Stop")
		}
		// Short: local.Client retries a missing socket during the first 2s
		// of a process (safesocket.tailscaledStillStarting).
		sctx, scancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer scancel()
		if _, err := lc.Status(sctx); err == nil {
			t.Error("Status while stopped: got nil error; want one")
		}

		if err := api.Start(); err != nil {
			t.Fatal(err)
		}
		st, err := lc.Status(ctx)
		if err != nil {
			t.Fatalf("Status after Start: %v", err)
		}
		if st.BackendState != "Running" {
			t.Errorf("BackendState after Start = %q; want Running", st.BackendState)
		}
		w2, err := lc.WatchIPNBus(ctx, watchMask)
		if err != nil {
			t.Fatalf("watch after Start: %v", err)
		}
		defer w2.Close()
		if n, err := w2.Next(); err != nil || n.InitialStatus == nil {
			t.Fatalf("first notify after Start: InitialStatus %v, err %v; want status", n.InitialStatus != nil, err)
		}
	})

	t.Run("offline", func(t *testing.T) {
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		w, err := lc.WatchIPNBus(wctx, watchMask)
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		defer w.Close()
		n, err := w.Next()
		if err != nil || n.InitialStatus == nil {
			t.Fatalf("first notify: InitialStatus %v, err %v; want status", n.InitialStatus != nil, err)
		}
		if p := peerByName(n.InitialStatus, "alpha."+Domain+"."); p == nil || !p.Online {
			t.Fatalf("alpha in initial status = %+v; want online", p)
		}

		type event struct {
			at    time.Time
			field string
		}
		seen := make(chan event, 1)
		go func() { // ends when wcancel closes the watch
			defer close(seen)
			for {
				n, err := w.Next()
				if err != nil {
					return
				}
				if f := offline(n, alpha.ID); f != "" {
					seen <- event{time.Now(), f}
					return
				}
			}
		}()
		start := time.Now()
		alpha.Close()
		t.Logf("alpha.Close took %v", time.Since(start).Round(time.Millisecond))
		select {
		case ev, ok := <-seen:
			if !ok {
				t.Fatal("watch ended before alpha went offline")
			}
			t.Logf("offline notify (%s) %v after alpha.Close began", ev.field, ev.at.Sub(start).Round(time.Millisecond))
		case <-time.After(10 * time.Second):
			t.Fatal("no offline notify for alpha within 10s")
		}
		st := waitStatus(t, lc, "alpha offline", func(st *ipnstate.Status) bool {
			p := peerByName(st, "alpha."+Domain+".")
			return p != nil && !p.Online
		})
		if p := peerByName(st, "registry-box."+Domain+"."); p == nil || !p.Online {
			t.Errorf("registry-box = %+v; want online", p)
		}
	})
}

// offline returns which field of n says that node id went offline, or "".
func offline(n ipn.Notify, id tailcfg.NodeID) string {
	for _, pc := range n.PeerChangedPatch {
		if pc.NodeID == id && pc.Online != nil && !*pc.Online {
			return "PeerChangedPatch"
		}
	}
	for _, p := range n.PeersChanged {
		if p.ID == id && p.Online != nil && !*p.Online {
			return "PeersChanged"
		}
	}
	return ""
}

// waitStatus polls Status for up to 10s until ok, then returns it.
func waitStatus(t *testing.T, lc *local.Client, what string, ok func(*ipnstate.Status) bool) *ipnstate.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		st, err := lc.Status(ctx)
		if err == nil && ok(st) {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("wait for %s: last status %v, err %v", what, peerNames(st), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func countOnline(st *ipnstate.Status) int {
	n := 0
	for _, p := range st.Peer {
		if p.Online {
			n++
		}
	}
	return n
}

func peerByName(st *ipnstate.Status, dnsName string) *ipnstate.PeerStatus {
	for _, p := range st.Peer {
		if p.DNSName == dnsName {
			return p
		}
	}
	return nil
}

// peerNames lists "name online" for failure messages.
func peerNames(st *ipnstate.Status) []string {
	if st == nil {
		return nil
	}
	var out []string
	for _, p := range st.Peer {
		if p.Online {
			out = append(out, p.DNSName+" online")
		} else {
			out = append(out, p.DNSName+" offline")
		}
	}
	return out
}
