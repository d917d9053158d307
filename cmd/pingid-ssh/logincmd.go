package main

import (
	"fmt"
	"io"
	"net"
	"time"

	"github.com/pingid-ssh/pingid-ssh/session"
)

// loginThroughSocket relays one login through the daemon.
func loginThroughSocket(e *env, path string, start session.Message) (session.Status, error) {
	cfg, err := loadConfig(e, path)
	if err != nil {
		return session.StatusDeny, err
	}
	conn, err := net.DialTimeout("unix", cfg.SocketPath, 5*time.Second)
	if err != nil {
		return session.StatusDeny, fmt.Errorf("connect to daemon: %w", err)
	}
	defer conn.Close()
	return session.Relay(conn, start, e.stdin, e.stdout)
}

// loginInProcess runs the session in this process, connected to the relay by pipes.
func loginInProcess(e *env, path string, start session.Message) (session.Status, error) {
	toSession, fromRelay := io.Pipe()
	toRelay, fromSession := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runStandalone(e, path, toSession, fromSession)
		fromSession.Close()
	}()
	status, err := session.Relay(pipeConn{toRelay, fromRelay}, start, e.stdin, e.stdout)
	fromRelay.Close()
	toRelay.Close()
	<-done
	return status, err
}

// pipeConn joins the two pipe ends the relay uses into one io.ReadWriter.
type pipeConn struct {
	io.Reader
	io.Writer
}
