package watch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"

	"tailscale.com/client/local"
	"tailscale.com/ipn"
	"tailscale.com/ipn/ipnstate"
	"tailscale.com/paths"
	"tailscale.com/tailcfg"
)

// LocalAPI is the part of tailscaled's LocalAPI the watch uses.
type LocalAPI interface {
	WatchIPNBus(ctx context.Context, mask ipn.NotifyWatchOpt) (BusWatcher, error)
	Status(ctx context.Context) (*ipnstate.Status, error)
	Ping(ctx context.Context, ip netip.Addr) error
}

// BusWatcher is an open IPN bus stream.
type BusWatcher interface {
	Next() (ipn.Notify, error)
	Close() error
}

// localClient adapts local.Client to LocalAPI.
type localClient struct{ *local.Client }

// Client returns lc as a LocalAPI: an embedded node's.
func Client(lc *local.Client) LocalAPI { return localClient{lc} }

func (c localClient) WatchIPNBus(ctx context.Context, mask ipn.NotifyWatchOpt) (BusWatcher, error) {
	return c.Client.WatchIPNBus(ctx, mask)
}

// errTailscaled wraps a ping error that says nothing of the peer: the
// LocalAPI could not be reached, or the connection broke.
var errTailscaled = errors.New("tailscaled unreachable")

// Ping sends a disco ping to ip. tailscaled reports some failures, such as
// an expired peer key, inside a successful result: they count as failures.
func (c localClient) Ping(ctx context.Context, ip netip.Addr) error {
	res, err := c.Client.Ping(ctx, ip, tailcfg.PingDisco)
	var opErr *net.OpError
	switch {
	case err != nil && ctx.Err() == nil && (errors.As(err, &opErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
		return fmt.Errorf("%w: %v", errTailscaled, err)
	case err != nil:
		return err
	case res.Err != "":
		return errors.New(res.Err)
	}
	return nil
}

// watchMask asks for a full status first, then peer deltas. It never asks
// for the deprecated NetMap, which newer tailscaled rejects.
// NotifyInitialState is known to every tailscaled, so that one older than
// the other bits (1.86) still sends a first message at once, and is read
// in full then, instead of after its first change.
const watchMask = ipn.NotifyInitialState | ipn.NotifyInitialStatus | ipn.NotifyPeerChanges | ipn.NotifyPeerPatches

// Tailscaled returns the LocalAPI of the tailscaled listening on socket,
// "" for the platform's default.
func Tailscaled(socket string) LocalAPI {
	c := &local.Client{Socket: socket, UseSocketOnly: socket != ""}
	if path := socketPath(socket); path != "" {
		// Dial the socket directly: tailscale's own dialer retries a failed
		// dial for up to 5 s whenever any process named tailscaled runs,
		// which would hold the watch's reconnects and a test suite's
		// failure paths hostage to the machine's own tailscaled.
		c.Dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
	}
	return localClient{c}
}

// socketPath is the unix socket to dial for socket, or "" where tailscale's
// own client must find tailscaled (the default on macOS and Windows).
func socketPath(socket string) string {
	switch {
	case socket != "":
		return socket
	case runtime.GOOS == "linux":
		return paths.DefaultTailscaledSocket()
	}
	return ""
}
