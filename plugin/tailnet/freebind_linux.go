package tailnet

import "syscall"

// freebind lets a socket bind an address that is not (yet) on an
// interface: Linux's IP_FREEBIND, which covers IPv6 too.
func freebind(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
