//go:build !linux

package listen

import "syscall"

// freebind does nothing where IP_FREEBIND does not exist: binding waits
// until the address is on an interface, and is retried every second.
func freebind(network, address string, c syscall.RawConn) error { return nil }
