package pamtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pingid-ssh/pingid-ssh/pam/shimtest"
)

// Built once per test binary by TestMain.
var (
	shimPath string
	driver   *Driver
)

func TestMain(m *testing.M) {
	shimtest.RunHelperIfRequested()
	runImpostorIfRequested()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pamtest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if shimPath, err = shimtest.Build(dir, ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if driver, err = BuildDriver(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// shortDir returns a fresh directory with a short path, for unix sockets (108-byte limit).
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "shim")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// env is one shim set up against a scripted session: a service directory, the socket the shim
// dials, and (when helper is set) a scripted helper.
type env struct {
	confDir string
	socket  string
	helper  string
	record  string // helper's record file
	peer    *shimtest.Peer
}

// setup prepares a service "svc" whose auth stack is lines, in which SHIM stands for the
// module with its arguments. With useSocket the script is served on the socket; otherwise the
// socket does not exist and the script runs as the helper.
func setup(t *testing.T, script shimtest.Script, useSocket bool, args string, lines ...string) *env {
	t.Helper()
	e := &env{confDir: t.TempDir()}
	dir := shortDir(t)
	e.socket = filepath.Join(dir, "s")
	var err error
	if useSocket {
		e.peer, err = shimtest.Listen(e.socket, script)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.peer.Close() })
		e.helper = filepath.Join(dir, "no-helper")
	} else {
		e.helper, e.record, err = shimtest.WriteHelper(t.TempDir(), script)
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(lines) == 0 {
		lines = []string{"auth required SHIM"}
	}
	shim := fmt.Sprintf("%s socket=%s helper=%s config=/nonexistent/pingid.conf timeout=20 %s",
		shimPath, e.socket, e.helper, args)
	for i, l := range lines {
		lines[i] = strings.ReplaceAll(l, "SHIM", shim)
	}
	if err := WriteService(e.confDir, "svc", lines...); err != nil {
		t.Fatal(err)
	}
	return e
}

// auth runs pam_authenticate and checks the invariants of every call: no descriptor left open
// and no child left behind.
func (e *env) auth(t *testing.T, c Call) Outcome {
	t.Helper()
	c.ConfDir = e.confDir
	c.Service = "svc"
	out, err := driver.Authenticate(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Leaks) != 0 {
		t.Errorf("descriptors left open: %v", out.Leaks)
	}
	if out.Children {
		t.Errorf("child process left behind")
	}
	return out
}

// session returns what the scripted session saw.
func (e *env) session(t *testing.T) shimtest.Record {
	t.Helper()
	if e.peer == nil {
		rec, err := shimtest.ReadRecord(e.record)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := e.peer.Wait(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	return recs[0]
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
