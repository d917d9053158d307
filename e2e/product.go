package e2e

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/offline"
	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
	"github.com/pingid-ssh/pingid-ssh/session"
)

// DeviceKeyHex is the offline secret of the simulated user's device.
const DeviceKeyHex = "3132333435363738393031323334353637383930313233343536373839303132"

// RejectPostfix is a domain_postfix under which the simulator rejects every push of the
// user: the simulator knows "root" (approves) and "root" + RejectPostfix (rejects).
const RejectPostfix = "@reject"

// BuildBinary builds cmd/pingid-ssh from source into a fresh directory that every user may
// traverse (so that a process of another uid can run it) and returns its path. The
// directory is removed at the end of t. It skips t when the go command is not available.
func BuildBinary(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if _, serr := os.Stat(goCmd); os.Getenv("GOROOT") == "" || serr != nil {
			t.Skipf("e2e: go command not found: %v", err)
		}
	}
	dir, err := os.MkdirTemp("", "pingid-bin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "pingid-ssh")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", bin,
		"github.com/pingid-ssh/pingid-ssh/cmd/pingid-ssh")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pingid-ssh: %v\n%s", err, out)
	}
	return bin
}

// Product is one installation of pingid-ssh in a temporary directory, around a PingID
// simulator on loopback: config, properties, CA, host key, policy directory, socket and
// state directories. Its methods must be called from the test that made it.
//
// Layout under Dir: etc/ (pingid.conf, pingid.properties, ca.pem, offline.key,
// policy.d/), run/ (the daemon's socket, mode 0700) and lib/ (state and device files).
type Product struct {
	Dir        string
	Bin        string
	Sim        *pingidtest.Server
	ConfigPath string
	SocketPath string
	PolicyDir  string
	// Suite and DeviceKey are what the user's device computes offline codes with.
	Suite     offline.Suite
	DeviceKey []byte

	base map[string]string
}

// NewProduct starts a simulator whose user "root" approves pushes (and "root@reject"
// rejects them), writes the product's files under dir with the config keys of base
// overridden by over, and creates the host key. bin is the pingid-ssh binary. The
// simulator is closed at the end of t.
func NewProduct(t *testing.T, dir, bin string, over map[string]string) *Product {
	t.Helper()
	dev := pingidtest.Device{ID: "d1", Name: "phone", Suite: offline.DefaultSuite,
		KeyHex: DeviceKeyHex}
	sim, err := pingidtest.Start(pingidtest.Options{
		Users: map[string]pingidtest.User{
			"root":                 {Behavior: "approve", Devices: []pingidtest.Device{dev}},
			"root" + RejectPostfix: {Behavior: "reject", Devices: []pingidtest.Device{dev}},
		},
		Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)

	suite, err := offline.ParseSuite(offline.DefaultSuite)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := hex.DecodeString(DeviceKeyHex)
	p := &Product{Dir: dir, Bin: bin, Sim: sim, Suite: suite, DeviceKey: key,
		ConfigPath: filepath.Join(dir, "etc", "pingid.conf"),
		SocketPath: filepath.Join(dir, "run", "pingid.sock"),
		PolicyDir:  filepath.Join(dir, "etc", "policy.d"),
	}
	for _, d := range []string{"etc", "etc/policy.d", "run", "lib"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	etc := filepath.Join(dir, "etc")
	if err := sim.WriteProperties(filepath.Join(etc, "pingid.properties")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "ca.pem"), sim.CACertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := offline.InitKey(filepath.Join(etc, "offline.key")); err != nil {
		t.Fatal(err)
	}
	p.base = map[string]string{
		"fail_mode":              "restrictive",
		"pingid_properties_file": filepath.Join(etc, "pingid.properties"),
		"ca_file":                filepath.Join(etc, "ca.pem"),
		"policy_dir":             p.PolicyDir,
		"socket_path":            p.SocketPath,
		"state_dir":              filepath.Join(dir, "lib", "state"),
		"offline_key_file":       filepath.Join(etc, "offline.key"),
		"offline_devices_path": filepath.Join(dir, "lib", "devices", "${username}",
			".localFallbackDevices"),
		"connect_timeout": "1s",
		"probe_interval":  "1s",
		"auth_timeout":    "20s",
		// Wrong codes are part of the tests; a lockout is not what they check.
		"offline_max_attempts": "50",
	}
	for k, v := range over {
		p.base[k] = v
	}
	p.WriteConfig(t, nil)
	return p
}

// ConfigText is the product's config with the keys of over replacing or adding to its
// base keys, sorted by key.
func (p *Product) ConfigText(over map[string]string) string {
	keys := map[string]string{}
	for k, v := range p.base {
		keys[k] = v
	}
	for k, v := range over {
		keys[k] = v
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "%s = %s\n", k, keys[k])
	}
	return b.String()
}

// WriteConfig renames a config with over applied into place, the way an editor saves.
func (p *Product) WriteConfig(t *testing.T, over map[string]string) {
	t.Helper()
	if err := p.ReplaceFile(p.ConfigPath, p.ConfigText(over)); err != nil {
		t.Fatal(err)
	}
}

// ReplaceFile writes text to a temporary file beside path (mode 0600) and renames it onto
// path. It is safe to call from any goroutine.
func (p *Product) ReplaceFile(path, text string) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".new-*")
	if err != nil {
		return err
	}
	_, werr := f.WriteString(text)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil {
		os.Remove(f.Name())
	}
	return werr
}

// Env is the environment for product processes: PATH, and PINGID_INSECURE_FILES=1 when
// the test does not run as root (its files then belong to the test's user).
func Env() []string {
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if os.Geteuid() != 0 {
		env = append(env, "PINGID_INSECURE_FILES=1")
	}
	return env
}

// Daemon is a running `pingid-ssh serve` process.
type Daemon struct {
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
}

// StartDaemon runs `pingid-ssh serve --config ConfigPath` and waits up to 20 s for its
// socket. The daemon is stopped at the end of t, and its log reported when t failed.
func (p *Product) StartDaemon(t *testing.T) *Daemon {
	t.Helper()
	d := &Daemon{log: &lockedBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(p.Bin, "serve", "--config", p.ConfigPath)
	d.cmd.Env = Env()
	d.cmd.Stdout = d.log
	d.cmd.Stderr = d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.Log())
		}
	})
	ok := waitUntil(20*time.Second, func() bool {
		select {
		case <-d.done:
			return true
		default:
		}
		fi, err := os.Lstat(p.SocketPath)
		return err == nil && fi.Mode()&os.ModeSocket != 0 &&
			strings.Contains(d.Log(), `"message":"serving"`)
	})
	select {
	case <-d.done:
		t.Fatalf("daemon exited: %s", d.Log())
	default:
	}
	if !ok {
		t.Fatalf("daemon socket %s did not appear: %s", p.SocketPath, d.Log())
	}
	return d
}

// Log returns what the daemon has logged so far.
func (d *Daemon) Log() string { return d.log.String() }

// Count returns how many lines of the daemon's log contain every one of parts.
func (d *Daemon) Count(parts ...string) int {
	n := 0
	for _, l := range strings.Split(d.Log(), "\n") {
		all := l != ""
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			n++
		}
	}
	return n
}

// WaitCount waits up to 20 s until at least n lines of the log contain all of parts.
func (d *Daemon) WaitCount(t *testing.T, n int, parts ...string) {
	t.Helper()
	if !waitUntil(20*time.Second, func() bool { return d.Count(parts...) >= n }) {
		t.Fatalf("daemon log has %d lines with %q, want %d", d.Count(parts...), parts, n)
	}
}

// Stop ends the daemon with SIGTERM (SIGKILL after 10 s) and waits for it.
func (d *Daemon) Stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return
	case <-time.After(10 * time.Second):
	}
	_ = d.cmd.Process.Kill()
	<-d.done
}

// Exited reports whether the daemon process has ended.
func (d *Daemon) Exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Answerer answers one prompt of a login, given the info lines shown since the previous
// prompt and the prompt's text; ok false cancels the login, as a client giving up does.
type Answerer func(infos []string, prompt string) (answer string, ok bool)

// Login is what one login through the daemon's socket showed and how it ended.
type Login struct {
	Status session.Status
	// Infos are the info and error lines, Prompts the prompt texts, in order.
	Infos   []string
	Prompts []string
}

// socketLoginTimeout bounds one login through the socket.
const socketLoginTimeout = 60 * time.Second

// Login plays the shim's part for user over the daemon's socket, answering prompts with
// answer (nil cancels at the first prompt). An error is a failure of the transport or the
// protocol, not a refused login.
func (p *Product) Login(user string, answer Answerer) (Login, error) {
	var res Login
	conn, err := net.DialTimeout("unix", p.SocketPath, 5*time.Second)
	if err != nil {
		return res, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(socketLoginTimeout))

	w, r := session.NewWriter(conn), session.NewReader(conn)
	if err := w.Write(&session.Message{Type: session.TypeStart, User: user,
		RHost: "127.0.0.1", Service: "sshd", TTY: "ssh"}); err != nil {
		return res, err
	}
	var infos []string
	for {
		m, err := r.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return res, fmt.Errorf("read: %w", err)
		}
		switch m.Type {
		case session.TypeInfo, session.TypeError:
			res.Infos = append(res.Infos, m.Text)
			infos = append(infos, m.Text)
		case session.TypePrompt:
			res.Prompts = append(res.Prompts, m.Text)
			reply := &session.Message{Type: session.TypeCancel}
			if answer != nil {
				if text, ok := answer(infos, m.Text); ok {
					reply = &session.Message{Type: session.TypeAnswer, Text: text}
				}
			}
			infos = nil
			if err := w.Write(reply); err != nil {
				return res, err
			}
		case session.TypeResult:
			res.Status = m.Status
			return res, nil
		default:
			return res, fmt.Errorf("unexpected message %q", m.Type)
		}
	}
}

// challengePattern finds the 12-digit key the offline flow shows.
var challengePattern = regexp.MustCompile(`(\d{4} \d{4} \d{4})`)

// Code computes the device's answer to the offline key shown somewhere in texts; ok is
// false when no key was shown.
func (p *Product) Code(texts ...string) (code string, ok bool) {
	m := challengePattern.FindStringSubmatch(strings.Join(texts, "\n"))
	if m == nil {
		return "", false
	}
	code, err := p.Suite.Compute(p.DeviceKey,
		offline.Input{Question: offline.NormalizeCode(m[1])})
	if err != nil {
		return "", false
	}
	return code, true
}

// OfflineAnswer answers an offline prompt with the right code (wrong false) or with a
// code that differs from it in every digit (wrong true). Without a key shown it cancels.
func (p *Product) OfflineAnswer(wrong bool) Answerer {
	return func(infos []string, prompt string) (string, bool) {
		code, ok := p.Code(append(infos, prompt)...)
		if !ok {
			return "", false
		}
		if wrong {
			code = otherCode(code)
		}
		return code, true
	}
}

// otherCode returns a code of the same length that differs from code in every digit.
func otherCode(code string) string {
	b := []byte(code)
	for i, c := range b {
		if c >= '0' && c <= '9' {
			b[i] = '0' + (c-'0'+5)%10
		}
	}
	return string(b)
}

// waitUntil polls cond every 20 ms until it holds or limit passes.
func waitUntil(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
