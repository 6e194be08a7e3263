//go:build !windows

package lan

import (
	"errors"
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort lets the sockets share port 5353 with avahi and other
// responders on the host (RFC 6762 §15).
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	return errors.Join(err, serr)
}
