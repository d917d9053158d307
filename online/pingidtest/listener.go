package pingidtest

import (
	"fmt"
	"net"
	"sync"
)

// switchListener is a TCP listener that can refuse connections for real (it closes its
// socket and binds the same address again later) or accept and hold them without a byte
// of answer.
type switchListener struct {
	addr string

	mu     sync.Mutex
	inner  net.Listener // nil while refusing
	silent bool
	held   []net.Conn
	closed bool
	wake   chan struct{} // closed and replaced on every state change
}

func newSwitchListener(addr string) (*switchListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &switchListener{addr: ln.Addr().String(), inner: ln, wake: make(chan struct{})}, nil
}

func (l *switchListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		inner, closed, wake := l.inner, l.closed, l.wake
		l.mu.Unlock()
		if closed {
			return nil, net.ErrClosed
		}
		if inner == nil {
			<-wake
			continue
		}
		c, err := inner.Accept()
		l.mu.Lock()
		if err != nil {
			current := l.inner == inner && !l.closed
			l.mu.Unlock()
			if current {
				return nil, err
			}
			continue // the socket was switched underneath us
		}
		if l.silent {
			l.held = append(l.held, c)
			l.mu.Unlock()
			continue
		}
		l.mu.Unlock()
		return c, nil
	}
}

// setRefuse closes the socket (new connections are refused by the kernel) or binds it
// again on the same address.
func (l *switchListener) setRefuse(on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return net.ErrClosed
	}
	if on && l.inner != nil {
		l.inner.Close()
		l.inner = nil
	}
	if !on && l.inner == nil {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			return fmt.Errorf("listen again on %s: %w", l.addr, err)
		}
		l.inner = ln
	}
	close(l.wake)
	l.wake = make(chan struct{})
	return nil
}

// setSilent makes new connections be accepted and held unanswered; turning it off
// closes the held ones.
func (l *switchListener) setSilent(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.silent = on
	if !on {
		for _, c := range l.held {
			c.Close()
		}
		l.held = nil
	}
}

func (l *switchListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.inner != nil {
		l.inner.Close()
	}
	for _, c := range l.held {
		c.Close()
	}
	l.held = nil
	close(l.wake)
	return nil
}

func (l *switchListener) Addr() net.Addr {
	a, _ := net.ResolveTCPAddr("tcp", l.addr)
	return a
}
