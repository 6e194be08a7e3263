//go:build !linux

package world

import "syscall"

// namespaceAttr returns nil: there are no network namespaces to keep the
// world's tailnet off the machine's network, so startWorld refuses to run it.
func namespaceAttr() *syscall.SysProcAttr { return nil }
