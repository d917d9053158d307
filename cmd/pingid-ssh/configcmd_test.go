package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	props := filepath.Join(dir, "pingid.properties")
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	// The idp_url is only parsed, never contacted.
	if err := os.WriteFile(props, []byte("use_base64_key="+key+"\ntoken=t0ken\n"+
		"idp_url=https://127.0.0.1:9/pingid\norg_alias=org\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "pingid.conf")
	if err := os.WriteFile(conf, []byte("pingid_properties_file = "+props+"\n"),
		0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"valid", []string{"check", "--config", conf}, 0, conf + ": ok (fail_mode ", ""},
		{"no sub-command", nil, 2, "", "usage: pingid-ssh config check"},
		{"unknown sub-command", []string{"lint"}, 2, "", "usage: pingid-ssh config check"},
		{"extra argument", []string{"check", "extra-arg"}, 2, "",
			`unexpected argument "extra-arg"`},
		{"extra argument after the flag", []string{"check", "--config", conf, "extra-arg"}, 2,
			"", `unexpected argument "extra-arg"`},
		{"unknown flag", []string{"check", "--frob"}, 2, "", "frob"},
		{"missing file", []string{"check", "--config", filepath.Join(dir, "none.conf")}, 1,
			"", "none.conf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "", insecure, append([]string{"config"},
				tt.args...)...)
			if code != tt.code || !strings.HasPrefix(stdout, tt.stdout) ||
				(tt.stdout == "" && stdout != "") || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, stdout,
					stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

func TestMissingPolicyDirIsAWarning(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "pingid.conf")
	text := "policy_dir = " + filepath.Join(dir, "polciy.d") + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "", insecure, "policy", "check", "--config", conf)
	if code != 0 || !strings.Contains(stderr, "polciy.d does not exist: no overrides apply") {
		t.Fatalf("policy check: exit %d, stderr %q", code, stderr)
	}
}
