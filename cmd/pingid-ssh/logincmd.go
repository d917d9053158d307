package main

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/pingid-ssh/pingid-ssh/session"
)

// loginThroughSocket relays one login through the daemon at socket, or at the config's
// socket_path when socket is empty.
func loginThroughSocket(e *env, path, socket string, start session.Message,
) (session.Status, error) {
	if socket == "" {
		cfg, err := loadConfig(e, path)
		if err != nil {
			return session.StatusDeny, err
		}
		socket = cfg.SocketPath
	}
	conn, err := net.DialTimeout("unix", socket, 5*time.Second)
	if err != nil {
		return session.StatusDeny, fmt.Errorf("connect to daemon: %w", err)
	}
	defer conn.Close()
	return session.Relay(conn, start, e.stdin, e.stdout)
}

// loginInProcess runs the session in this process. The two sides talk over a socket pair,
// as the shim and the helper do, so either side may write before the other reads: a
// session that gives up at once (a config that does not load) cannot block the relay.
func loginInProcess(e *env, path string, start session.Message) (session.Status, error) {
	relayEnd, sessionEnd, err := socketPair()
	if err != nil {
		return session.StatusDeny, err
	}
	defer relayEnd.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer sessionEnd.Close()
		runStandalone(e, path, sessionEnd, sessionEnd)
	}()
	status, err := session.Relay(relayEnd, start, e.stdin, e.stdout)
	relayEnd.Close() // ends the session's reads if the relay stopped first
	<-done
	return status, err
}

// socketPair returns the two connected ends of a unix stream socket pair.
func socketPair() (net.Conn, net.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "login")
		conns[i], err = net.FileConn(f)
		f.Close() // FileConn holds its own descriptor
		if err != nil {
			if i == 1 {
				conns[0].Close()
			} else {
				syscall.Close(fds[1])
			}
			return nil, nil, fmt.Errorf("socketpair: %w", err)
		}
	}
	return conns[0], conns[1], nil
}
