package main

import (
	"bytes"
	"strings"
	"testing"
)

// runCmd runs the command line in-process and returns exit code, stdout and stderr.
func runCmd(t *testing.T, stdin string, getenv map[string]string, args ...string) (int, string,
	string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errOut,
		getenv: func(k string) string { return getenv[k] },
	}
	code := run(e, args)
	return code, out.String(), errOut.String()
}

// insecure lets tests use files they own in temporary directories.
var insecure = map[string]string{insecureEnv: "1"}

func TestUnknownCommand(t *testing.T) {
	code, _, stderr := runCmd(t, "", nil, "frobnicate")
	if code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Fatalf("code %d, stderr %q", code, stderr)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		toStdout bool
	}{
		{"no arguments", nil, 2, false},
		{"help", []string{"help"}, 0, true},
		{"--help", []string{"--help"}, 0, true},
		{"-h", []string{"-h"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "", nil, tt.args...)
			got, other := stderr, stdout
			if tt.toStdout {
				got, other = stdout, stderr
			}
			if code != tt.wantCode || !strings.HasPrefix(got, "usage: pingid-ssh COMMAND") ||
				other != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
			for name := range commands {
				if !strings.Contains(got, "  "+name+" ") {
					t.Errorf("usage does not list %q", name)
				}
			}
		})
	}
}

func TestSubcommandHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"serve", "-h"}, {"login", "--help"}, {"decide", "-h"},
		{"probe", "-h"}, {"pam-helper", "-h"}, {"simulate", "-h"}, {"policy", "check", "-h"},
		{"config", "check", "-h"}, {"offline", "status", "-h"}, {"offline", "respond", "-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			if code, _, stderr := runCmd(t, "", nil, args...); code != 0 ||
				!strings.Contains(stderr, "Usage") {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
		})
	}
	if code, _, _ := runCmd(t, "", nil, "serve", "--no-such-flag"); code != 2 {
		t.Fatalf("a wrong flag exits %d, want 2", code)
	}
}
