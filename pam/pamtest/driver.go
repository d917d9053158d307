// Package pamtest drives PAM modules through the real libpam for tests, without touching
// /etc/pam.d: a small C program (cdriver/pamdrive.c) calls pam_start_confdir on a service
// file in a private directory, answers the conversation from a script and reports every
// message, the PAM code, descriptors left open and children left unreaped.
//
// The driver runs as its own process so that a crash of the module under test cannot take
// the test binary down, and so that it can run under valgrind.
package pamtest

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pingid-ssh/pingid-ssh/pam/shimtest"
)

//go:embed cdriver/pamdrive.c
var driverSource []byte

// Code is a PAM return code of Linux-PAM.
type Code int

// The PAM codes the tests look at, with the values of Linux-PAM's headers (checked against
// the installed headers by TestCodesMatchHeaders).
const (
	Success    Code = 0
	PermDenied Code = 6
	AuthErr    Code = 7
	MaxTries   Code = 11
	ConvErr    Code = 19
	Ignore     Code = 25
)

func (c Code) String() string {
	switch c {
	case Success:
		return "PAM_SUCCESS"
	case PermDenied:
		return "PAM_PERM_DENIED"
	case AuthErr:
		return "PAM_AUTH_ERR"
	case MaxTries:
		return "PAM_MAXTRIES"
	case ConvErr:
		return "PAM_CONV_ERR"
	case Ignore:
		return "PAM_IGNORE"
	}
	return fmt.Sprintf("PAM code %d", int(c))
}

// Style is the style of a conversation message.
type Style int

// Message styles of Linux-PAM.
const (
	PromptEchoOff Style = 1
	PromptEchoOn  Style = 2
	ErrorMsg      Style = 3
	TextInfo      Style = 4
)

// Message is one conversation message the module sent.
type Message struct {
	Style Style
	Text  string
}

func (m Message) String() string {
	return fmt.Sprintf("%d:%q", int(m.Style), m.Text)
}

// Answer is the reply to one prompt.
type Answer struct {
	Kind AnswerKind
	Text string // for Reply
}

// AnswerKind says how the conversation function answers a prompt.
type AnswerKind int

const (
	// Reply answers with Text.
	Reply AnswerKind = iota
	// NoResponse returns PAM_SUCCESS with no response array.
	NoResponse
	// NullText returns a response whose text is NULL.
	NullText
	// ConvError returns PAM_CONV_ERR.
	ConvError
)

// Say is a Reply answer.
func Say(text string) Answer { return Answer{Kind: Reply, Text: text} }

// Call describes one pam_authenticate.
type Call struct {
	ConfDir string // directory holding the service file
	Service string
	User    string // "alice" when empty
	RHost   string // PAM_RHOST, unset when empty
	TTY     string // PAM_TTY, unset when empty
	// Answers answers prompts in order; a prompt with none left is a conversation error.
	Answers []Answer
	// FailInfo makes the conversation fail on info and error messages.
	FailInfo bool
	// CloseStd closes the driver's stdin and stderr before pam_start, as daemons may run.
	CloseStd bool
	// Wrap is a command prefix, such as a valgrind invocation.
	Wrap []string
	// Timeout bounds the driver process; 60 s when zero.
	Timeout time.Duration
}

// Outcome is what one pam_authenticate did.
type Outcome struct {
	Code     Code
	Messages []Message
	// Leaks lists descriptors open after pam_end that were not open before pam_start.
	Leaks []string
	// Children is set when the process still had children (running or unreaped) after pam_end.
	Children bool
	// Stderr is the driver's standard error (and the wrapper's, if any).
	Stderr string
}

// Driver is a compiled pamdrive program. It is safe for concurrent use.
type Driver struct {
	Path string
}

// BuildDriver compiles the driver into dir, with extra compiler flags.
func BuildDriver(dir string, extra ...string) (*Driver, error) {
	src := filepath.Join(dir, "pamdrive.c")
	if err := os.WriteFile(src, driverSource, 0o600); err != nil {
		return nil, fmt.Errorf("build driver: %w", err)
	}
	path, err := shimtest.CompileProgram(dir, "pamdrive", src, extra...)
	if err != nil {
		return nil, fmt.Errorf("build driver: %w", err)
	}
	return &Driver{Path: path}, nil
}

// Codes returns the PAM codes and styles the driver was compiled with, by name
// (SUCCESS, AUTH_ERR, TEXT_INFO, ...).
func (d *Driver) Codes(ctx context.Context) (map[string]int, error) {
	out, err := exec.CommandContext(ctx, d.Path, "-c").Output()
	if err != nil {
		return nil, fmt.Errorf("driver -c: %w", err)
	}
	codes := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, v, ok := strings.Cut(l, " ")
		n, err := strconv.Atoi(v)
		if !ok || err != nil {
			return nil, fmt.Errorf("driver -c: bad line %q", l)
		}
		codes[name] = n
	}
	return codes, nil
}

// Authenticate runs pam_authenticate as c describes. It fails when the driver cannot run or
// does not report a PAM code (for example when the module crashed it).
func (d *Driver) Authenticate(ctx context.Context, c Call) (Outcome, error) {
	var out Outcome
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	user := c.User
	if user == "" {
		user = "alice"
	}
	args := append([]string{}, c.Wrap...)
	args = append(args, d.Path, "-u", user)
	if c.RHost != "" {
		args = append(args, "-r", c.RHost)
	}
	if c.TTY != "" {
		args = append(args, "-t", c.TTY)
	}
	if c.FailInfo {
		args = append(args, "-f")
	}
	if c.CloseStd {
		args = append(args, "-C")
	}
	args = append(args, "--", c.ConfDir, c.Service)
	for _, a := range c.Answers {
		switch a.Kind {
		case Reply:
			args = append(args, "="+a.Text)
		case NoResponse:
			args = append(args, "!null")
		case NullText:
			args = append(args, "!nulltext")
		case ConvError:
			args = append(args, "!err")
		}
	}

	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	out.Stderr = stderr.String()
	if err != nil {
		return out, fmt.Errorf("driver: %w\nstdout:\n%s\nstderr:\n%s", err, stdout.Bytes(), out.Stderr)
	}

	gotCode := false
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), " ", 3)
		switch {
		case f[0] == "msg" && len(f) >= 2:
			style, err := strconv.Atoi(f[1])
			if err != nil {
				return out, fmt.Errorf("driver: bad line %q", sc.Text())
			}
			var text []byte
			if len(f) == 3 {
				if text, err = hex.DecodeString(f[2]); err != nil {
					return out, fmt.Errorf("driver: bad line %q", sc.Text())
				}
			}
			out.Messages = append(out.Messages, Message{Style(style), string(text)})
		case f[0] == "rc" && len(f) == 2:
			n, err := strconv.Atoi(f[1])
			if err != nil {
				return out, fmt.Errorf("driver: bad line %q", sc.Text())
			}
			out.Code = Code(n)
			gotCode = true
		case f[0] == "leak":
			out.Leaks = append(out.Leaks, strings.Join(f[1:], " "))
		case f[0] == "children" && len(f) == 2:
			out.Children = f[1] != "none"
		default:
			return out, fmt.Errorf("driver: unexpected line %q", sc.Text())
		}
	}
	if !gotCode {
		return out, fmt.Errorf("driver reported no PAM code\nstderr:\n%s", out.Stderr)
	}
	return out, nil
}

// WriteService writes a service file named service into dir with the given lines.
func WriteService(dir, service string, lines ...string) error {
	body := strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, service), []byte(body), 0o644); err != nil {
		return fmt.Errorf("write service %s: %w", service, err)
	}
	return nil
}
