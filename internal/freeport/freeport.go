// Package freeport finds ports on loopback for tests, the demo and its
// scripts, which must name a port in a Corefile or a command line before
// the server starts.
package freeport

import (
	"errors"
	"net"
	"strconv"
)

// Find returns a port that is free on 127.0.0.1 for both TCP and UDP.
// Another process may take it before it is used.
func Find() (int, error) {
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			pc.Close()
			return port, nil
		}
	}
	return 0, errors.New("no port free for both TCP and UDP on 127.0.0.1")
}
