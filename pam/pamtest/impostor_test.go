package pamtest

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pingid-ssh/pingid-ssh/pam/shimtest"
)

// impostorEnv turns the test binary into a socket server that approves every login; the test
// runs it as an unprivileged user.
const impostorEnv = "PINGID_PAMTEST_IMPOSTOR"

// runImpostorIfRequested serves impostorEnv's socket until stdin closes, then exits.
func runImpostorIfRequested() {
	path := os.Getenv(impostorEnv)
	if path == "" {
		return
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		os.Exit(1)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(time.Minute))
				if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
					_, _ = io.WriteString(c, shimtest.Result("success")+"\n")
				}
			}()
		}
	}()
	os.Stdout.WriteString("ready\n")
	_, _ = io.Copy(io.Discard, os.Stdin)
	ln.Close()
	os.Exit(0)
}

// TestImpostorSocket: a process of another user listening on the socket path is refused, and
// the shim does not fall back to the helper.
func TestImpostorSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a listener as another user")
	}
	const nobody = 65534

	// The listener runs from a copy of the test binary that the unprivileged user can execute,
	// in a directory it can write.
	dir := shortDir(t)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "impostor")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{impostorEnv + "=" + sock}
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	if l, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || l != "ready\n" {
		t.Fatalf("impostor did not start: %q %v", l, err)
	}

	// A helper that would approve proves the shim did not fall back to it.
	helper, record, err := shimtest.WriteHelper(t.TempDir(), shimtest.Approve())
	if err != nil {
		t.Fatal(err)
	}
	conf := t.TempDir()
	if err := WriteService(conf, "svc", "auth required "+shimPath+" socket="+sock+
		" helper="+helper+" config=/nonexistent timeout=10"); err != nil {
		t.Fatal(err)
	}
	out, err := driver.Authenticate(ctx, Call{ConfDir: conf, Service: "svc"})
	if err != nil {
		t.Fatal(err)
	}
	if out.Code != AuthErr {
		t.Errorf("code = %v, want %v", out.Code, AuthErr)
	}
	if _, err := shimtest.ReadRecord(record); err == nil {
		t.Errorf("the shim ran the helper after refusing the socket")
	}
}
