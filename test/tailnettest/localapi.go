package tailnettest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tailhorizon/tailhorizon/cmd/demo/localtailnet"
)

// LocalAPI serves a node's LocalAPI on a unix socket, standing in for
// tailscaled's socket; see localtailnet.LocalAPI.
type LocalAPI = localtailnet.LocalAPI

// ServeLocalAPI serves n's LocalAPI on a new socket until t ends.
func (n *Node) ServeLocalAPI(t testing.TB) *LocalAPI {
	t.Helper()
	// Not t.TempDir: with long test names it overflows sun_path.
	dir, err := os.MkdirTemp("", "tnapi")
	if err != nil {
		t.Fatalf("localapi dir: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := n.Node.ServeLocalAPI(filepath.Join(dir, "tailscaled.sock"), logf("localapi: "))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Stop)
	return l
}
