//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pingid-ssh/pingid-ssh/pam/shimtest"
)

func TestMain(m *testing.M) {
	shimtest.RunHelperIfRequested()
	os.Exit(m.Run())
}

type step = shimtest.Step

var recv = step{Recv: true}

func send(line string) step { return step{Send: line} }

// TestScriptedLogin proves the harness with scripted sessions: sshd runs the shim, the shim
// reaches the session over the socket or through the helper, and the client sees the prompts.
func TestScriptedLogin(t *testing.T) {
	sb := Enter(t)
	if sb == nil {
		return
	}
	tests := []struct {
		name    string
		script  shimtest.Script
		helper  bool
		timeout int // the shim's timeout=, when not the harness's default
		// mayCancel allows a cancel after types.
		mayCancel bool
		answers   []string
		wantOK    bool
		prompts   []string
		// types are the message types the session received, in order.
		types []string
		// got are the answers the session received.
		got []string
	}{
		{name: "approve over socket", script: shimtest.Approve(), wantOK: true,
			types: []string{"start"}},
		{name: "deny over socket", script: shimtest.Script{recv, send(shimtest.Result("deny"))},
			types: []string{"start"}},
		{name: "prompt and answer over socket", script: shimtest.Script{recv,
			send(shimtest.Info("Offline: challenge 4821 9930 1174")),
			send(shimtest.Prompt("Response code: ", false)), recv,
			send(shimtest.Result("success"))},
			answers: []string{"123456"}, wantOK: true,
			prompts: []string{"Offline: challenge 4821 9930 1174\nResponse code: "},
			types:   []string{"start", "answer"}, got: []string{"123456"}},
		{name: "wrong answer over socket", script: shimtest.Script{recv,
			send(shimtest.Prompt("Response code: ", false)), recv,
			send(shimtest.Result("deny"))},
			answers: []string{"000000"}, prompts: []string{"Response code: "},
			types: []string{"start", "answer"}, got: []string{"000000"}},
		{name: "client gives up at the prompt", script: shimtest.Script{recv,
			send(shimtest.Prompt("Response code: ", false)), recv,
			send(shimtest.Result("success"))},
			prompts: []string{"Response code: "}, types: []string{"start"}, mayCancel: true},
		{name: "session never answers", script: shimtest.Script{recv}, timeout: 1,
			types: []string{"start", "cancel"}},
		{name: "client gives up at the prompt through helper", script: shimtest.Script{recv,
			send(shimtest.Prompt("Response code: ", false)), recv},
			helper: true, prompts: []string{"Response code: "}, types: []string{"start"},
			mayCancel: true},
		{name: "approve through helper", script: shimtest.Approve(), helper: true,
			wantOK: true, types: []string{"start"}},
		{name: "deny through helper", script: shimtest.Script{recv,
			send(shimtest.Result("deny"))}, helper: true, types: []string{"start"}},
		{name: "prompt and answer through helper", script: shimtest.Script{recv,
			send(shimtest.Prompt("Code: ", true)), recv, send(shimtest.Result("success"))},
			helper: true, answers: []string{"777"}, wantOK: true, prompts: []string{"Code: "},
			types: []string{"start", "answer"}, got: []string{"777"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := Harness{Debug: true, Timeout: tc.timeout}
			var peer *shimtest.Peer
			var record string
			if tc.helper {
				h.Helper, record = sb.ScriptedHelper(t, tc.script)
			} else {
				peer = sb.Peer(t, tc.script)
				h.Socket = peer.Path
			}
			srv := sb.Start(t, h)
			res := srv.Login(t, Answers(tc.answers...))
			if res.OK != tc.wantOK {
				t.Errorf("login ok = %v (%v), want %v", res.OK, res.Err, tc.wantOK)
			}
			if got := res.Prompts(); strings.Join(got, "|") != strings.Join(tc.prompts, "|") {
				t.Errorf("prompts = %q, want %q", got, tc.prompts)
			}
			if tc.types == nil {
				return
			}

			var rec shimtest.Record
			if tc.helper {
				var err error
				if rec, err = shimtest.ReadRecord(record); err != nil {
					t.Fatal(err)
				}
				// However the login ended, the helper must not outlive it.
				if !processGone(rec.PID, 30*time.Second) {
					t.Errorf("helper %d still running after the login", rec.PID)
				}
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				recs, err := peer.Wait(ctx, 1)
				if err != nil {
					t.Fatal(err)
				}
				rec = recs[0]
			}
			types, wantTypes := strings.Join(rec.Types(), " "), strings.Join(tc.types, " ")
			// When the client hangs up, sshd kills the PAM process; whether the shim's
			// cancel gets out first is a race.
			if types != wantTypes && !(tc.mayCancel && types == wantTypes+" cancel") {
				t.Errorf("session received %v, want %v", types, wantTypes)
			}
			var start map[string]string
			if err := json.Unmarshal([]byte(rec.Lines[0]), &start); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"type": "start", "user": "root", "rhost": "127.0.0.1",
				"service": "sshd", "tty": "ssh"}
			for k, v := range want {
				if start[k] != v {
					t.Errorf("start[%s] = %q, want %q", k, start[k], v)
				}
			}
			msgs, err := rec.Messages()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range msgs {
				if m["type"] == "answer" {
					got = append(got, m["text"].(string))
				}
			}
			if strings.Join(got, "|") != strings.Join(tc.got, "|") {
				t.Errorf("answers = %q, want %q", got, tc.got)
			}
		})
	}
}

// processGone waits up to limit for pid to exit; a zombie counts as gone.
func processGone(pid int, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		// The state follows the parenthesised command name.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
