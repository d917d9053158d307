package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// peerEnv, when set in the environment of the test binary, turns it into a client that
// connects to the socket named by the variable and prints what happened.
const peerEnv = "PINGID_DAEMON_TEST_PEER"

// nobody is the uid and gid the client runs as.
const nobody = 65534

func TestMain(m *testing.M) {
	if path := os.Getenv(peerEnv); path != "" {
		fmt.Println(peerClient(path))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// peerClient connects to path and reports the outcome in one line: "connect: EACCES",
// "got: <data>" or "closed" when the server hung up without a word.
func peerClient(path string) string {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if errors.Is(err, syscall.EACCES) {
		return "connect: EACCES"
	}
	if err != nil {
		return "connect: " + err.Error()
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	data, err := io.ReadAll(c)
	switch {
	case len(data) > 0:
		return "got: " + strings.TrimSpace(string(data))
	case err != nil:
		return "read: " + err.Error()
	default:
		return "closed"
	}
}

// TestOtherUID runs a real client process as uid 65534 against the server.
func TestOtherUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a client process under another uid")
	}

	// The client needs to reach the socket and run a copy of this binary, so both live in
	// a directory that others may search.
	dir := shortTempDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "daemon.test")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		allow func(uint32) bool
		// mode is set on the socket after Listen; 0 keeps Listen's 0600.
		mode       os.FileMode
		want       string
		wantReason string // the refusal that must be logged, "" for none
	}{
		{name: "socket mode 0600 keeps others out at connect", want: "connect: EACCES"},
		{name: "a reachable socket still refuses by credentials", mode: 0o666,
			want: "closed", wantReason: "uid not allowed"},
		{name: "AllowUID can admit the uid", mode: 0o666, want: "got: hello",
			allow: func(uid uint32) bool { return uid == 0 || uid == nobody }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(dir, "s.sock")
			srv := &Server{AllowUID: tc.allow, Handler: func(ctx context.Context, c net.Conn) {
				fmt.Fprintln(c, "hello")
			}}
			if srv.AllowUID == nil {
				srv.AllowUID = func(uid uint32) bool { return uid == 0 }
			}
			ts := startServerAt(t, srv, sock)
			if tc.mode != 0 {
				if err := os.Chmod(sock, tc.mode); err != nil {
					t.Fatal(err)
				}
			}

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "-test.run=^$")
			// A race-enabled binary otherwise waits a second at exit.
			cmd.Env = []string{peerEnv + "=" + sock, "GORACE=atexit_sleep_ms=0"}
			cmd.SysProcAttr = &syscall.SysProcAttr{
				Credential: &syscall.Credential{Uid: nobody, Gid: nobody},
			}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("client process: %v", err)
			}
			if got := strings.TrimSpace(string(out)); got != tc.want {
				t.Errorf("client as uid %d saw %q, want %q", nobody, got, tc.want)
			}

			refused := ts.log.Find(t, "connection refused")
			if tc.wantReason == "" {
				if len(refused) != 0 {
					t.Errorf("unexpected refusals: %v", refused)
				}
				return
			}
			if len(refused) != 1 {
				t.Fatalf("refusals logged: %v", refused)
			}
			e := refused[0]
			if e["uid"] != float64(nobody) || e["pid"] != float64(cmd.Process.Pid) ||
				e["reason"] != tc.wantReason {
				t.Errorf("refusal logged as %v, want uid %d pid %d reason %q",
					e, nobody, cmd.Process.Pid, tc.wantReason)
			}
		})
	}
}
