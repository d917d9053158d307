package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Harness describes one sshd on 127.0.0.1 whose "sshd" PAM service authenticates with the
// shim. The zero value is usable: the shim is built from source, and its socket, helper and
// config point at paths that do not exist, so every login is denied.
type Harness struct {
	// Shim is the module's path; when empty, Sandbox.Shim builds it from source.
	Shim string
	// Socket, Helper and Config become the shim's socket=, helper= and config= arguments.
	// Empty values point at nonexistent paths in the sandbox.
	Socket string
	Helper string
	Config string
	// Timeout is the shim's timeout= in seconds; 30 when zero.
	Timeout int
	// Debug adds the shim's debug argument.
	Debug bool
	// Auth, when set, replaces the auth stack; in each line "SHIM" stands for the module and
	// its arguments. The default stack is "auth required SHIM".
	Auth []string
	// SSHDConfig holds extra sshd_config lines, appended after the harness's own.
	SSHDConfig []string
}

// Server is a running sshd. It is stopped at the end of the test that started it.
type Server struct {
	// Addr is sshd's host:port on 127.0.0.1.
	Addr string
	// HostKey is sshd's host key; Login accepts no other.
	HostKey ssh.PublicKey
	// Client is the key authorised for root.
	Client ssh.Signer
	// PAMService is the text of the PAM service file sshd uses.
	PAMService string

	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Log returns what sshd has written to stderr so far (it runs with -e).
func (s *Server) Log() string { return s.log.String() }

// Start writes the PAM service /etc/pam.d/sshd of the sandbox, an sshd_config, a host key and
// an authorised client key, starts sshd in the foreground on a free port of 127.0.0.1, and
// waits until it accepts connections. Start rewrites the one sshd service of the sandbox, so a
// test runs its servers one after another. sshd is stopped, and its log reported when the
// test failed, at cleanup.
func (sb *Sandbox) Start(t *testing.T, h Harness) *Server {
	t.Helper()
	dir, err := os.MkdirTemp(sb.Dir, "sshd")
	if err != nil {
		t.Fatal(err)
	}

	shim := h.Shim
	if shim == "" {
		shim = sb.Shim(t)
	}
	def := func(v, name string) string {
		if v == "" {
			return filepath.Join(dir, name)
		}
		return v
	}
	timeout := h.Timeout
	if timeout == 0 {
		timeout = 30
	}
	module := fmt.Sprintf("%s socket=%s helper=%s config=%s timeout=%d", shim,
		def(h.Socket, "no-socket"), def(h.Helper, "no-helper"), def(h.Config, "no-config"),
		timeout)
	if h.Debug {
		module += " debug"
	}
	auth := h.Auth
	if len(auth) == 0 {
		auth = []string{"auth required SHIM"}
	}
	var service strings.Builder
	for _, l := range auth {
		service.WriteString(strings.ReplaceAll(l, "SHIM", module) + "\n")
	}
	service.WriteString("account required pam_permit.so\n")
	service.WriteString("session required pam_permit.so\n")
	service.WriteString("password required pam_deny.so\n")
	if err := os.WriteFile(filepath.Join(sb.PamDir, "sshd"), []byte(service.String()),
		0o644); err != nil {
		t.Fatal(err)
	}

	hostKey := writeKey(t, filepath.Join(dir, "host_ed25519"))
	client := writeKey(t, filepath.Join(dir, "client_ed25519"))
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, ssh.MarshalAuthorizedKey(client.PublicKey()),
		0o600); err != nil {
		t.Fatal(err)
	}

	var srv *Server
	for attempt := 0; attempt < 3 && srv == nil; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "sshd_config")
		lines := []string{
			"ListenAddress 127.0.0.1",
			"Port " + strconv.Itoa(port),
			"HostKey " + filepath.Join(dir, "host_ed25519"),
			"PidFile " + filepath.Join(dir, "sshd.pid"),
			"AuthorizedKeysFile " + authorized,
			"UsePAM yes",
			"PubkeyAuthentication yes",
			"KbdInteractiveAuthentication yes",
			"PasswordAuthentication no",
			"AuthenticationMethods publickey,keyboard-interactive",
			"PermitRootLogin yes",
			"StrictModes no",
			"UseDNS no",
			"PrintMotd no",
			"PrintLastLog no",
			"PermitUserRC no",
			"LoginGraceTime 60",
			"MaxAuthTries 6",
			"AllowTcpForwarding no",
			"AllowAgentForwarding no",
			"X11Forwarding no",
			"PermitTunnel no",
			"LogLevel VERBOSE",
		}
		lines = append(lines, h.SSHDConfig...)
		if err := os.WriteFile(cfg, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		srv, err = startSSHD(cfg, port)
		if err != nil {
			t.Logf("sshd on port %d: %v", port, err)
		}
	}
	if srv == nil {
		t.Fatal("sshd did not start")
	}
	srv.HostKey = hostKey.PublicKey()
	srv.Client = client
	srv.PAMService = service.String()
	t.Cleanup(func() {
		srv.stop()
		if t.Failed() {
			t.Logf("PAM service:\n%s\nsshd log:\n%s", srv.PAMService, srv.Log())
		}
	})
	return srv
}

// writeKey generates an ed25519 key, writes it in OpenSSH format with mode 0600 and returns
// its signer.
func writeKey(t *testing.T, path string) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "pingid-e2e")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// freePort asks the kernel for a free TCP port on 127.0.0.1. Another process may take it
// before sshd binds it; Start retries.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startSSHD runs sshd -D -e and waits up to 10 s for it to accept connections.
func startSSHD(cfg string, port int) (*Server, error) {
	srv := &Server{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		log:  &lockedBuffer{},
		done: make(chan struct{}),
	}
	srv.cmd = exec.Command(SSHD, "-D", "-e", "-f", cfg)
	srv.cmd.Stdout = srv.log
	srv.cmd.Stderr = srv.log
	srv.cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	srv.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := srv.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	go func() {
		_ = srv.cmd.Wait()
		close(srv.done)
	}()

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-srv.done:
			return nil, fmt.Errorf("sshd exited: %s", srv.Log())
		default:
		}
		c, err := net.DialTimeout("tcp", srv.Addr, time.Second)
		if err == nil {
			c.Close()
			return srv, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.stop()
	return nil, fmt.Errorf("sshd not accepting on %s after 10s: %s", srv.Addr, srv.Log())
}

// stop ends sshd and any per-connection children left in its process group.
func (s *Server) stop() {
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-s.done
}

// Round is one keyboard-interactive request sshd sent.
type Round struct {
	Name        string
	Instruction string
	Questions   []string
	Echos       []bool
}

// Responder answers one keyboard-interactive round; an error aborts the login.
type Responder func(r Round) ([]string, error)

// Answers is a Responder that answers the questions with texts, in order across rounds.
// Rounds without questions take none; running out of texts aborts the login.
func Answers(texts ...string) Responder {
	var mu sync.Mutex
	next := 0
	return func(r Round) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		out := make([]string, 0, len(r.Questions))
		for _, q := range r.Questions {
			if next >= len(texts) {
				return nil, fmt.Errorf("no answer left for %q", q)
			}
			out = append(out, texts[next])
			next++
		}
		return out, nil
	}
}

// LoginResult is the outcome of one login.
type LoginResult struct {
	// OK is set when authentication succeeded and the command ran.
	OK bool
	// Err says why the login failed.
	Err error
	// Rounds are the keyboard-interactive requests seen, in order.
	Rounds []Round
	// Output is the command's output ("pingid-e2e-ok\n" on success).
	Output string
}

// Prompts returns the questions of every round, in order.
func (r LoginResult) Prompts() []string {
	var out []string
	for _, rd := range r.Rounds {
		out = append(out, rd.Questions...)
	}
	return out
}

// LoginTimeout bounds one login from connect to the end of the command.
const LoginTimeout = 90 * time.Second

// Login logs in as root with the client key, answers keyboard-interactive with respond, runs
// `echo pingid-e2e-ok` and reports what happened. A failed login is a result, not a test
// failure.
func (s *Server) Login(t *testing.T, respond Responder) LoginResult {
	t.Helper()
	var res LoginResult
	var mu sync.Mutex
	cb := func(name, instruction string, questions []string, echos []bool) ([]string, error) {
		r := Round{Name: name, Instruction: instruction,
			Questions: append([]string(nil), questions...), Echos: append([]bool(nil), echos...)}
		mu.Lock()
		res.Rounds = append(res.Rounds, r)
		mu.Unlock()
		return respond(r)
	}
	cfg := &ssh.ClientConfig{
		User: "root",
		Auth: []ssh.AuthMethod{ssh.PublicKeys(s.Client),
			ssh.KeyboardInteractive(cb)},
		HostKeyCallback: ssh.FixedHostKey(s.HostKey),
		Timeout:         10 * time.Second,
	}

	ctx, cancel := context.WithTimeout(context.Background(), LoginTimeout)
	defer cancel()
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		res.Err = fmt.Errorf("dial: %w", err)
		return res
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(LoginTimeout))

	c, chans, reqs, err := ssh.NewClientConn(conn, s.Addr, cfg)
	if err != nil {
		res.Err = fmt.Errorf("authenticate: %w", err)
		return res
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		res.Err = fmt.Errorf("session: %w", err)
		return res
	}
	defer sess.Close()
	out, err := sess.Output("echo pingid-e2e-ok")
	res.Output = string(out)
	if err != nil {
		res.Err = fmt.Errorf("run: %w", err)
		return res
	}
	if res.Output != "pingid-e2e-ok\n" {
		res.Err = errors.New("unexpected command output")
		return res
	}
	res.OK = true
	return res
}
