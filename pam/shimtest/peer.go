package shimtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// MaxLine is the longest line, newline excluded, that either side of the protocol may send.
const MaxLine = 4096

// drainLimit bounds how long a peer waits for the shim to hang up after its script ends.
const drainLimit = 2 * time.Minute

// Step is one action of a scripted session. Exactly one field should be set.
type Step struct {
	// Send writes this line followed by a newline. It is sent as given, so a test can send
	// malformed or oversized lines; build well-formed ones with Prompt, Info, Error, Result.
	Send string `json:"send,omitempty"`
	// Raw writes these bytes exactly, without adding a newline.
	Raw string `json:"raw,omitempty"`
	// Recv reads one line from the shim and records it.
	Recv bool `json:"recv,omitempty"`
	// Close hangs up at once, without waiting for the shim.
	Close bool `json:"close,omitempty"`
	// Exit ends a helper process at once with this status (helper only; ignored by Peer).
	Exit int `json:"exit,omitempty"`
}

// Script is a scripted session. When the steps run out, the peer keeps reading and recording
// lines until the shim hangs up (bounded by two minutes), then closes: a script that never
// sends a result therefore plays a session that never answers.
type Script []Step

// Approve is the script of a session that reads the start line and answers success.
func Approve() Script {
	return Script{{Recv: true}, {Send: Result("success")}}
}

// Record is what a peer saw of one session.
type Record struct {
	// Lines are the lines received from the shim, in order, without their newlines.
	Lines []string `json:"lines"`
	// HungUp is set when the shim closed its end before the peer did.
	HungUp bool `json:"hung_up"`
	// Err is the last I/O error other than the shim hanging up, if any.
	Err string `json:"err,omitempty"`
	// Args are the helper's arguments after the program name (helper only).
	Args []string `json:"args,omitempty"`
	// Env is the helper's environment (helper only).
	Env []string `json:"env,omitempty"`
	// PID is the helper's process id (helper only).
	PID int `json:"pid,omitempty"`
	// Stdio holds what the helper's descriptors 0, 1 and 2 were when it was started, as
	// /proc/PID/fd shows them ("" when closed), for the helper only.
	Stdio []string `json:"stdio,omitempty"`
}

// Messages decodes Lines as JSON objects; a line that is not one is an error.
func (r Record) Messages() ([]map[string]any, error) {
	out := make([]map[string]any, 0, len(r.Lines))
	for i, l := range r.Lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			return nil, fmt.Errorf("line %d %q: %w", i+1, l, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Types returns the "type" member of each received line ("?" for a line that is not JSON).
func (r Record) Types() []string {
	out := make([]string, 0, len(r.Lines))
	for _, l := range r.Lines {
		var m struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			out = append(out, "?")
			continue
		}
		out = append(out, m.Type)
	}
	return out
}

func line(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed struct shapes are marshalled here
	}
	return string(b)
}

// Prompt returns a prompt line.
func Prompt(text string, echo bool) string {
	return line(struct {
		Type string `json:"type"`
		Echo bool   `json:"echo"`
		Text string `json:"text"`
	}{"prompt", echo, text})
}

// Info returns an info line.
func Info(text string) string {
	return line(struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}{"info", text})
}

// Error returns an error line.
func Error(text string) string {
	return line(struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}{"error", text})
}

// Result returns a result line with the given status (not checked, so that tests can send
// unknown ones).
func Result(status string) string {
	return line(struct {
		Type   string `json:"type"`
		Status string `json:"status"`
	}{"result", status})
}

// play runs script over rw and records into rec; save is called after every change to rec.
// It returns the exit status requested by an Exit step, or -1.
func play(r *bufio.Reader, w io.Writer, script Script, rec *Record, save func()) int {
	recv := func() bool {
		s, err := readLine(r)
		if err == io.EOF {
			rec.HungUp = true
			save()
			return false
		}
		if err != nil {
			rec.Err = err.Error()
			save()
			return false
		}
		rec.Lines = append(rec.Lines, s)
		save()
		return true
	}
	drain := func() int {
		for recv() {
		}
		return -1
	}
	for _, st := range script {
		switch {
		case st.Exit != 0:
			return st.Exit
		case st.Close:
			return -1
		case st.Recv:
			if !recv() {
				return -1
			}
		case st.Send != "" || st.Raw != "":
			data := st.Raw
			if st.Send != "" {
				data = st.Send + "\n"
			}
			if _, err := io.WriteString(w, data); err != nil {
				// The shim hung up; what it sent before that is still to be read.
				rec.Err = fmt.Sprintf("write: %v", err)
				save()
				return drain()
			}
		}
	}
	return drain()
}

// readLine reads one line of at most MaxLine bytes; longer lines are an error.
func readLine(r *bufio.Reader) (string, error) {
	var sb strings.Builder
	for {
		frag, err := r.ReadSlice('\n')
		sb.Write(frag)
		if sb.Len() > MaxLine+1 {
			return "", fmt.Errorf("line longer than %d bytes", MaxLine)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && sb.Len() > 0 {
			return "", fmt.Errorf("partial line %q before EOF", sb.String())
		}
		if err != nil {
			return "", err
		}
		return strings.TrimSuffix(sb.String(), "\n"), nil
	}
}

// Peer is a scripted session server on a unix socket. Every connection plays the same script.
// Its methods are safe for concurrent use.
type Peer struct {
	// Path is the socket's path, to be passed to the shim as socket=.
	Path string

	ln      *net.UnixListener
	script  Script
	mu      sync.Mutex
	records []Record
	changed chan struct{} // closed and replaced whenever a session ends
	wg      sync.WaitGroup
}

// Listen starts a Peer on a new socket at path (which must not exist) with mode 0600.
// Close it when done.
func Listen(path string, script Script) (*Peer, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen: %w", err)
	}
	p := &Peer{Path: path, ln: ln, script: script, changed: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *Peer) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.AcceptUnix()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.session(c)
		}()
	}
}

func (p *Peer) session(c *net.UnixConn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(drainLimit))
	var rec Record
	play(bufio.NewReaderSize(c, MaxLine+1), c, p.script, &rec, func() {})

	p.mu.Lock()
	p.records = append(p.records, rec)
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// Wait returns the records of the first n sessions once they have ended, or an error when ctx
// ends first.
func (p *Peer) Wait(ctx context.Context, n int) ([]Record, error) {
	for {
		p.mu.Lock()
		if len(p.records) >= n {
			out := append([]Record(nil), p.records[:n]...)
			p.mu.Unlock()
			return out, nil
		}
		ch := p.changed
		got := len(p.records)
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %d sessions (%d ended): %w", n, got, ctx.Err())
		}
	}
}

// Records returns the records of the sessions that have ended so far.
func (p *Peer) Records() []Record {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Record(nil), p.records...)
}

// Close stops accepting, then waits for sessions in progress to end (each is bounded by two
// minutes). The socket file is removed.
func (p *Peer) Close() error {
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

// HelperEnv names the environment variable that turns a test binary into a scripted helper:
// it holds the path of the helper's JSON description written by WriteHelper.
const HelperEnv = "PINGID_SHIMTEST_HELPER"

// stdioEnv carries what the helper's descriptors 0, 1 and 2 were at exec.
const stdioEnv = "PINGID_SHIMTEST_STDIO"

type helperSpec struct {
	Script Script `json:"script"`
	Record string `json:"record"`
}

// WriteHelper writes into dir an executable that runs the current test binary as a scripted
// helper playing script on its stdin and stdout, and returns the executable's path (for the
// shim's helper=) and the path where the helper keeps its Record (see ReadRecord). The test
// binary must call RunHelperIfRequested first thing in TestMain.
func WriteHelper(dir string, script Script) (helper, record string, err error) {
	self, err := os.Executable()
	if err != nil {
		return "", "", fmt.Errorf("write helper: %w", err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("write helper: %w", err)
	}
	spec := filepath.Join(dir, "helper.json")
	record = filepath.Join(dir, "helper-record.json")
	b, err := json.Marshal(helperSpec{Script: script, Record: record})
	if err != nil {
		return "", "", fmt.Errorf("write helper: %w", err)
	}
	if err := os.WriteFile(spec, b, 0o600); err != nil {
		return "", "", fmt.Errorf("write helper: %w", err)
	}
	helper = filepath.Join(dir, "helper")
	// The shell notes the descriptors it was started with: the Go runtime would replace a
	// closed one with /dev/null before the helper could look.
	sh := fmt.Sprintf("#!/bin/sh\nexport %s=%s\n"+
		"%s=\"$(readlink /proc/$$/fd/0)|$(readlink /proc/$$/fd/1)|$(readlink /proc/$$/fd/2)\"\n"+
		"export %s\nexec %s \"$@\"\n",
		HelperEnv, shellQuote(spec), stdioEnv, stdioEnv, shellQuote(self))
	if err := os.WriteFile(helper, []byte(sh), 0o700); err != nil {
		return "", "", fmt.Errorf("write helper: %w", err)
	}
	return helper, record, nil
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ReadRecord reads the Record a helper keeps at path. A helper that never ran leaves no file,
// which is reported as an error wrapping fs.ErrNotExist.
func ReadRecord(path string) (Record, error) {
	var rec Record
	b, err := os.ReadFile(path)
	if err != nil {
		return rec, fmt.Errorf("read helper record: %w", err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("read helper record: %w", err)
	}
	return rec, nil
}

// RunHelperIfRequested plays a helper script and exits the process when HelperEnv is set;
// otherwise it returns at once. Call it first in TestMain.
func RunHelperIfRequested() {
	spec := os.Getenv(HelperEnv)
	if spec == "" {
		return
	}
	os.Exit(runHelper(spec))
}

func runHelper(specPath string) int {
	b, err := os.ReadFile(specPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "shimtest helper:", err)
		return 70
	}
	var spec helperSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		fmt.Fprintln(os.Stderr, "shimtest helper:", err)
		return 70
	}
	// A line on stderr: were stderr the protocol stream, the shim would see a bad line.
	fmt.Fprintln(os.Stderr, "shimtest helper: started")
	rec := Record{Args: os.Args[1:], Env: os.Environ(), PID: os.Getpid()}
	rec.Stdio = strings.Split(os.Getenv(stdioEnv), "|")
	save := func() {
		data, err := json.Marshal(rec)
		if err != nil {
			return
		}
		tmp := spec.Record + ".tmp"
		if os.WriteFile(tmp, data, 0o600) == nil {
			_ = os.Rename(tmp, spec.Record)
		}
	}
	save()
	done := make(chan int, 1)
	go func() {
		done <- play(bufio.NewReaderSize(os.Stdin, MaxLine+1), os.Stdout, spec.Script, &rec, save)
	}()
	select {
	case code := <-done:
		if code >= 0 {
			return code
		}
		return 0
	case <-time.After(drainLimit):
		rec.Err = errors.New("helper gave up waiting for the shim").Error()
		save()
		return 71
	}
}
