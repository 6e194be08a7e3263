package world

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// worldProcess is the world (see WorldMain) as the parent runs it.
type worldProcess struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	out     *json.Decoder
	logPath string // the world's stderr, for the reason it failed
	socket  string // its LocalAPI socket
	veth    string // the LAN's interface on our side; "" without a LAN

	mu    sync.Mutex // serialises commands; guards state
	state worldState
}

// startWorld runs the world in a new network namespace (and a new user
// namespace when not root), gives it the LAN when a veth pair can be made
// (root only), and waits until its nodes are up.
func startWorld(ctx context.Context, dir string) (_ *worldProcess, err error) {
	attr := namespaceAttr()
	if attr == nil {
		return nil, errors.New("the embedded tailnet needs Linux network namespaces; give a real tailscaled's socket instead")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	w := &worldProcess{socket: filepath.Join(dir, socketName), logPath: filepath.Join(dir, "world.log")}
	stderr, err := os.Create(w.logPath)
	if err != nil {
		return nil, err
	}
	defer stderr.Close() // the world has its own copy
	w.cmd = exec.Command(exe)
	w.cmd.Env = append(os.Environ(), envWorld+"="+dir)
	w.cmd.Stderr = stderr
	w.cmd.SysProcAttr = attr
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	w.out = json.NewDecoder(stdout)
	if err := w.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start in a new network namespace: %w (run as root, allow user namespaces, or give a real tailscaled's socket)", err)
	}
	defer func() {
		if err != nil {
			w.stop()
		}
	}()
	first := "nolan"
	if os.Geteuid() == 0 {
		// Unique, as the last run's may still be going with its namespace.
		veth := fmt.Sprintf("thdemo%07x", time.Now().UnixNano()&0xfffffff)
		if err := makeVeth(veth, w.cmd.Process.Pid); err == nil {
			w.veth = veth
			first = "lan " + veth + "l"
		}
	}
	st, err := w.send(ctx, first)
	if err != nil {
		return nil, err
	}
	if st.Error != "" {
		return nil, fmt.Errorf("%s%s", st.Error, w.log())
	}
	return w, nil
}

// makeVeth makes the demo LAN: a veth pair with host on our side, carrying
// lanHostAddr, and host+"l" in the namespace of process pid.
func makeVeth(host string, pid int) error {
	return ipCommands([][]string{
		{"link", "add", host, "type", "veth", "peer", "name", host + "l", "netns", fmt.Sprint(pid)},
		{"addr", "add", lanHostAddr.String(), "dev", host},
		{"link", "set", host, "up", "multicast", "on"},
	})
}

// send writes a command line and waits for the state that answers it.
func (w *worldProcess) send(ctx context.Context, line string) (worldState, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := fmt.Fprintln(w.stdin, line); err != nil {
		return worldState{}, fmt.Errorf("world: %w", err)
	}
	got := make(chan error, 1)
	var st worldState
	go func() { got <- w.out.Decode(&st) }()
	select {
	case err := <-got:
		if err != nil {
			return worldState{}, fmt.Errorf("world stopped: %v%s", err, w.log())
		}
	case <-ctx.Done():
		w.cmd.Process.Kill() // the decoder goroutine ends with the pipe
		return worldState{}, ctx.Err()
	case <-time.After(startTimeout):
		w.cmd.Process.Kill()
		return worldState{}, fmt.Errorf("world did not answer %q in %v", line, startTimeout)
	}
	if st.Nodes != nil {
		w.state.Nodes = st.Nodes
	}
	return st, nil
}

// log returns what the world wrote on stderr, if anything, on a new line.
func (w *worldProcess) log() string {
	b, _ := os.ReadFile(w.logPath)
	if len(b) == 0 {
		return ""
	}
	return "\n" + string(b)
}

// nodes returns the last reported state of the nodes.
func (w *worldProcess) nodes() []nodeState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.state.Nodes
}

// stop closes the world's stdin, so that it stops its tailnet, and waits
// for it; the namespace, and the veth pair with it, go when it exits.
func (w *worldProcess) stop() {
	w.stdin.Close()
	done := make(chan struct{})
	go func() { w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		w.cmd.Process.Kill()
		<-done
	}
	if w.veth != "" {
		ipCommands([][]string{{"link", "del", w.veth}}) // gone already, normally
	}
}
