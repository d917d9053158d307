package pamtest

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pingid-ssh/pingid-ssh/pam/shimtest"
)

type step = shimtest.Step

func send(line string) step { return step{Send: line} }

var recv = step{Recv: true}

func TestCodesMatchHeaders(t *testing.T) {
	codes, err := driver.Codes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		"SUCCESS": int(Success), "AUTH_ERR": int(AuthErr), "IGNORE": int(Ignore),
		"MAXTRIES": int(MaxTries), "PERM_DENIED": int(PermDenied), "CONV_ERR": int(ConvErr),
		"TEXT_INFO": int(TextInfo), "ERROR_MSG": int(ErrorMsg),
		"PROMPT_ECHO_OFF": int(PromptEchoOff), "PROMPT_ECHO_ON": int(PromptEchoOn),
	}
	for name, v := range want {
		if codes[name] != v {
			t.Errorf("%s: header has %d, package has %d", name, codes[name], v)
		}
	}
}

// TestRelay covers the protocol over the daemon socket: results, prompts, messages, and every
// way the session or the conversation can fail.
func TestRelay(t *testing.T) {
	t.Parallel()
	oversize := strings.Repeat("x", shimtest.MaxLine+1)
	// An info line of exactly MaxLine bytes, and one a byte longer.
	infoAt := func(n int) string {
		return shimtest.Info(strings.Repeat("i", n-len(shimtest.Info(""))))
	}

	tests := []struct {
		name     string
		script   shimtest.Script
		answers  []Answer
		failInfo bool
		want     Code
		msgs     []Message
		// types are the message types the session received, in order.
		types []string
		// answers the session received, in order.
		got []string
	}{
		{
			name:   "success",
			script: shimtest.Approve(),
			want:   Success, types: []string{"start"},
		},
		{
			name:   "bypass",
			script: shimtest.Script{recv, send(shimtest.Result("bypass"))},
			want:   Success, types: []string{"start"},
		},
		{
			// libpam turns a stack in which every module ignores into PAM_PERM_DENIED, a
			// code the shim never returns; TestStacks shows PAM_IGNORE composing.
			name:   "ignore",
			script: shimtest.Script{recv, send(shimtest.Result("ignore"))},
			want:   PermDenied, types: []string{"start"},
		},
		{
			name:   "deny",
			script: shimtest.Script{recv, send(shimtest.Result("deny"))},
			want:   AuthErr, types: []string{"start"},
		},
		{
			name:   "maxtries",
			script: shimtest.Script{recv, send(shimtest.Result("maxtries"))},
			want:   MaxTries, types: []string{"start"},
		},
		{
			name: "prompt echo off answered",
			script: shimtest.Script{recv, send(shimtest.Prompt("Code: ", false)), recv,
				send(shimtest.Result("success"))},
			answers: []Answer{Say("123456")},
			want:    Success,
			msgs:    []Message{{PromptEchoOff, "Code: "}},
			types:   []string{"start", "answer"}, got: []string{"123456"},
		},
		{
			name: "prompt echo on answered",
			script: shimtest.Script{recv, send(shimtest.Prompt("Device (1-2): ", true)), recv,
				send(shimtest.Result("success"))},
			answers: []Answer{Say("2")},
			want:    Success,
			msgs:    []Message{{PromptEchoOn, "Device (1-2): "}},
			types:   []string{"start", "answer"}, got: []string{"2"},
		},
		{
			name: "prompt without echo member is echo off",
			script: shimtest.Script{recv, send(`{"type":"prompt","text":"Code: "}`), recv,
				send(shimtest.Result("deny"))},
			answers: []Answer{Say("1")},
			want:    AuthErr,
			msgs:    []Message{{PromptEchoOff, "Code: "}},
			types:   []string{"start", "answer"}, got: []string{"1"},
		},
		{
			name: "members left out as Go's omitempty does",
			script: shimtest.Script{recv, send(`{"type":"info"}`), send(`{"type":"error"}`),
				send(`{"type":"prompt"}`), recv, send(shimtest.Result("success"))},
			answers: []Answer{Say("")},
			want:    Success,
			msgs:    []Message{{TextInfo, ""}, {ErrorMsg, ""}, {PromptEchoOff, ""}},
			types:   []string{"start", "answer"}, got: []string{""},
		},
		{
			name: "wrong code then right code",
			script: shimtest.Script{recv, send(shimtest.Prompt("Code: ", false)), recv,
				send(shimtest.Error("Wrong code.")), send(shimtest.Prompt("Code: ", false)),
				recv, send(shimtest.Result("success"))},
			answers: []Answer{Say("000000"), Say("123456")},
			want:    Success,
			msgs: []Message{{PromptEchoOff, "Code: "}, {ErrorMsg, "Wrong code."},
				{PromptEchoOff, "Code: "}},
			types: []string{"start", "answer", "answer"}, got: []string{"000000", "123456"},
		},
		{
			name: "info and error relayed",
			script: shimtest.Script{recv, send(shimtest.Info("Push sent to your phone.")),
				send(shimtest.Error("PingID unreachable; using offline code.")),
				send(shimtest.Result("deny"))},
			want: AuthErr,
			msgs: []Message{{TextInfo, "Push sent to your phone."},
				{ErrorMsg, "PingID unreachable; using offline code."}},
			types: []string{"start"},
		},
		{
			name: "unicode and escapes decoded",
			script: shimtest.Script{recv,
				send(shimtest.Info("Grüße ✓ 😀 <b>&\"q\"\\ \t tab")),
				send(`{"type":"info","text":"\ud83d\ude00\u00e9\/\b\f\n\r"}`),
				send(`{ "text" : "spaced" ,` + "\t" + `"type":"info" }`),
				send(shimtest.Result("success"))},
			want: Success,
			msgs: []Message{{TextInfo, "Grüße ✓ 😀 <b>&\"q\"\\ \t tab"},
				{TextInfo, "😀é/\b\f\n\r"}, {TextInfo, "spaced"}},
			types: []string{"start"},
		},
		{
			name: "answer with quotes and control bytes encoded",
			script: shimtest.Script{recv, send(shimtest.Prompt("Code: ", false)), recv,
				send(shimtest.Result("deny"))},
			answers: []Answer{Say("a\"b\\c\x01\x1f\x7f\té😀")},
			want:    AuthErr,
			msgs:    []Message{{PromptEchoOff, "Code: "}},
			types:   []string{"start", "answer"}, got: []string{"a\"b\\c\x01\x1f\x7f\té😀"},
		},
		{
			name:   "line of exactly the limit accepted",
			script: shimtest.Script{recv, send(infoAt(shimtest.MaxLine)), send(shimtest.Result("success"))},
			want:   Success,
			msgs:   []Message{{TextInfo, strings.Repeat("i", shimtest.MaxLine-len(shimtest.Info("")))}},
			types:  []string{"start"},
		},
		{
			name: "trailing lines after the result are ignored",
			script: shimtest.Script{recv, send(shimtest.Result("deny")),
				send(shimtest.Result("success"))},
			want: AuthErr, types: []string{"start"},
		},
		{
			name: "conversation error sends cancel",
			script: shimtest.Script{recv, send(shimtest.Prompt("Code: ", false)), recv,
				send(shimtest.Result("success"))},
			answers: []Answer{{Kind: ConvError}},
			want:    AuthErr,
			msgs:    []Message{{PromptEchoOff, "Code: "}},
			types:   []string{"start", "cancel"},
		},
		{
			name: "no response array sends cancel",
			script: shimtest.Script{recv, send(shimtest.Prompt("Code: ", false)), recv,
				send(shimtest.Result("success"))},
			answers: []Answer{{Kind: NoResponse}},
			want:    AuthErr,
			msgs:    []Message{{PromptEchoOff, "Code: "}},
			types:   []string{"start", "cancel"},
		},
		{
			name: "null response text sends cancel",
			script: shimtest.Script{recv, send(shimtest.Prompt("Code: ", false)), recv,
				send(shimtest.Result("success"))},
			answers: []Answer{{Kind: NullText}},
			want:    AuthErr,
			msgs:    []Message{{PromptEchoOff, "Code: "}},
			types:   []string{"start", "cancel"},
		},
		{
			name: "failed info sends cancel",
			script: shimtest.Script{recv, send(shimtest.Info("hello")),
				send(shimtest.Result("success"))},
			failInfo: true,
			want:     AuthErr,
			msgs:     []Message{{TextInfo, "hello"}},
			types:    []string{"start", "cancel"},
		},
		{
			name: "answer that is not UTF-8 sends cancel",
			script: shimtest.Script{recv, send(shimtest.Prompt("Code: ", false)), recv,
				send(shimtest.Result("success"))},
			answers: []Answer{Say("12\xff34")},
			want:    AuthErr,
			msgs:    []Message{{PromptEchoOff, "Code: "}},
			types:   []string{"start", "cancel"},
		},
		{
			name: "answer too long sends cancel",
			script: shimtest.Script{recv, send(shimtest.Prompt("Code: ", false)), recv,
				send(shimtest.Result("success"))},
			answers: []Answer{Say(strings.Repeat("9", 2000))},
			want:    AuthErr,
			msgs:    []Message{{PromptEchoOff, "Code: "}},
			types:   []string{"start", "cancel"},
		},
		{
			name:   "session closes before reading",
			script: shimtest.Script{{Close: true}},
			want:   AuthErr,
		},
		{
			name:   "session closes after start",
			script: shimtest.Script{recv, {Close: true}},
			want:   AuthErr, types: []string{"start"},
		},
		{
			name:    "session closes after a prompt",
			script:  shimtest.Script{recv, send(shimtest.Prompt("Code: ", false)), {Close: true}},
			answers: []Answer{Say("1")},
			want:    AuthErr,
			msgs:    []Message{{PromptEchoOff, "Code: "}},
			types:   []string{"start"},
		},
		{
			name:   "result without newline then close",
			script: shimtest.Script{recv, {Raw: shimtest.Result("success")}, {Close: true}},
			want:   AuthErr, types: []string{"start"},
		},
		{
			name:   "oversized line",
			script: shimtest.Script{recv, send(oversize)},
			want:   AuthErr, types: []string{"start", "cancel"},
		},
		{
			name:   "line one byte over the limit",
			script: shimtest.Script{recv, send(infoAt(shimtest.MaxLine + 1)), send(shimtest.Result("success"))},
			want:   AuthErr, types: []string{"start", "cancel"},
		},
		{
			name:   "unknown status",
			script: shimtest.Script{recv, send(shimtest.Result("maybe"))},
			want:   AuthErr, types: []string{"start", "cancel"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, tc.script, true, "")
			out := e.auth(t, Call{Answers: tc.answers, FailInfo: tc.failInfo})
			if out.Code != tc.want {
				t.Errorf("code = %v, want %v\n%s", out.Code, tc.want, out.Stderr)
			}
			if !equalMessages(out.Messages, tc.msgs) {
				t.Errorf("messages = %v, want %v", out.Messages, tc.msgs)
			}
			rec := e.session(t)
			if got := rec.Types(); !equalStrings(got, tc.types) {
				t.Errorf("session received %v, want %v (lines %q)", got, tc.types, rec.Lines)
			}
			var answers []string
			msgs, err := rec.Messages()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if m["type"] == "answer" {
					answers = append(answers, m["text"].(string))
				}
				if m["type"] == "cancel" && len(m) != 1 {
					t.Errorf("cancel carries more than its type: %v", m)
				}
			}
			if !equalStrings(answers, tc.got) {
				t.Errorf("answers = %q, want %q", answers, tc.got)
			}
		})
	}
}

// TestMalformed sends lines the shim must not understand, each in place of a result or
// before one; none may end in PAM_SUCCESS, and each must cancel the session.
func TestMalformed(t *testing.T) {
	t.Parallel()
	lines := []struct{ name, line string }{
		{"not json", "success"},
		{"empty line", ""},
		{"array", `["result","success"]`},
		{"empty object", `{}`},
		{"no type", `{"status":"success"}`},
		{"no status", `{"type":"result"}`},
		{"status not a string", `{"type":"result","status":true}`},
		{"status bare word", `{"type":"result","status":success}`},
		{"status upper case", `{"type":"result","status":"SUCCESS"}`},
		{"status with padding", `{"type":"result","status":"success "}`},
		{"status escaped nul", `{"type":"result","status":"success\u0000"}`},
		{"unknown member", `{"type":"result","status":"success","extra":1}`},
		{"unknown member null", `{"type":"result","status":"success","why":null}`},
		{"member of another type", `{"type":"result","status":"success","text":"x"}`},
		{"duplicate status", `{"type":"result","status":"deny","status":"success"}`},
		{"duplicate type", `{"type":"info","type":"result","status":"success"}`},
		{"trailing garbage", `{"type":"result","status":"success"}x`},
		{"two objects", `{"type":"result","status":"success"}{}`},
		{"trailing comma", `{"type":"result","status":"success",}`},
		{"unterminated", `{"type":"result","status":"success"`},
		{"single quotes", `{'type':'result','status':'success'}`},
		{"unknown type", `{"type":"results","status":"success"}`},
		{"type not a string", `{"type":1,"status":"success"}`},
		{"info with echo", `{"type":"info","text":"a","echo":false}`},
		{"prompt echo not a bool", `{"type":"prompt","echo":"false","text":"a"}`},
		{"prompt echo capitalised", `{"type":"prompt","echo":False,"text":"a"}`},
		{"text number", `{"type":"info","text":5}`},
		{"text with nul", `{"type":"info","text":"a\u0000b"}`},
		{"lone high surrogate", `{"type":"info","text":"\ud83d"}`},
		{"lone low surrogate", `{"type":"info","text":"\ude00"}`},
		{"bad escape", `{"type":"info","text":"\x41"}`},
		{"short unicode escape", `{"type":"info","text":"\u00e"}`},
		{"raw control byte", "{\"type\":\"info\",\"text\":\"a\x01b\"}"},
		{"raw tab", "{\"type\":\"info\",\"text\":\"a\tb\"}"},
		{"invalid utf-8", "{\"type\":\"info\",\"text\":\"a\xffb\"}"},
		{"overlong utf-8", "{\"type\":\"info\",\"text\":\"\xc0\xaf\"}"},
		{"utf-8 surrogate", "{\"type\":\"info\",\"text\":\"\xed\xa0\x80\"}"},
		{"truncated utf-8", "{\"type\":\"info\",\"text\":\"\xe2\x9c\"}"},
		{"key too long", `{"type":"result","statusstatusstatus":"success"}`},
		{"nested object", `{"type":"result","status":{"v":"success"}}`},
	}
	for _, tc := range lines {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, shimtest.Script{recv, {Raw: tc.line + "\n"},
				send(shimtest.Result("success"))}, true, "")
			out := e.auth(t, Call{})
			if out.Code != AuthErr {
				t.Errorf("code = %v, want %v", out.Code, AuthErr)
			}
			if len(out.Messages) != 0 {
				t.Errorf("messages relayed: %+v", out.Messages)
			}
			rec := e.session(t)
			if got := rec.Types(); !equalStrings(got, []string{"start", "cancel"}) {
				t.Errorf("session received %v, want [start cancel]", got)
			}
		})
	}
}

// TestStart checks the start message: every PAM item, escaped so that the session decodes
// exactly what PAM holds.
func TestStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, user, rhost, tty string
	}{
		{name: "plain", user: "alice", rhost: "203.0.113.7", tty: "ssh"},
		{name: "unset items", user: "bob"},
		{name: "quotes and backslashes", user: `a"b\c`, rhost: `"x"`, tty: `\`},
		{name: "control bytes", user: "a\x01b\nc\x1f\x7f", rhost: "r\tr", tty: "\r"},
		{name: "utf-8", user: "josé😀", rhost: "ünï", tty: "ссш"},
		{name: "json-looking", user: `","type":"result","status":"success`, rhost: "}\n{"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, shimtest.Approve(), true, "")
			out := e.auth(t, Call{User: tc.user, RHost: tc.rhost, TTY: tc.tty})
			if out.Code != Success {
				t.Fatalf("code = %v, want success\n%s", out.Code, out.Stderr)
			}
			rec := e.session(t)
			if len(rec.Lines) < 1 {
				t.Fatalf("no start line")
			}
			var start map[string]string
			if err := json.Unmarshal([]byte(rec.Lines[0]), &start); err != nil {
				t.Fatalf("start %q: %v", rec.Lines[0], err)
			}
			want := map[string]string{"type": "start", "user": tc.user, "rhost": tc.rhost,
				"service": "svc", "tty": tc.tty}
			if len(start) != len(want) {
				t.Errorf("start = %q, want %q", start, want)
			}
			for k, v := range want {
				if start[k] != v {
					t.Errorf("start[%s] = %q, want %q", k, start[k], v)
				}
			}
		})
	}
}

// TestRefusedBeforeConnecting covers inputs the shim rejects before it talks to anyone.
func TestRefusedBeforeConnecting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		user string
		args string
	}{
		{name: "user name not UTF-8", user: "al\xffice"},
		{name: "user name too long", user: strings.Repeat("u", 5000)},
		{name: "timeout not a number", args: "timeout=soon"},
		{name: "timeout zero", args: "timeout=0"},
		{name: "timeout too large", args: "timeout=100000"},
		{name: "relative socket", args: "socket=pingid.sock"},
		{name: "relative helper", args: "helper=pingid-ssh"},
		{name: "relative config", args: "config=pingid.conf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, shimtest.Approve(), true, tc.args)
			out := e.auth(t, Call{User: tc.user})
			if out.Code != AuthErr {
				t.Errorf("code = %v, want %v", out.Code, AuthErr)
			}
			if n := len(e.peer.Records()); n != 0 {
				t.Errorf("%d sessions reached the peer", n)
			}
		})
	}
}

func TestUnknownArgumentIgnored(t *testing.T) {
	t.Parallel()
	e := setup(t, shimtest.Approve(), true, "frobnicate=yes debug")
	if out := e.auth(t, Call{}); out.Code != Success {
		t.Errorf("code = %v, want success", out.Code)
	}
}

// TestTimeout: a session that never answers is abandoned at the deadline, cancelled and
// denied.
func TestTimeout(t *testing.T) {
	t.Parallel()
	e := setup(t, shimtest.Script{recv}, true, "timeout=1")
	out := e.auth(t, Call{})
	if out.Code != AuthErr {
		t.Errorf("code = %v, want %v", out.Code, AuthErr)
	}
	rec := e.session(t)
	if got := rec.Types(); !equalStrings(got, []string{"start", "cancel"}) {
		t.Errorf("session received %v, want [start cancel]", got)
	}
	if !rec.HungUp {
		t.Errorf("shim did not hang up")
	}
}

// TestHelper covers the path without a daemon: the shim runs the helper and speaks to it over
// its stdin and stdout.
func TestHelper(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		script  shimtest.Script
		answers []Answer
		args    string
		stale   bool // a socket file exists but nothing listens
		closed  bool // the application runs with stdin and stderr closed
		want    Code
		types   []string
	}{
		{name: "approve", script: shimtest.Approve(), want: Success, types: []string{"start"}},
		{name: "approve with stale socket", script: shimtest.Approve(), stale: true,
			want: Success, types: []string{"start"}},
		{name: "approve with stdin and stderr closed", script: shimtest.Approve(), closed: true,
			want: Success, types: []string{"start"}},
		{name: "deny", script: shimtest.Script{recv, send(shimtest.Result("deny"))},
			want: AuthErr, types: []string{"start"}},
		{name: "ignore", script: shimtest.Script{recv, send(shimtest.Result("ignore"))},
			want: PermDenied, types: []string{"start"}},
		{name: "prompt answered", script: shimtest.Script{recv,
			send(shimtest.Prompt("Code: ", false)), recv, send(shimtest.Result("success"))},
			answers: []Answer{Say("424242")}, want: Success, types: []string{"start", "answer"}},
		{name: "conversation error cancels", script: shimtest.Script{recv,
			send(shimtest.Prompt("Code: ", false)), recv, send(shimtest.Result("success"))},
			answers: []Answer{{Kind: ConvError}}, want: AuthErr,
			types: []string{"start", "cancel"}},
		{name: "helper crashes", script: shimtest.Script{recv, {Exit: 3}},
			want: AuthErr, types: []string{"start"}},
		{name: "helper exits cleanly without a result", script: shimtest.Script{recv, {Close: true}},
			want: AuthErr, types: []string{"start"}},
		{name: "helper never answers", script: shimtest.Script{recv}, args: "timeout=1",
			want: AuthErr, types: []string{"start", "cancel"}},
		{name: "helper sends garbage", script: shimtest.Script{recv, send("{")},
			want: AuthErr, types: []string{"start", "cancel"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, tc.script, false, tc.args)
			if tc.stale {
				ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: e.socket, Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				ln.SetUnlinkOnClose(false)
				ln.Close()
			}
			out := e.auth(t, Call{Answers: tc.answers, CloseStd: tc.closed})
			if out.Code != tc.want {
				t.Errorf("code = %v, want %v\n%s", out.Code, tc.want, out.Stderr)
			}
			rec := e.session(t)
			if got := rec.Types(); !equalStrings(got, tc.types) {
				t.Errorf("helper received %v, want %v", got, tc.types)
			}
			if len(rec.Stdio) != 3 || !strings.HasPrefix(rec.Stdio[0], "socket:") ||
				rec.Stdio[1] != rec.Stdio[0] {
				t.Errorf("helper stdin and stdout are not the shim's socket: %q", rec.Stdio)
			} else if tc.closed && rec.Stdio[2] != "/dev/null" {
				t.Errorf("helper stderr = %q, want /dev/null", rec.Stdio[2])
			} else if !tc.closed && (rec.Stdio[2] == "" || rec.Stdio[2] == rec.Stdio[0]) {
				t.Errorf("helper stderr = %q, want the application's", rec.Stdio[2])
			}
			wantArgs := []string{"pam-helper", "--config", "/nonexistent/pingid.conf"}
			if !equalStrings(rec.Args, wantArgs) {
				t.Errorf("helper args = %q, want %q", rec.Args, wantArgs)
			}
			// The shim passes PATH only; the wrapper script adds its own variable.
			for _, kv := range rec.Env {
				name, _, _ := strings.Cut(kv, "=")
				if name != "PATH" && !strings.HasPrefix(name, "PINGID_SHIMTEST_") && name != "PWD" {
					t.Errorf("helper environment carries %q", kv)
				}
			}
		})
	}
}

// TestHelperUnusable: a helper that is missing or cannot run denies.
func TestHelperUnusable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{name: "missing", setup: func(t *testing.T, path string) {}},
		{name: "not executable", setup: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("#!/bin/sh\nexit 0\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "not a program", setup: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("\x00\x01garbage"), 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			helper := filepath.Join(t.TempDir(), "helper")
			tc.setup(t, helper)
			e := setup(t, nil, false, "helper="+helper)
			if out := e.auth(t, Call{}); out.Code != AuthErr {
				t.Errorf("code = %v, want %v", out.Code, AuthErr)
			}
		})
	}
}

// TestStacks shows how the shim's codes compose with other modules in the stacks operators
// write.
func TestStacks(t *testing.T) {
	t.Parallel()
	stacks := map[string][]string{
		// Debian's common-auth shape: success skips pam_deny.
		"skip deny": {"auth [success=1 default=ignore] SHIM", "auth requisite pam_deny.so",
			"auth required pam_permit.so"},
		// A second factor after others: IGNORE leaves the decision to the other modules.
		"required then permit": {"auth required SHIM", "auth required pam_permit.so"},
		"required then deny":   {"auth required SHIM", "auth required pam_deny.so"},
		"sufficient then deny": {"auth sufficient SHIM", "auth required pam_deny.so"},
	}
	tests := []struct {
		stack  string
		status string
		want   Code
	}{
		{"skip deny", "success", Success},
		{"skip deny", "bypass", Success},
		{"skip deny", "ignore", AuthErr},
		{"skip deny", "deny", AuthErr},
		{"skip deny", "maxtries", AuthErr},
		{"skip deny", "garbage", AuthErr},
		{"required then permit", "success", Success},
		{"required then permit", "ignore", Success},
		{"required then permit", "deny", AuthErr},
		{"required then permit", "maxtries", MaxTries},
		{"required then permit", "garbage", AuthErr},
		{"required then deny", "success", AuthErr},
		{"sufficient then deny", "success", Success},
		{"sufficient then deny", "ignore", AuthErr},
		{"sufficient then deny", "deny", AuthErr},
	}
	for _, tc := range tests {
		t.Run(tc.stack+"/"+tc.status, func(t *testing.T) {
			t.Parallel()
			lines := append([]string(nil), stacks[tc.stack]...)
			e := setup(t, shimtest.Script{recv, send(shimtest.Result(tc.status))}, true, "", lines...)
			if out := e.auth(t, Call{}); out.Code != tc.want {
				t.Errorf("code = %v, want %v", out.Code, tc.want)
			}
		})
	}
}

// TestValgrind runs the paths that handle the most memory under valgrind's memcheck: invalid
// reads or writes, uninitialised values and definite leaks fail the test.
func TestValgrind(t *testing.T) {
	if testing.Short() {
		t.Skip("valgrind is slow; skipped with -short")
	}
	vg, err := exec.LookPath("valgrind")
	if err != nil {
		t.Skip("valgrind not installed")
	}
	wrap := []string{vg, "--quiet", "--error-exitcode=99", "--leak-check=full",
		"--errors-for-leak-kinds=definite", "--child-silent-after-fork=yes"}
	tests := []struct {
		name    string
		script  shimtest.Script
		socket  bool
		args    string
		answers []Answer
		want    Code
	}{
		{name: "prompt and info over socket", socket: true, script: shimtest.Script{recv,
			send(shimtest.Info("Grüße 😀")), send(shimtest.Prompt("Code: ", false)), recv,
			send(shimtest.Result("success"))}, answers: []Answer{Say("a\"\x01é")}, want: Success},
		{name: "malformed", socket: true, script: shimtest.Script{recv,
			send(`{"type":"info","text":"\ud83d"}`)}, want: AuthErr},
		{name: "oversized", socket: true, script: shimtest.Script{recv,
			send(strings.Repeat("{", 3*shimtest.MaxLine))}, want: AuthErr},
		{name: "conversation error", socket: true, script: shimtest.Script{recv,
			send(shimtest.Prompt("Code: ", true)), recv},
			answers: []Answer{{Kind: NullText}}, want: AuthErr},
		{name: "helper", script: shimtest.Script{recv, send(shimtest.Prompt("Code: ", false)),
			recv, send(shimtest.Result("maxtries"))}, answers: []Answer{Say("1")}, want: MaxTries},
		{name: "helper timeout", args: "timeout=1", script: shimtest.Script{recv}, want: AuthErr},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := setup(t, tc.script, tc.socket, tc.args)
			out, err := driver.Authenticate(context.Background(),
				Call{ConfDir: e.confDir, Service: "svc", Answers: tc.answers, Wrap: wrap})
			if err != nil {
				t.Fatalf("%v", err)
			}
			if out.Code != tc.want {
				t.Errorf("code = %v, want %v", out.Code, tc.want)
			}
			if out.Children {
				t.Errorf("child process left behind")
			}
		})
	}
}

func equalMessages(a, b []Message) bool {
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
