// Package e2e runs real SSH logins through Debian's sshd and the PAM shim pam_pingid.so,
// without changing the machine: each test runs in a private mount namespace in which
// /etc/pam.d, /run and /var/log are temporary directories.
//
// A test enters the namespace, starts an sshd whose PAM service uses the shim, and logs in
// with a Go SSH client:
//
//	func TestLogin(t *testing.T) {
//		sb := e2e.Enter(t)
//		if sb == nil {
//			return // the test ran in a namespace; its outcome is already reported
//		}
//		peer, _ := shimtest.Listen(filepath.Join(sb.Dir, "s"), shimtest.Approve())
//		srv := sb.Start(t, e2e.Harness{Socket: peer.Path})
//		res := srv.Login(t, e2e.Answers("123456"))
//		...
//	}
//
// The session side of the shim is whatever the test starts: a scripted peer from
// pam/shimtest, or the product itself (`pingid-ssh serve` listening on Harness.Socket, or
// Harness.Helper pointing at the pingid-ssh binary with Harness.Config at a test config).
//
// Tests need root, Linux and /usr/sbin/sshd; otherwise they are skipped. The test binary
// must call shimtest.RunHelperIfRequested first thing in TestMain when it uses scripted
// helpers.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pingid-ssh/pingid-ssh/pam/shimtest"
)

// namespaceEnv marks the re-executed test binary that runs inside the private namespace; it
// holds the outer process's mount namespace, which the inner one must differ from.
const namespaceEnv = "PINGID_E2E_NAMESPACE"

// SSHD is the sshd binary the harness runs.
const SSHD = "/usr/sbin/sshd"

// innerTimeout bounds the re-executed test run.
const innerTimeout = 10 * time.Minute

// Sandbox is the private mount namespace a test runs in. Its methods must be called from the
// test that entered it.
type Sandbox struct {
	// Dir is a temporary directory for the test's files (sockets, configs, keys). Its path is
	// short enough for unix sockets.
	Dir string
	// PamDir is the directory mounted on /etc/pam.d.
	PamDir string

	shimOnce sync.Once
	shim     string
	shimErr  error
}

// Enter runs the calling top-level test inside a private mount namespace. In the outer test
// process it re-executes the test binary for this test alone in a new namespace, reports that
// run's outcome (failing t if it failed) and returns nil; inside the namespace it mounts the
// temporary directories and returns the Sandbox. It skips t when not root, not on Linux, when
// sshd is missing or when a mount namespace cannot be created.
func Enter(t *testing.T) *Sandbox {
	t.Helper()
	if outer := os.Getenv(namespaceEnv); outer != "" {
		return enterInside(t, outer)
	}
	if runtime.GOOS != "linux" {
		t.Skip("e2e: needs Linux mount namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("e2e: needs root to mount and to run sshd")
	}
	if _, err := os.Stat(SSHD); err != nil {
		t.Skipf("e2e: %s not available: %v", SSHD, err)
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatalf("e2e.Enter must be called from a top-level test, not %s", t.Name())
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	outer, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Skipf("e2e: cannot read the mount namespace: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), innerTimeout)
	defer cancel()
	args := []string{"-test.run=^" + regexp.QuoteMeta(t.Name()) + "$", "-test.count=1",
		"-test.timeout=" + innerTimeout.String()}
	if testing.Verbose() {
		args = append(args, "-test.v=true")
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), namespaceEnv+"="+outer)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Go makes every mount private in the new namespace before exec.
		Unshareflags: syscall.CLONE_NEWNS,
		Pdeathsig:    syscall.SIGKILL,
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Skipf("e2e: cannot create a mount namespace: %v", err)
	}
	err = cmd.Wait()
	if err != nil {
		t.Fatalf("test in namespace failed: %v\n%s", err, out.Bytes())
	}
	if bytes.Contains(out.Bytes(), []byte("--- SKIP: "+t.Name())) {
		t.Skipf("test in namespace skipped:\n%s", out.Bytes())
	}
	t.Logf("test ran in a private mount namespace:\n%s", out.Bytes())
	return nil
}

// enterInside sets up the namespace: a temporary /etc/pam.d, /run (with /run/sshd) and
// /var/log. It refuses to mount anything unless the process is in a mount namespace of its
// own, so that the host's directories are never covered.
func enterInside(t *testing.T, outer string) *Sandbox {
	t.Helper()
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil || self == outer {
		t.Fatalf("e2e: not in a private mount namespace (%q, outer %q): %v", self, outer, err)
	}

	dir, err := os.MkdirTemp("", "e2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sb := &Sandbox{Dir: dir, PamDir: filepath.Join(dir, "pam.d")}
	if err := os.Mkdir(sb.PamDir, 0o755); err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("pingid-e2e-%d", os.Getpid())
	if err := os.WriteFile(filepath.Join(sb.PamDir, ".marker"), []byte(marker), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(sb.PamDir, "/etc/pam.d", "", syscall.MS_BIND, ""); err != nil {
		t.Fatalf("e2e: bind %s on /etc/pam.d: %v", sb.PamDir, err)
	}
	if b, err := os.ReadFile("/etc/pam.d/.marker"); err != nil || string(b) != marker {
		t.Fatalf("e2e: /etc/pam.d is not the sandbox's directory (%v)", err)
	}
	// sshd needs /run/sshd for privilege separation and records logins under /run and
	// /var/log (utmp, wtmp, btmp); all of that stays in the namespace.
	for _, m := range []string{"/run", "/var/log"} {
		if err := syscall.Mount("tmpfs", m, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV,
			"mode=0755,size=16m"); err != nil {
			t.Fatalf("e2e: tmpfs on %s: %v", m, err)
		}
	}
	if err := os.Mkdir("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	return sb
}

// Shim returns the path of pam_pingid.so built from source into the sandbox, building it on
// first use.
func (sb *Sandbox) Shim(t *testing.T) string {
	t.Helper()
	sb.shimOnce.Do(func() {
		sb.shim, sb.shimErr = shimtest.Build(sb.Dir, "")
	})
	if sb.shimErr != nil {
		t.Fatal(sb.shimErr)
	}
	return sb.shim
}

// ScriptedHelper writes a helper that plays script (see shimtest.WriteHelper) into a fresh
// directory under the sandbox, and returns its path and the path of its record.
func (sb *Sandbox) ScriptedHelper(t *testing.T, script shimtest.Script) (helper, record string) {
	t.Helper()
	dir, err := os.MkdirTemp(sb.Dir, "helper")
	if err != nil {
		t.Fatal(err)
	}
	helper, record, err = shimtest.WriteHelper(dir, script)
	if err != nil {
		t.Fatal(err)
	}
	return helper, record
}

// Peer starts a scripted session server on a new socket in the sandbox; it is closed at
// cleanup.
func (sb *Sandbox) Peer(t *testing.T, script shimtest.Script) *shimtest.Peer {
	t.Helper()
	dir, err := os.MkdirTemp(sb.Dir, "peer")
	if err != nil {
		t.Fatal(err)
	}
	p, err := shimtest.Listen(filepath.Join(dir, "s"), script)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
