package engine

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// maxLiterals bounds how many of the overrides' strings Sweep tries as names.
const maxLiterals = 32

// The fixed part of the grid Sweep evaluates: every fail mode, representative classes and
// device-file states, both phases, a few kinds of user and of request.
var (
	sweepFailModes = []string{"restrictive", "passive_offline_authentication",
		"enforce_offline_authentication", "permissive"}
	sweepClasses  = []string{"ok", "connect_timeout", "http_5xx", "tls_verify", "http_401"}
	sweepStatuses = []string{"ready", "missing", "locked_out"}
	sweepUsers    = []User{
		{Name: "alice", Exists: true, Groups: []string{"users"}},
		{Name: "root", Exists: true, Groups: []string{"root", "wheel"}},
		{Name: "contractor", Exists: true, Groups: []string{"contractors"}},
		{Name: "ghost", Exists: false, Groups: []string{}},
	}
	sweepRequests = []Request{
		{Service: "sshd", RHost: "203.0.113.7", TTY: "ssh"},
		{Service: "login", TTY: "tty1"},
	}
)

// Report is what Sweep found: Problems make a policy unusable for some login (an
// evaluation error, an override of the wrong shape); Warnings are worth a look (a bypass
// while the PingID service is up).
type Report struct {
	Problems []string
	Warnings []string
}

// Sweep evaluates the engine's policy over a grid of logins and reports each distinct
// problem once. Compiling cannot catch everything: two overrides that choose different
// actions clash only when both apply. Besides the fixed grid, every string in the
// overrides is tried as a user name, a group and, when it is an address, a remote host,
// so that rules keyed on those values are reached.
func Sweep(ctx context.Context, e *Engine) Report {
	var rep Report
	seen := map[string]bool{}
	note := func(list *[]string, msg string, in *Input) {
		if seen[msg] {
			return
		}
		seen[msg] = true
		*list = append(*list, fmt.Sprintf("%s (user %s, groups %v, rhost %q, fail_mode %s, "+
			"class %s, file %s, phase %s)", msg, in.User.Name, in.User.Groups,
			in.Request.RHost, in.FailMode, in.Online.Class, in.Offline.Status, in.Phase))
	}
	for _, in := range grid(e.Set()) {
		d := e.Decide(ctx, in)
		switch {
		case d.Failure != "":
			note(&rep.Problems, strings.Join(d.Reasons, "; "), in)
		case malformedOverride(d):
			note(&rep.Problems, strings.Join(d.Reasons, "; "), in)
		case d.Action == Bypass && in.Online.Class == "ok":
			note(&rep.Warnings, "bypass while the PingID service is up", in)
		}
	}
	return rep
}

// malformedOverride reports a deny caused by an override of the wrong shape, which the
// policy turns into a deny for every login it touches.
func malformedOverride(d Decision) bool {
	for _, r := range d.Reasons {
		if strings.HasPrefix(r, "override: action ") && strings.Contains(r, "is not one of") ||
			strings.HasPrefix(r, "override: deny must be") {
			return true
		}
	}
	return false
}

// grid lists the logins Sweep evaluates.
func grid(set *Set) []*Input {
	users := append([]User(nil), sweepUsers...)
	requests := append([]Request(nil), sweepRequests...)
	if set != nil {
		for _, lit := range set.literals {
			users = append(users, User{Name: lit, Exists: true, Groups: []string{lit}})
			if host, ok := hostOf(lit); ok {
				requests = append(requests, Request{Service: "sshd", RHost: host, TTY: "ssh"})
			}
		}
	}

	now := time.Now().UTC()
	var out []*Input
	for _, fm := range sweepFailModes {
		for _, class := range sweepClasses {
			for _, status := range sweepStatuses {
				for _, phase := range []Phase{PhaseProbe, PhaseChallenge} {
					for _, u := range users {
						for _, r := range requests {
							out = append(out, &Input{FailMode: fm, Phase: phase, User: u,
								Request: r, Online: Service{Class: class},
								Offline: DeviceFile{Status: status, Devices: 1}, Time: now})
						}
					}
				}
			}
		}
	}
	return out
}

// hostOf reads a literal as an address, or the first address of a prefix.
func hostOf(lit string) (string, bool) {
	if a, err := netip.ParseAddr(lit); err == nil {
		return a.String(), true
	}
	if p, err := netip.ParsePrefix(lit); err == nil {
		return p.Masked().Addr().String(), true
	}
	return "", false
}

// literals collects the distinct short strings of every module but the base policy.
func literals(mods map[string]*ast.Module, base string) []string {
	set := map[string]bool{}
	for name, mod := range mods {
		if name == base {
			continue
		}
		ast.WalkTerms(mod, func(t *ast.Term) bool {
			if s, ok := t.Value.(ast.String); ok && len(s) > 0 && len(s) <= 64 {
				set[string(s)] = true
			}
			return false
		})
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	if len(out) > maxLiterals {
		out = out[:maxLiterals]
	}
	return out
}
