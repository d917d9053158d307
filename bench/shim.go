package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"time"

	"github.com/pingid-ssh/pingid-ssh/session"
)

// offlinePrompt starts the prompt of the offline flow.
const offlinePrompt = "Code from your PingID app"

// pushInfo is the line the online flow shows while it waits for a push.
const pushInfo = "Approve the sign-in request"

// Outcome is what one login showed the shim.
type Outcome struct {
	Status   session.Status
	Push     bool          // the online push flow ran
	Offline  bool          // the offline prompt came
	ToPrompt time.Duration // from start to the offline prompt
	Total    time.Duration
}

// converse plays the shim over rw: start, then every prompt is answered with cancel
// (the offline prompt is only timed, never answered). It returns at the result.
func converse(rw io.ReadWriter, begin time.Time) (Outcome, error) {
	var out Outcome
	w, r := session.NewWriter(rw), session.NewReader(rw)
	err := w.Write(&session.Message{Type: session.TypeStart, User: User,
		RHost: "203.0.113.7", Service: "sshd", TTY: "ssh"})
	if err != nil {
		return out, err
	}
	for {
		m, err := r.Read()
		if err != nil {
			return out, fmt.Errorf("read: %w", err)
		}
		switch m.Type {
		case session.TypeInfo:
			if strings.HasPrefix(m.Text, pushInfo) {
				out.Push = true
			}
		case session.TypeError:
		case session.TypePrompt:
			if strings.HasPrefix(m.Text, offlinePrompt) {
				out.Offline = true
				out.ToPrompt = time.Since(begin)
			}
			if err := w.Write(&session.Message{Type: session.TypeCancel}); err != nil {
				return out, err
			}
		case session.TypeResult:
			out.Status = m.Status
			out.Total = time.Since(begin)
			return out, nil
		default:
			return out, fmt.Errorf("unexpected message %q", m.Type)
		}
	}
}

// SocketLogin runs one login through the daemon's socket.
func (e *Env) SocketLogin(ctx context.Context) (Outcome, error) {
	begin := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", e.Sock)
	if err != nil {
		return Outcome{}, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	return converse(conn, begin)
}

// HelperLogin runs one login through a new "pam-helper" process, as the shim does when no
// daemon answers.
func (e *Env) HelperLogin(ctx context.Context) (Outcome, error) {
	begin := time.Now()
	cmd := e.command(ctx, "pam-helper", "--config", e.Conf)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return Outcome{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Outcome{}, err
	}
	if err := cmd.Start(); err != nil {
		return Outcome{}, fmt.Errorf("start pam-helper: %w", err)
	}
	out, err := converse(pipes{stdout, stdin}, begin)
	stdin.Close()
	werr := cmd.Wait()
	if err == nil && werr != nil {
		var exit *exec.ExitError
		if !errors.As(werr, &exit) || out.Status == session.StatusSuccess {
			err = fmt.Errorf("pam-helper: %w", werr)
		}
	}
	return out, err
}

type pipes struct {
	io.Reader
	io.Writer
}
