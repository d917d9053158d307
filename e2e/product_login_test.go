//go:build e2e

package e2e

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
)

// These tests log in as root through Debian's sshd, the shim, and the real product: the
// `pingid-ssh serve` process, or `pingid-ssh pam-helper` when no daemon listens. The PingID
// simulator is the only stand-in.

// answer says how a client answers the offline prompt.
type answer int

const (
	noPrompt  answer = iota // any question aborts the login
	rightCode               // the code the device computes for the key shown
	wrongCode               // a code that differs from it in every digit
	emptyCode               // an empty answer
	giveUp                  // the client gives up at the prompt
)

// responder answers keyboard-interactive rounds for p as a says, and records whether a
// 12-digit key was shown.
func responder(p *Product, a answer, keyShown *bool) Responder {
	var mu sync.Mutex
	var seen []string
	return func(r Round) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.Name, r.Instruction)
		seen = append(seen, r.Questions...)
		code, ok := p.Code(seen...)
		if ok {
			*keyShown = true
		}
		out := make([]string, 0, len(r.Questions))
		for range r.Questions {
			switch {
			case a == emptyCode:
				out = append(out, "")
			case a == giveUp:
				return nil, errors.New("the user gives up")
			case !ok || a == noPrompt:
				return nil, errors.New("unexpected question")
			case a == wrongCode:
				out = append(out, otherCode(code))
			default:
				out = append(out, code)
			}
		}
		return out, nil
	}
}

// switchMode renames a config with over into place and waits until the daemon serves it.
func switchMode(t *testing.T, p *Product, d *Daemon, over map[string]string) {
	t.Helper()
	want := `"fail_mode":"` + over["fail_mode"] + `"`
	n := d.Count(`"event":"configuration_active"`, want)
	p.WriteConfig(t, over)
	d.WaitCount(t, n+1, `"event":"configuration_active"`, want)
}

// setService switches the simulator up or down (connections refused).
func setService(t *testing.T, p *Product, down bool) {
	t.Helper()
	f := pingidtest.FaultNone
	if down {
		f = pingidtest.FaultRefuse
	}
	if err := p.Sim.SetFault("", f); err != nil {
		t.Fatal(err)
	}
}

// offlineStatus runs `pingid-ssh offline status` for root and returns its output.
func offlineStatus(t *testing.T, p *Product) string {
	t.Helper()
	cmd := exec.Command(p.Bin, "offline", "status", "--config", p.ConfigPath, "--user",
		"root", "--json")
	cmd.Env = Env()
	out, _ := cmd.CombinedOutput()
	return string(out)
}

type loginCase struct {
	name   string
	mode   string
	down   bool
	over   map[string]string
	answer answer
	wantOK bool
	// key says the offline key must (or must not) be shown.
	key bool
}

// run logs in through srv and checks the outcome.
func (tc loginCase) run(t *testing.T, p *Product, srv *Server) LoginResult {
	t.Helper()
	var shown bool
	res := srv.Login(t, responder(p, tc.answer, &shown))
	if res.OK != tc.wantOK {
		t.Errorf("login ok = %v (%v), want %v; prompts %q", res.OK, res.Err, tc.wantOK,
			res.Prompts())
	}
	if shown != tc.key {
		t.Errorf("offline key shown = %v, want %v; prompts %q", shown, tc.key, res.Prompts())
	}
	return res
}

// TestFailModes logs in through sshd and the daemon in each fail mode with the service up
// and down. The device file comes from the first approved push.
func TestFailModes(t *testing.T) {
	sb := Enter(t)
	if sb == nil {
		return
	}
	p := NewProduct(t, filepath.Join(sb.Dir, "p"), BuildBinary(t), nil)
	d := p.StartDaemon(t)
	srv := sb.Start(t, Harness{Socket: p.SocketPath, Helper: p.Bin, Config: p.ConfigPath,
		Debug: true})

	const (
		restrictive = "restrictive"
		passive     = "passive_offline_authentication"
		enforce     = "enforce_offline_authentication"
		permissive  = "permissive"
	)
	tests := []loginCase{
		// Service up. The first approved push stores the device file.
		{name: "restrictive up push approved", mode: restrictive, wantOK: true},
		{name: "restrictive up push rejected", mode: restrictive,
			over: map[string]string{"domain_postfix": RejectPostfix}},
		{name: "passive up push approved", mode: passive, wantOK: true},
		{name: "passive up push rejected", mode: passive,
			over: map[string]string{"domain_postfix": RejectPostfix}},
		{name: "permissive up push approved", mode: permissive, wantOK: true},
		{name: "permissive up push rejected", mode: permissive,
			over: map[string]string{"domain_postfix": RejectPostfix}},
		{name: "enforce up right code", mode: enforce, answer: rightCode, wantOK: true,
			key: true},
		{name: "enforce up wrong code", mode: enforce, answer: wrongCode, key: true},

		// Service down: connections to it are refused.
		{name: "restrictive down", mode: restrictive, down: true},
		{name: "passive down right code", mode: passive, down: true, answer: rightCode,
			wantOK: true, key: true},
		{name: "passive down wrong code", mode: passive, down: true, answer: wrongCode,
			key: true},
		{name: "passive down empty answer", mode: passive, down: true, answer: emptyCode,
			key: true},
		{name: "enforce down right code", mode: enforce, down: true, answer: rightCode,
			wantOK: true, key: true},
		{name: "enforce down wrong code", mode: enforce, down: true, answer: wrongCode,
			key: true},
		{name: "permissive down bypass", mode: permissive, down: true, wantOK: true},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			over := map[string]string{"fail_mode": tc.mode}
			for k, v := range tc.over {
				over[k] = v
			}
			setService(t, p, tc.down)
			switchMode(t, p, d, over)
			bypasses := d.Count(`"fail_open":true`)
			tc.run(t, p, srv)
			if i == 0 && !strings.Contains(offlineStatus(t, p), `"status":"ready"`) {
				t.Fatalf("no device file after an approved push: %s", offlineStatus(t, p))
			}
			if tc.mode == permissive && tc.down {
				d.WaitCount(t, bypasses+1, `"fail_open":true`, `"result":"bypass"`)
			}
		})
	}
	if n := d.Count(`"fail_open":true`); n != 1 {
		t.Errorf("%d fail-open events, want 1 (the permissive bypass)", n)
	}
}

// TestHelperLogins stops the daemon: the shim then runs `pingid-ssh pam-helper`, which
// loads the config itself for each login.
func TestHelperLogins(t *testing.T) {
	sb := Enter(t)
	if sb == nil {
		return
	}
	p := NewProduct(t, filepath.Join(sb.Dir, "p"), BuildBinary(t), nil)
	srv := sb.Start(t, Harness{Socket: p.SocketPath, Helper: p.Bin, Config: p.ConfigPath,
		Debug: true})

	tests := []loginCase{
		{name: "restrictive up push approved", mode: "restrictive", wantOK: true},
		{name: "restrictive up push rejected", mode: "restrictive",
			over: map[string]string{"domain_postfix": RejectPostfix}},
		{name: "restrictive down", mode: "restrictive", down: true},
		{name: "passive down right code", mode: "passive_offline_authentication",
			down: true, answer: rightCode, wantOK: true, key: true},
		{name: "passive down wrong code", mode: "passive_offline_authentication",
			down: true, answer: wrongCode, key: true},
		{name: "permissive down bypass", mode: "permissive", down: true, wantOK: true},
		{name: "broken config denies", mode: "permissive", down: true,
			over: map[string]string{"max_prompts": "many"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			over := map[string]string{"fail_mode": tc.mode}
			for k, v := range tc.over {
				over[k] = v
			}
			setService(t, p, tc.down)
			p.WriteConfig(t, over)
			before := strings.Count(srv.Log(), `"event":"login"`)
			tc.run(t, p, srv)
			// The helper logs its login event to sshd's stderr; a load failure logs one too.
			if !waitUntil(10*time.Second, func() bool {
				return strings.Count(srv.Log(), `"event":"login"`) > before
			}) {
				t.Errorf("no login event from the helper in sshd's log")
			}
		})
	}
}

// TestConversationErrors checks that a client that gives up at the prompt, or answers
// nothing, never gets in, under a "required" stack and under the
// "[success=1 default=ignore]" idiom, through the daemon and through the helper.
func TestConversationErrors(t *testing.T) {
	sb := Enter(t)
	if sb == nil {
		return
	}
	p := NewProduct(t, filepath.Join(sb.Dir, "p"), BuildBinary(t),
		map[string]string{"fail_mode": "enforce_offline_authentication"})
	// Device file for the offline prompt, from an approved push through the helper.
	p.WriteConfig(t, map[string]string{"fail_mode": "restrictive"})
	enrol := sb.Start(t, Harness{Socket: p.SocketPath, Helper: p.Bin, Config: p.ConfigPath})
	loginCase{mode: "restrictive", wantOK: true}.run(t, p, enrol)
	p.WriteConfig(t, map[string]string{"fail_mode": "enforce_offline_authentication"})
	p.StartDaemon(t)

	stacks := []struct {
		name string
		auth []string
	}{
		{name: "required", auth: []string{"auth required SHIM"}},
		{name: "success=1", auth: []string{"auth [success=1 default=ignore] SHIM",
			"auth requisite pam_deny.so", "auth required pam_permit.so"}},
	}
	answers := []loginCase{
		{name: "gives up at the prompt", answer: giveUp, key: true},
		{name: "empty answer", answer: emptyCode, key: true},
		{name: "wrong code", answer: wrongCode, key: true},
		{name: "right code", answer: rightCode, key: true, wantOK: true},
	}
	for _, st := range stacks {
		for _, helper := range []bool{false, true} {
			h := Harness{Socket: p.SocketPath, Helper: p.Bin, Config: p.ConfigPath,
				Auth: st.auth}
			via := "daemon"
			if helper {
				h.Socket = filepath.Join(sb.Dir, "no-daemon.sock")
				via = "helper"
			}
			t.Run(st.name+" "+via, func(t *testing.T) {
				srv := sb.Start(t, h)
				for _, tc := range answers {
					t.Run(tc.name, func(t *testing.T) { tc.run(t, p, srv) })
				}
			})
		}
	}
}
