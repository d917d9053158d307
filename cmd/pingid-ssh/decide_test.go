package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// want is the design's fail-mode table, written out independently of the policy:
// want[fail mode][service][file ready][phase].
func wantAction(failMode, class, status, phase string) string {
	ready := status == "ready"
	up := class == "ok"
	transport := !up && class != "tls_verify" && class != "http_401" && class != "http_4xx"
	switch failMode {
	case "restrictive":
		if up && phase == "probe" {
			return "online"
		}
	case "passive_offline_authentication":
		if up && phase == "probe" {
			return "online"
		}
		if !up && ready {
			return "offline"
		}
	case "enforce_offline_authentication":
		if ready {
			return "offline"
		}
	case "permissive":
		if up && phase == "probe" {
			return "online"
		}
		if transport && phase == "probe" {
			return "bypass"
		}
	}
	return "deny"
}

func TestDecideInputCoversTheTable(t *testing.T) {
	dir := t.TempDir()
	classes := []string{"ok", "dns", "connect_refused", "connect_timeout", "tls_handshake",
		"tls_verify", "read_timeout", "http_5xx", "http_429", "http_401", "http_4xx",
		"malformed", "proxy"}
	statuses := []string{"ready", "missing", "corrupt", "insecure", "foreign", "locked_out",
		"no_key", "unreadable"}
	modes := []string{"restrictive", "passive_offline_authentication",
		"enforce_offline_authentication", "permissive"}
	n := 0
	for _, mode := range modes {
		for _, class := range classes {
			for _, status := range statuses {
				for _, phase := range []string{"probe", "challenge"} {
					in := fmt.Sprintf(`{"fail_mode": %q, "phase": %q,
						"user": {"name": "alice", "exists": true, "groups": []},
						"request": {"service": "sshd", "rhost": "203.0.113.7", "tty": "ssh"},
						"online": {"class": %q}, "offline": {"status": %q, "devices": 1}}`,
						mode, phase, class, status)
					got := decideAction(t, dir, in)
					if want := wantAction(mode, class, status, phase); got != want {
						t.Errorf("%s %s %s %s: got %s, want %s", mode, class, status, phase,
							got, want)
					}
					n++
				}
			}
		}
	}
	if n != 832 {
		t.Fatalf("ran %d cases, want 832", n)
	}
}

func decideAction(t *testing.T, dir, input string) string {
	t.Helper()
	code, stdout, stderr := runCmd(t, input, nil, "decide", "--policy-dir", dir, "--input", "-",
		"--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var d struct {
		Action  string   `json:"action"`
		Reasons []string `json:"reasons"`
	}
	if err := json.Unmarshal([]byte(stdout), &d); err != nil {
		t.Fatalf("output %q: %v", stdout, err)
	}
	return d.Action
}

func TestDecideDeniesUnknownMissingOrMistyped(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, input string }{
		{"empty object", `{}`},
		{"unknown fail mode", `{"fail_mode": "open", "phase": "probe", "user": {"name": "a"},
			"online": {"class": "dns"}, "offline": {"status": "ready"}}`},
		{"unknown class", `{"fail_mode": "permissive", "phase": "probe", "user": {"name": "a"},
			"online": {"class": "gone"}, "offline": {"status": "ready"}}`},
		{"mistyped class", `{"fail_mode": "permissive", "phase": "probe", "user": {"name": "a"},
			"online": {"class": 5}, "offline": {"status": "ready"}}`},
		{"missing phase", `{"fail_mode": "permissive", "user": {"name": "a"},
			"online": {"class": "dns"}, "offline": {"status": "ready"}}`},
		{"array", `[1, 2, 3]`},
		{"null", `null`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideAction(t, dir, tc.input); got != "deny" {
				t.Fatalf("got %s", got)
			}
		})
	}
}

func TestDecideRejectsMalformedFiles(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ name, content, want string }{
		{"not json", `{"fail_mode": `, "not valid JSON"},
		{"two documents", `{} {}`, "more than one JSON value"},
		{"empty", ``, "not valid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "in.json")
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := runCmd(t, "", nil, "decide", "--policy-dir", dir, "--input", p)
			if code != 2 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, p) {
				t.Fatalf("code %d, stderr %q", code, stderr)
			}
		})
	}
	code, _, stderr := runCmd(t, "", nil, "decide", "--input", filepath.Join(dir, "none"))
	if code != 2 || !strings.Contains(stderr, "no such file") {
		t.Fatalf("missing file: code %d, stderr %q", code, stderr)
	}
}

func TestBrokenOverrideStillAnswersDeny(t *testing.T) {
	tests := []struct{ name, text, where string }{
		{"syntax error", "package pingid.overrides\n\naction := \n", "broken.rego:4"},
		{"conflicting rule", "package pingid.overrides\n\ndeny := true\n\ndeny contains \"x\"\n",
			"broken.rego:"},
		{"forbidden built-in", "package pingid.overrides\n\ndeny contains \"x\" if {\n" +
			"\tnet.lookup_ip_addr(\"localhost\")\n}\n", "broken.rego:4"},
	}
	in := `{"fail_mode": "permissive", "phase": "probe", "user": {"name": "a"},
		"online": {"class": "dns"}, "offline": {"status": "ready"}}`
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "broken.rego")
			if err := os.WriteFile(p, []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}

			code, _, stderr := runCmd(t, "", insecure, "policy", "check", "--policy-dir", dir)
			if code != 1 || !strings.Contains(stderr, tc.where) {
				t.Fatalf("policy check: code %d, stderr %q, want %s", code, stderr, tc.where)
			}

			code, stdout, stderr := runCmd(t, in, insecure, "decide", "--policy-dir", dir,
				"--input", "-", "--json")
			if code != 0 || !strings.Contains(stdout, `"action":"deny"`) ||
				!strings.Contains(stdout, "no_policy") {
				t.Fatalf("decide: code %d, stdout %q, stderr %q", code, stdout, stderr)
			}
		})
	}
}

func TestPolicyCheckFindsClashingOverrides(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"a.rego": "package pingid.overrides\n\naction := \"offline\" if \"dev\" in input.user.groups\n",
		"b.rego": "package pingid.overrides\n\naction := \"deny\" if input.user.name == \"alice\"\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Both rules apply only to a user named alice in group dev, whom no login of the
	// sweep is, so no clash shows yet.
	code, _, _ := runCmd(t, "", insecure, "policy", "check", "--policy-dir", dir)
	if code != 0 {
		t.Fatalf("no clash on the sweep's users, got exit %d", code)
	}

	clash := "package pingid.overrides\n\naction := \"online\" if \"wheel\" in input.user.groups\n"
	if err := os.WriteFile(filepath.Join(dir, "d.rego"), []byte(clash), 0o600); err != nil {
		t.Fatal(err)
	}
	clash2 := "package pingid.overrides\n\naction := \"deny\" if input.user.name == \"root\"\n"
	if err := os.WriteFile(filepath.Join(dir, "e.rego"), []byte(clash2), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "", insecure, "policy", "check", "--policy-dir", dir)
	if code != 1 || !strings.Contains(stderr, "eval_error") || !strings.Contains(stderr, "root") {
		t.Fatalf("clash: code %d, stderr %q", code, stderr)
	}
}

func TestPolicyTestRunsTheExamples(t *testing.T) {
	code, stdout, stderr := runCmd(t, "", nil, "policy", "test", "../../examples/overrides")
	if code != 0 || !strings.Contains(stdout, " passed, 0 failed") {
		t.Fatalf("code %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	dir := t.TempDir()
	failing := "package x_test\n\nimport data.pingid.failmode\n\ntest_wrong if {\n" +
		"\tfailmode.decision.action == \"bypass\" with input as {}\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "x_test.rego"), []byte(failing), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCmd(t, "", nil, "policy", "test", dir)
	if code != 1 || !strings.Contains(stdout, "FAIL data.x_test.test_wrong") ||
		!strings.Contains(stdout, "0 passed, 1 failed") {
		t.Fatalf("failing test: code %d, stdout %q", code, stdout)
	}
}
