package realnet

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tailhorizon/tailhorizon/test/tailnettest"
)

// The versions build.sh builds; keep the two in step.
const (
	TailscaleNew = "v1.102.5" // the version go.mod pins
	TailscaleOld = "v1.86.5"  // an older tailscaled, as on a device that is not kept up to date
	Headscale    = "v0.27.1"
)

// envCache names the directory build.sh builds into.
const envCache = "TAILHORIZON_CACHE"

// CacheDir returns the directory build.sh builds the binaries into:
// $TAILHORIZON_CACHE, or ~/.cache/tailhorizon.
func CacheDir() string {
	if d := os.Getenv(envCache); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "tailhorizon") // build.sh fails the same way; Binaries will skip
	}
	return filepath.Join(home, ".cache", "tailhorizon")
}

// TailscaleBinaries are one version's tailscaled and tailscale CLI.
type TailscaleBinaries struct {
	Version string // e.g. "v1.102.5"
	Daemon  string // path of tailscaled
	CLI     string // path of tailscale
}

// Tailscale returns the binaries of a tailscale version that build.sh built.
// If they are missing it skips t (in CI it fails instead).
func Tailscale(t testing.TB, version string) TailscaleBinaries {
	t.Helper()
	dir := filepath.Join(CacheDir(), "tailscale-"+version)
	b := TailscaleBinaries{
		Version: version,
		Daemon:  filepath.Join(dir, "tailscaled"),
		CLI:     filepath.Join(dir, "tailscale"),
	}
	require(t, b.Daemon, b.CLI)
	return b
}

// HeadscaleBinary returns the path of the headscale that build.sh built. If
// it is missing it skips t (in CI it fails instead).
func HeadscaleBinary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(CacheDir(), "headscale-"+Headscale, "headscale")
	require(t, bin)
	return bin
}

// require skips or fails t unless every path is an executable file.
func require(t testing.TB, paths ...string) {
	t.Helper()
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			tailnettest.SkipOrFail(t, "needs "+p+": run make thirdparty")
		}
	}
}
