package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// DefaultMaxConns bounds concurrent sessions when Server.MaxConns is zero.
const DefaultMaxConns = 256

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("daemon: server closed")

// Handler runs one session on conn. It must return when ctx is cancelled or when a read or
// write on conn fails. The server owns conn and closes it when the handler returns; the
// handler must not keep it. The peer's credentials are in ctx (PeerFromContext).
type Handler func(ctx context.Context, conn net.Conn)

// Peer is the identity of the process at the other end of a connection, as the kernel
// reported it (SO_PEERCRED) when the peer connected.
type Peer struct {
	UID uint32
	GID uint32
	PID int32
}

type peerKey struct{}

// PeerFromContext returns the peer of the session whose context this is.
func PeerFromContext(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}

// Server accepts connections on unix listeners and runs Handler for each allowed peer.
// Set the exported fields before the first Serve and do not change them afterwards. Serve
// and Shutdown are safe for concurrent use. A Server must not be copied after first use.
type Server struct {
	Handler Handler
	Log     zerolog.Logger

	// AllowUID reports whether a peer uid may connect; nil allows only uid 0.
	AllowUID func(uid uint32) bool

	// MaxConns bounds concurrent sessions (default DefaultMaxConns). A connection beyond it
	// is closed at once and logged.
	MaxConns int

	mu         sync.Mutex
	closed     bool
	listeners  map[*net.UnixListener]struct{}
	sessions   map[*session]struct{}
	idle       chan struct{} // closed once closed is set and no session is left
	idleClosed bool
}

// session is one running handler.
type session struct {
	conn   *net.UnixConn
	cancel context.CancelFunc
	owner  *sync.WaitGroup // of the Serve call that started it
}

func (s *Server) initLocked() {
	if s.idle == nil {
		s.idle = make(chan struct{})
		s.listeners = make(map[*net.UnixListener]struct{})
		s.sessions = make(map[*session]struct{})
	}
}

// signalIdleLocked closes idle when the server is shut down and no session is left.
func (s *Server) signalIdleLocked() {
	if s.closed && len(s.sessions) == 0 && !s.idleClosed {
		s.idleClosed = true
		close(s.idle)
	}
}

// Serve accepts connections on ln until ctx is done or Shutdown is called, and closes ln
// (which removes its socket file) when it stops. Each peer is checked with SO_PEERCRED;
// every refusal is logged with the peer's uid, pid and the reason. Allowed peers run Handler
// on their own goroutine with a context derived from ctx.
//
// Serve returns ErrServerClosed after Shutdown (without waiting for sessions: Shutdown
// does). When ctx ends, it cancels the sessions it started, waits for their handlers to
// return and returns ctx.Err(). Other accept errors are returned as they are, after the
// same wait; temporary ones (out of file descriptors) are retried with a bounded backoff.
func (s *Server) Serve(ctx context.Context, ln *net.UnixListener) error {
	if s.Handler == nil {
		ln.Close()
		return errors.New("daemon: Server has no Handler")
	}
	s.mu.Lock()
	s.initLocked()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()

	log := s.Log.With().Str("component", "daemon").Logger()
	var sessions sync.WaitGroup
	stop := make(chan struct{})
	defer func() {
		close(stop)
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	go func() {
		select {
		case <-ctx.Done():
			ln.Close() // wakes AcceptUnix
		case <-stop:
		}
	}()

	var backoff time.Duration
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if ctx.Err() != nil {
				s.cancelSessions(&sessions)
				sessions.Wait()
				return ctx.Err()
			}
			if temporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				log.Warn().Err(err).Dur("retry_in", backoff).Msg("accept failed")
				select {
				case <-time.After(backoff):
				case <-ctx.Done():
				}
				continue
			}
			s.cancelSessions(&sessions)
			sessions.Wait()
			return fmt.Errorf("accept: %w", err)
		}
		backoff = 0
		s.start(ctx, conn, &sessions, log)
	}
}

// start checks the peer of conn and, if it is allowed and there is room, runs the handler.
func (s *Server) start(ctx context.Context, conn *net.UnixConn, owner *sync.WaitGroup,
	log zerolog.Logger) {
	peer, err := peerCred(conn)
	if err != nil {
		log.Warn().Err(err).Str("reason", "peer credentials unavailable").
			Msg("connection refused")
		conn.Close()
		return
	}
	refuse := func(reason string) {
		log.Warn().Uint32("uid", peer.UID).Int32("pid", peer.PID).Str("reason", reason).
			Msg("connection refused")
		conn.Close()
	}

	allow := s.AllowUID
	if allow == nil {
		allow = func(uid uint32) bool { return uid == 0 }
	}
	if !allow(peer.UID) {
		refuse("uid not allowed")
		return
	}

	limit := s.MaxConns
	if limit <= 0 {
		limit = DefaultMaxConns
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		refuse("shutting down")
		return
	}
	if len(s.sessions) >= limit {
		s.mu.Unlock()
		refuse(fmt.Sprintf("too many sessions (limit %d)", limit))
		return
	}
	sctx, cancel := context.WithCancel(context.WithValue(ctx, peerKey{}, peer))
	ses := &session{conn: conn, cancel: cancel, owner: owner}
	s.sessions[ses] = struct{}{}
	owner.Add(1)
	s.mu.Unlock()

	go s.run(sctx, ses, peer, log)
}

// run executes the handler, then closes the connection and forgets the session. A panic in
// the handler ends that session only.
func (s *Server) run(ctx context.Context, ses *session, peer Peer, log zerolog.Logger) {
	defer func() {
		ses.conn.Close()
		ses.cancel()
		s.mu.Lock()
		delete(s.sessions, ses)
		s.signalIdleLocked()
		s.mu.Unlock()
		ses.owner.Done()
	}()
	defer func() {
		if r := recover(); r != nil {
			log.Error().Uint32("uid", peer.UID).Int32("pid", peer.PID).
				Str("panic", fmt.Sprint(r)).Bytes("stack", debug.Stack()).
				Msg("session handler panicked; connection closed")
		}
	}()
	s.Handler(ctx, ses.conn)
}

// Shutdown stops accepting on every listener (removing their socket files) and waits for
// running sessions to finish. If ctx ends first, it cancels the sessions' contexts, sets an
// expired deadline on their connections so blocked reads and writes fail, waits for the
// handlers to return and returns ctx.Err(). Serve calls made afterwards return
// ErrServerClosed. Shutdown may be called more than once and before Serve.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.initLocked()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.signalIdleLocked()
	idle := s.idle
	s.mu.Unlock()

	select {
	case <-idle:
		return nil
	case <-ctx.Done():
	}
	s.cancelSessions(nil)
	<-idle
	return ctx.Err()
}

// cancelSessions cancels the sessions started by owner (all of them when owner is nil) and
// makes their pending I/O fail.
func (s *Server) cancelSessions(owner *sync.WaitGroup) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ses := range s.sessions {
		if owner == nil || ses.owner == owner {
			ses.cancel()
			ses.conn.SetDeadline(time.Unix(1, 0))
		}
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// peerCred reads the credentials of the process that connected.
func peerCred(conn *net.UnixConn) (Peer, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var (
		cred    *unix.Ucred
		credErr error
	)
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Peer{}, err
	}
	if credErr != nil {
		return Peer{}, fmt.Errorf("SO_PEERCRED: %w", credErr)
	}
	return Peer{UID: cred.Uid, GID: cred.Gid, PID: cred.Pid}, nil
}

// temporary reports whether an accept error is worth retrying: the process or system ran
// out of a resource, or the peer gave up before we took the connection.
func temporary(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS,
		syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}
