// Package bench measures pingid-ssh end to end: the engine against bare OPA, logins
// through the daemon's socket against the pam-helper, failover to offline, throughput
// under config reloads, and the daemon's memory. It starts real processes (the built
// binary as daemon and helper) against an in-process PingID simulator on loopback, in a
// temporary directory it removes afterwards. Nothing here is a test: it reports figures
// and whether they meet their targets, and never fails a build.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
)

// User is the account every measured login uses: one that NSS knows on every machine.
const User = "root"

// deviceKey is the offline secret of the simulated user's device (hex).
const deviceKey = "3132333435363738393031323334353637383930313233343536373839303132"

// Env is a running simulator and daemon in a temporary directory. Close stops both.
type Env struct {
	Bin  string // the pingid-ssh binary
	Dir  string
	Conf string // pingid.conf
	Sock string
	Sim  *pingidtest.Server

	// ConnectTimeout is the connect_timeout written to the config.
	ConnectTimeout time.Duration
	// Keep leaves the directory (config, daemon.log) in place at Close.
	Keep bool

	base    string // the config text, with fail_mode as a %s
	daemon  *exec.Cmd
	waitErr chan error
	logs    *logTap
}

// Options size an Env.
type Options struct {
	Bin            string
	ConnectTimeout time.Duration
	ProbeInterval  time.Duration
	Keep           bool
	Log            zerolog.Logger
}

// Start builds the directory, starts the simulator and the daemon, and waits until the
// daemon serves and its prober has seen the service up.
func Start(ctx context.Context, o Options) (*Env, error) {
	dir, err := os.MkdirTemp("", "pingid-bench.")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	// The config lives in a directory of its own, as in /etc/pingid: the daemon reloads
	// on any change in the config's directory.
	e := &Env{Bin: o.Bin, Dir: dir, Conf: filepath.Join(dir, "etc", "pingid.conf"),
		Sock: filepath.Join(dir, "pingid.sock"), ConnectTimeout: o.ConnectTimeout,
		Keep: o.Keep}
	if err := e.setup(ctx, o); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Env) setup(ctx context.Context, o Options) error {
	if err := e.prepare(o); err != nil {
		return err
	}
	out, err := e.command(ctx, "offline", "init-key", "--config", e.Conf).CombinedOutput()
	if err != nil {
		return fmt.Errorf("offline init-key: %w: %s", err, bytes.TrimSpace(out))
	}
	return e.startDaemon(ctx)
}

// prepare starts the simulator and writes the config, properties and CA files.
func (e *Env) prepare(o Options) error {
	sim, err := pingidtest.Start(pingidtest.Options{
		Users: map[string]pingidtest.User{User: {Behavior: "approve",
			Devices: []pingidtest.Device{{ID: "d1", Name: "phone",
				Suite: "OCRA-1:HOTP-SHA256-6:QN12", KeyHex: deviceKey}}}},
		Log: o.Log,
	})
	if err != nil {
		return fmt.Errorf("start simulator: %w", err)
	}
	e.Sim = sim
	for _, d := range []string{"etc", "etc/policy.d", "state", "devices"} {
		if err := os.Mkdir(filepath.Join(e.Dir, d), 0o700); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
	}
	etc := filepath.Join(e.Dir, "etc")
	if err := sim.WriteProperties(filepath.Join(etc, "pingid.properties")); err != nil {
		return fmt.Errorf("write properties: %w", err)
	}
	if err := os.WriteFile(filepath.Join(etc, "ca.pem"), sim.CACertPEM(), 0o600); err != nil {
		return fmt.Errorf("write ca: %w", err)
	}
	e.base = strings.Join([]string{
		"fail_mode = %s",
		"pingid_properties_file = " + filepath.Join(etc, "pingid.properties"),
		"ca_file = " + filepath.Join(etc, "ca.pem"),
		"policy_dir = " + filepath.Join(etc, "policy.d"),
		"socket_path = " + e.Sock,
		"state_dir = " + filepath.Join(e.Dir, "state"),
		"offline_key_file = " + filepath.Join(e.Dir, "offline.key"),
		"offline_devices_path = " + filepath.Join(e.Dir, "devices") +
			"/${username}/.localFallbackDevices",
		"connect_timeout = " + o.ConnectTimeout.String(),
		"probe_interval = " + o.ProbeInterval.String(),
		"auth_timeout = 30s",
		"",
	}, "\n")
	return e.WriteConfig("passive_offline_authentication")
}

// command runs the binary with the environment a demo uses: files not owned by root are
// trusted only when we are not root ourselves.
func (e *Env) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.Bin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	if os.Geteuid() != 0 {
		cmd.Env = append(cmd.Env, "PINGID_INSECURE_FILES=1")
	}
	return cmd
}

// WriteConfig rewrites pingid.conf with failMode the way an editor does: a new file,
// then a rename over the old one.
func (e *Env) WriteConfig(failMode string) error {
	tmp := e.Conf + ".new"
	if err := os.WriteFile(tmp, fmt.Appendf(nil, e.base, failMode), 0o600); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(tmp, e.Conf); err != nil {
		return fmt.Errorf("rename config: %w", err)
	}
	return nil
}

func (e *Env) startDaemon(ctx context.Context) error {
	cmd := e.command(ctx, "serve", "--config", e.Conf)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("daemon stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	e.daemon = cmd
	e.logs = newLogTap(stderr, filepath.Join(e.Dir, "daemon.log"))
	e.waitErr = make(chan error, 1)
	go func() { e.waitErr <- cmd.Wait() }()

	serving := e.logs.Watch(`"message":"serving"`)
	select {
	case <-serving:
	case err := <-e.waitErr:
		return fmt.Errorf("daemon exited: %v: %s", err, e.logs.Tail())
	case <-time.After(30 * time.Second):
		return fmt.Errorf("daemon did not start within 30s: %s", e.logs.Tail())
	}
	return nil
}

// PID is the daemon's process id.
func (e *Env) PID() int { return e.daemon.Process.Pid }

// Logs is the daemon's log stream.
func (e *Env) Logs() *logTap { return e.logs }

// RSS reads the daemon's resident set size from /proc.
func (e *Env) RSS() (int64, error) { return rssOf(e.PID()) }

// FDs counts the daemon's open file descriptors (sockets to the API among them).
func (e *Env) FDs() int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", e.PID()))
	if err != nil {
		return -1
	}
	return len(ents)
}

func rssOf(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("VmRSS line %q", strings.TrimSpace(line))
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

// Close stops the daemon (SIGTERM, then SIGKILL after 10s) and the simulator and removes
// the directory.
func (e *Env) Close() {
	if e.daemon != nil && e.daemon.Process != nil {
		_ = e.daemon.Process.Signal(os.Interrupt)
		select {
		case <-e.waitErr:
		case <-time.After(10 * time.Second):
			_ = e.daemon.Process.Kill()
			<-e.waitErr
		}
	}
	if e.Sim != nil {
		e.Sim.Close()
	}
	if !e.Keep {
		os.RemoveAll(e.Dir)
	}
}

// logTap reads the daemon's log lines, keeps them in a file for a post-mortem, counts
// lines by pattern and wakes watchers.
type logTap struct {
	mu       sync.Mutex
	watchers []watcher
	counts   map[string]int
	last     []string
	done     chan struct{}
}

type watcher struct {
	pattern string
	ch      chan struct{}
}

func newLogTap(r io.Reader, path string) *logTap {
	t := &logTap{counts: map[string]int{}, done: make(chan struct{})}
	f, _ := os.Create(path)
	go func() {
		defer close(t.done)
		if f != nil {
			defer f.Close()
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if f != nil {
				f.WriteString(line + "\n")
			}
			t.line(line)
		}
	}()
	return t
}

func (t *logTap) line(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for p := range t.counts {
		if containsAll(line, p) {
			t.counts[p]++
		}
	}
	if !strings.Contains(line, `"event":"login"`) {
		t.last = append(t.last, line)
		if len(t.last) > 20 {
			t.last = t.last[1:]
		}
	}
	kept := t.watchers[:0]
	for _, w := range t.watchers {
		if strings.Contains(line, w.pattern) {
			close(w.ch)
			continue
		}
		kept = append(kept, w)
	}
	t.watchers = kept
}

// Watch returns a channel closed at the next line that contains pattern.
func (t *logTap) Watch(pattern string) <-chan struct{} {
	ch := make(chan struct{})
	t.mu.Lock()
	t.watchers = append(t.watchers, watcher{pattern, ch})
	t.mu.Unlock()
	return ch
}

// containsAll reports whether line holds every part of pattern, the parts separated by
// " && ".
func containsAll(line, pattern string) bool {
	for part := range strings.SplitSeq(pattern, " && ") {
		if !strings.Contains(line, part) {
			return false
		}
	}
	return true
}

// Count starts counting lines that hold pattern (if not yet; see containsAll) and returns
// the count so far.
func (t *logTap) Count(pattern string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, ok := t.counts[pattern]
	if !ok {
		t.counts[pattern] = 0
	}
	return n
}

// Tail is the last non-login lines, for error messages.
func (t *logTap) Tail() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.last, "\n")
}
