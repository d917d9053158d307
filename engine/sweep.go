package engine

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// sweepClasses and sweepStatuses are representative values; together with every fail
// mode, both phases and a few kinds of user they make the grid Sweep evaluates.
var (
	sweepFailModes = []string{"restrictive", "passive_offline_authentication",
		"enforce_offline_authentication", "permissive"}
	sweepClasses  = []string{"ok", "connect_timeout", "http_5xx", "tls_verify", "http_401"}
	sweepStatuses = []string{"ready", "missing", "locked_out"}
	sweepUsers    = []User{
		{Name: "alice", Exists: true, Groups: []string{"users"}},
		{Name: "root", Exists: true, Groups: []string{"root", "wheel"}},
		{Name: "contractor", Exists: true, Groups: []string{"contractors"}},
		{Name: "ghost", Exists: false},
	}
	sweepRequests = []Request{
		{Service: "sshd", RHost: "203.0.113.7", TTY: "ssh"},
		{Service: "login", TTY: "tty1"},
	}
)

// Sweep evaluates the engine's policy over a grid of logins and returns one line for each
// distinct evaluation failure. Compiling cannot catch everything: two overrides that
// choose different actions only clash when both apply.
func Sweep(ctx context.Context, e *Engine) []string {
	seen := map[string]bool{}
	var out []string
	now := time.Now().UTC()
	for _, fm := range sweepFailModes {
		for _, class := range sweepClasses {
			for _, status := range sweepStatuses {
				for _, phase := range []Phase{PhaseProbe, PhaseChallenge} {
					for _, u := range sweepUsers {
						for _, r := range sweepRequests {
							in := &Input{FailMode: fm, Phase: phase, User: u, Request: r,
								Online:  Service{Class: class},
								Offline: DeviceFile{Status: status, Devices: 1}, Time: now}
							d := e.Decide(ctx, in)
							if d.Failure == "" {
								continue
							}
							msg := strings.Join(d.Reasons, "; ")
							if !seen[msg] {
								seen[msg] = true
								out = append(out, fmt.Sprintf("%s (user %s, fail_mode %s, "+
									"class %s, file %s, phase %s)", msg, u.Name, fm, class,
									status, phase))
							}
						}
					}
				}
			}
		}
	}
	return out
}
