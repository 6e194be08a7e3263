// Package decoy runs a process named tailscaled that is not one, for the
// whole of a test binary's run. Every user's and contributor's machine has a
// tailscaled running; tailscale.com's own socket dialer behaves differently
// when one does (it retries a failed dial for up to 5 s), so the tests run
// with one to prove that they do not depend on it.
package decoy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// Start starts the decoy and returns the function that stops it and
// removes its directory. The decoy is /bin/sleep under the name
// tailscaled; it dies with the process that started it.
func Start() (stop func(), err error) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return nil, fmt.Errorf("decoy: %w", err)
	}
	dir, err := os.MkdirTemp("", "decoy")
	if err != nil {
		return nil, fmt.Errorf("decoy: %w", err)
	}
	exe := filepath.Join(dir, "tailscaled")
	if err := os.Link(sleep, exe); err != nil {
		if err := copyFile(sleep, exe); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("decoy: %w", err)
		}
	}
	cmd := exec.Command(exe, "3600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("decoy: %w", err)
	}
	return func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}, nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}
