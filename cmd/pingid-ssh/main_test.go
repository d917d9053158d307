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
