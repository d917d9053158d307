package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/internal/testlog"
)

// events records the order in which things happened across goroutines.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, s)
}

func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.list...)
}

// waitFor polls cond until it holds or five seconds pass; the bound only limits how long a
// broken test hangs.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// testServer is a Server listening in a temporary directory, served until the test ends.
type testServer struct {
	srv       *Server
	path      string
	log       *testlog.Buffer
	stop      context.CancelFunc
	serveDone chan struct{} // closed when Serve returned
	serveErr  error
}

// startServer serves srv on a new socket. Unless srv has an AllowUID, it admits the uid the
// tests run as, so that they work as root and as an ordinary user.
func startServer(t *testing.T, srv *Server) *testServer {
	t.Helper()
	if srv.AllowUID == nil {
		uid := uint32(os.Getuid())
		srv.AllowUID = func(u uint32) bool { return u == uid }
	}
	return startServerAsIs(t, srv)
}

// startServerAsIs serves srv as configured.
func startServerAsIs(t *testing.T, srv *Server) *testServer {
	t.Helper()
	return startServerAt(t, srv, filepath.Join(shortTempDir(t), "pingid.sock"))
}

// shortTempDir is a temporary directory whose name, unlike t.TempDir's, does not grow with
// the test's name: a socket path must fit in 107 bytes.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pingid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startServerAt serves srv as configured on a socket at path.
func startServerAt(t *testing.T, srv *Server, path string) *testServer {
	t.Helper()
	ts := &testServer{srv: srv, path: path, log: &testlog.Buffer{}, serveDone: make(chan struct{})}
	srv.Log = zerolog.New(ts.log)
	ln, err := Listen(ts.path)
	if err != nil {
		t.Fatal(err)
	}
	var ctx context.Context
	ctx, ts.stop = context.WithCancel(context.Background())
	go func() {
		ts.serveErr = srv.Serve(ctx, ln)
		close(ts.serveDone)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		ts.stop()
		ts.waitServe(t)
	})
	return ts
}

// waitServe waits for Serve to return and returns its error.
func (ts *testServer) waitServe(t *testing.T) error {
	t.Helper()
	select {
	case <-ts.serveDone:
		return ts.serveErr
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

// dial connects to the server and returns the first line it sends, or "" on EOF.
func (ts *testServer) dial(t *testing.T) (net.Conn, string) {
	t.Helper()
	c, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("read: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	return c, strings.TrimSpace(line)
}

// hello greets the peer, then holds the session until the peer hangs up or ctx ends.
func hello(ctx context.Context, conn net.Conn) {
	fmt.Fprintln(conn, "hello")
	go func() {
		<-ctx.Done()
		conn.SetReadDeadline(time.Unix(1, 0))
	}()
	io.Copy(io.Discard, conn)
}

func TestPeerInContext(t *testing.T) {
	ts := startServer(t, &Server{Handler: func(ctx context.Context, conn net.Conn) {
		p, ok := PeerFromContext(ctx)
		fmt.Fprintf(conn, "%v %d %d\n", ok, p.UID, p.PID)
	}})
	_, line := ts.dial(t)
	if want := fmt.Sprintf("true %d %d", os.Getuid(), os.Getpid()); line != want {
		t.Errorf("handler saw peer %q, want %q", line, want)
	}
}

func TestRefusedUID(t *testing.T) {
	ts := startServer(t, &Server{
		Handler:  hello,
		AllowUID: func(uint32) bool { return false },
	})
	_, line := ts.dial(t)
	if line != "" {
		t.Fatalf("refused peer got %q", line)
	}
	waitFor(t, "the refusal log", func() bool {
		return len(ts.log.Find(t, "connection refused")) == 1
	})
	e := ts.log.Find(t, "connection refused")[0]
	if e["uid"] != float64(os.Getuid()) || e["pid"] != float64(os.Getpid()) ||
		e["reason"] != "uid not allowed" || e["component"] != "daemon" {
		t.Errorf("refusal logged as %v", e)
	}
}

func TestDefaultAllowsOnlyRoot(t *testing.T) {
	ts := startServerAsIs(t, &Server{Handler: hello})
	_, line := ts.dial(t)
	if os.Getuid() == 0 && line != "hello" {
		t.Errorf("root refused by the default check")
	}
	if os.Getuid() != 0 && line != "" {
		t.Errorf("uid %d admitted by the default check", os.Getuid())
	}
}

func TestMaxConns(t *testing.T) {
	ts := startServer(t, &Server{Handler: hello, MaxConns: 2})
	first, l1 := ts.dial(t)
	_, l2 := ts.dial(t)
	if l1 != "hello" || l2 != "hello" {
		t.Fatalf("first two sessions got %q, %q", l1, l2)
	}

	_, l3 := ts.dial(t)
	if l3 != "" {
		t.Fatalf("third session beyond MaxConns 2 got %q", l3)
	}
	refused := ts.log.Find(t, "connection refused")
	if len(refused) != 1 || refused[0]["reason"] != "too many sessions (limit 2)" ||
		refused[0]["pid"] != float64(os.Getpid()) {
		t.Fatalf("refusal logged as %v", refused)
	}

	// When a session ends there is room again.
	first.Close()
	waitFor(t, "a free slot", func() bool {
		c, err := net.Dial("unix", ts.path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line == "hello\n"
	})
}

func TestHandlerPanicEndsOnlyItsSession(t *testing.T) {
	var mu sync.Mutex
	n := 0
	ts := startServer(t, &Server{Handler: func(ctx context.Context, conn net.Conn) {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		if first {
			panic("session bug")
		}
		fmt.Fprintln(conn, "hello")
	}})
	if _, line := ts.dial(t); line != "" {
		t.Fatalf("panicking session sent %q", line)
	}
	if _, line := ts.dial(t); line != "hello" {
		t.Fatalf("session after a panic got %q", line)
	}
	if got := ts.log.Find(t, "session handler panicked; connection closed"); len(got) != 1 {
		t.Errorf("panic logged %d times", len(got))
	}
}

func TestShutdown(t *testing.T) {
	cases := []struct {
		name string
		// handler runs the session; release lets it finish, done records it.
		handler func(ctx context.Context, conn net.Conn, release <-chan struct{}, ev *events)
		// expired makes Shutdown's context already done.
		expired bool
		wantErr error
	}{
		{
			name: "waits for an in-flight session",
			handler: func(ctx context.Context, conn net.Conn, release <-chan struct{},
				ev *events) {
				fmt.Fprintln(conn, "hello")
				<-release
				ev.add("handler returned")
			},
		},
		{
			name:    "at its deadline cancels the session context",
			expired: true,
			wantErr: context.Canceled,
			handler: func(ctx context.Context, conn net.Conn, release <-chan struct{},
				ev *events) {
				fmt.Fprintln(conn, "hello")
				<-ctx.Done()
				ev.add("handler returned")
			},
		},
		{
			name:    "at its deadline unblocks a session stuck in a read",
			expired: true,
			wantErr: context.Canceled,
			handler: func(ctx context.Context, conn net.Conn, release <-chan struct{},
				ev *events) {
				fmt.Fprintln(conn, "hello")
				var b [1]byte
				if _, err := conn.Read(b[:]); err != nil {
					ev.add("handler returned")
				}
			},
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev := &events{}
			release := make(chan struct{})
			ts := startServer(t, &Server{Handler: func(ctx context.Context, conn net.Conn) {
				tc.handler(ctx, conn, release, ev)
			}})
			if _, line := ts.dial(t); line != "hello" {
				t.Fatalf("session did not start: %q", line)
			}

			ctx, cancel := context.WithCancel(context.Background())
			if tc.expired {
				cancel()
			} else {
				defer cancel()
			}
			done := make(chan error, 1)
			go func() {
				err := ts.srv.Shutdown(ctx)
				ev.add("shutdown returned")
				done <- err
			}()

			// Once the socket file is gone Shutdown has stopped accepting.
			waitFor(t, "the socket to be removed", func() bool {
				_, err := os.Lstat(ts.path)
				return os.IsNotExist(err)
			})
			close(release)

			select {
			case err := <-done:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("Shutdown = %v, want %v", err, tc.wantErr)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Shutdown did not return")
			}
			want := []string{"handler returned", "shutdown returned"}
			if got := ev.get(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("order %v, want %v", got, want)
			}
			if err := ts.waitServe(t); !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve = %v, want ErrServerClosed", err)
			}
		})
	}
}

func TestServeContextCancel(t *testing.T) {
	ev := &events{}
	ts := startServer(t, &Server{Handler: func(ctx context.Context, conn net.Conn) {
		fmt.Fprintln(conn, "hello")
		<-ctx.Done()
		ev.add("handler returned")
	}})
	if _, line := ts.dial(t); line != "hello" {
		t.Fatalf("session did not start: %q", line)
	}
	ts.stop()
	if err := ts.waitServe(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Serve = %v, want context.Canceled", err)
	}
	if got := ev.get(); len(got) != 1 {
		t.Errorf("Serve returned before its session: %v", got)
	}
	if _, err := os.Lstat(ts.path); !os.IsNotExist(err) {
		t.Errorf("socket file left after Serve returned: %v", err)
	}
}

func TestServeAfterShutdown(t *testing.T) {
	srv := &Server{Handler: hello}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown before Serve: %v", err)
	}
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(context.Background(), ln); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve after Shutdown = %v, want ErrServerClosed", err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("listener not closed: %v", err)
	}
}

func TestServeWithoutHandler(t *testing.T) {
	ln, err := Listen(filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := (&Server{}).Serve(context.Background(), ln); err == nil {
		t.Errorf("Serve without a Handler succeeded")
	}
}
