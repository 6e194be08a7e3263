// Package tailnettest starts a real tailnet on loopback, in-process, for
// end-to-end tests: a testcontrol server, one DERP+STUN region on 127.0.0.1
// and tsnet nodes whose LocalAPI can be served on a unix socket.
//
// Tailscale needs one non-loopback address to come up, so the tests run in
// a network namespace of their own; wire it up in TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(tailnettest.RunInNetns(m)) }
//
// Inside the namespace nothing but loopback is routable, so no test traffic
// can leave the machine; log upload and the port mapper are off as well.
package tailnettest

import (
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"tailscale.com/types/logger"

	"github.com/tailhorizon/tailhorizon/cmd/demo/localtailnet"
)

// envInNetns marks the re-executed test binary running in its namespace.
const envInNetns = "TAILHORIZON_IN_NETNS"

// envVerbose, if set, sends tailscale, control and DERP logs to stderr.
const envVerbose = "TAILNETTEST_VERBOSE"

// netnsAddr is the one non-loopback address tailscale needs to come up.
// 198.18.0.0/15 is reserved for benchmarking, so it is never a real peer.
const netnsAddr = "198.18.0.1/32"

// errNoRunInNetns is the skip reason when TestMain did not call RunInNetns.
var errNoRunInNetns = errors.New("tailnettest.RunInNetns was not called from TestMain")

// netnsErr is why this process is not in a usable namespace; nil if it is.
// Written once by RunInNetns before m.Run, read-only afterwards.
var netnsErr = errNoRunInNetns

// RunInNetns runs the tests in a new network namespace and returns the exit
// code for os.Exit. The first call re-executes the test binary with
// CLONE_NEWNET and waits for it; in the child it brings lo up, adds
// 198.18.0.1/32 to it and runs m. If no namespace can be made (not root),
// it runs m here, and Require skips the tests that need one.
func RunInNetns(m *testing.M) int {
	if os.Getenv(envInNetns) == "" {
		code, err := reexecInNetns()
		if err == nil {
			return code
		}
		netnsErr = err
	} else {
		netnsErr = setupLoopback()
	}
	dir, err := os.MkdirTemp("", "tailnettest-logs")
	if err != nil {
		fmt.Fprintf(os.Stderr, "tailnettest: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	localtailnet.Quiet(dir)
	return m.Run()
}

// reexecInNetns runs this test binary again in a new network namespace and
// returns its exit code. An error means the child could not be started.
func reexecInNetns() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("find test binary: %w", err)
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envInNetns+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET,
		Pdeathsig:  syscall.SIGKILL, // never outlive the parent
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("create network namespace: %w", err)
	}
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return ee.ExitCode(), nil
		}
		fmt.Fprintf(os.Stderr, "tailnettest: test binary in netns: %v\n", err)
		return 1, nil
	}
	return 0, nil
}

// setupLoopback brings up lo in the new namespace and gives it netnsAddr.
func setupLoopback() error {
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", netnsAddr, "dev", "lo"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %v: %w: %s", args, err, out)
		}
	}
	return nil
}

// Require skips t unless the tests run in a namespace made by RunInNetns.
// In CI (CI set in the environment), which can make namespaces, it fails
// instead, so that the end-to-end tests are never skipped there unnoticed.
func Require(t testing.TB) {
	t.Helper()
	if netnsErr != nil {
		SkipOrFail(t, fmt.Sprintf("needs a network namespace: %v", netnsErr))
	}
}

// SkipOrFail skips t for want of what msg names, or fails it in CI (CI set
// in the environment), which must run every test.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s, and CI must run this test", msg)
	}
	t.Skip(msg)
}

// logf returns the logger for tailscale, control and DERP: silent unless
// TAILNETTEST_VERBOSE is set. It never uses t.Logf, because tailscale
// goroutines may still log after the test has finished.
func logf(prefix string) logger.Logf {
	if os.Getenv(envVerbose) == "" {
		return logger.Discard
	}
	return log.New(os.Stderr, prefix, log.Lmicroseconds).Printf
}
