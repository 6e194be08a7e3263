package lan

import (
	"syscall"

	"golang.org/x/sys/windows"
)

// reusePort lets the sockets share port 5353 with other responders on the
// host (RFC 6762 §15); Windows has SO_REUSEADDR only.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = windows.SetsockoptInt(windows.Handle(fd), windows.SOL_SOCKET, windows.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
