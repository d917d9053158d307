package pingidtest

import (
	"net"
	"sync"
)

// TB is the part of testing.TB the helpers here use; taking it rather than testing.TB
// keeps the testing package out of the binary that embeds the simulator.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// SilentAddr returns the address of a loopback listener that accepts connections and
// never sends a byte: a service that is up but does not answer. It closes with the test.
func SilentAddr(t TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}
