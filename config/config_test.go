package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseValues(t *testing.T) {
	text := `# comment
fail_mode = passive_offline_authentication
verbose = true
connect_timeout = 1500ms
probe_interval = 10
auth_timeout = "100s"
offline_devices_path = /var/lib/x/${username}/.localFallbackDevices
max_prompts = 3
domain_postfix = @example.com
offline_lockout = 1h
`
	cfg, diags, err := Parse("t.conf", strings.NewReader(text))
	if err != nil || len(diags) != 0 {
		t.Fatalf("err %v, diags %v", err, diags)
	}
	if cfg.FailMode != PassiveOffline || !cfg.Verbose || cfg.ConnectTimeout != 1500*time.Millisecond ||
		cfg.ProbeInterval != 10*time.Second || cfg.AuthTimeout != 100*time.Second ||
		cfg.MaxPrompts != 3 || cfg.OfflineLockout != time.Hour {
		t.Fatalf("got %+v", cfg)
	}
	if got := cfg.PingIDUser("alice"); got != "alice@example.com" {
		t.Fatalf("PingIDUser = %q", got)
	}
	if cfg.StateDir != Default().StateDir {
		t.Fatal("unset keys must keep their defaults")
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"unknown fail mode", "fail_mode = open", "t.conf:1: error: fail_mode"},
		{"no equals", "\n\nfail_mode restrictive", "t.conf:3: error: expected key = value"},
		{"bad bool", "verbose = maybe", "t.conf:1: error: verbose"},
		{"bad duration", "connect_timeout = soon", "t.conf:1: error: connect_timeout"},
		{"negative duration", "auth_timeout = -5s", "t.conf:1: error: auth_timeout"},
		{"out of range", "max_prompts = 11", "t.conf:1: error: max_prompts"},
		{"relative path", "state_dir = var/lib", "t.conf:1: error: state_dir"},
		{"no template", "offline_devices_path = /var/lib/devices", "${username}"},
		{"timeouts crossed", "connect_timeout = 60s\nauth_timeout = 30s", "shorter than"},
		{"slash in postfix", "domain_postfix = a/b", "t.conf:1: error: domain_postfix"},
		{"control in path", "log_file = /var/log/a\x01b", "control characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := Parse("t.conf", strings.NewReader(tc.text))
			var cerr *Error
			if cfg != nil || !errors.As(err, &cerr) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("cfg %v, err %v; want an *Error naming %q", cfg, err, tc.want)
			}
		})
	}
}

func TestParseReportsEveryError(t *testing.T) {
	_, diags, err := Parse("t.conf", strings.NewReader(
		"fail_mode = x\nverbose = y\nmystery = 1\nmax_prompts = 0\n"))
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Diagnostics) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	warnings := 0
	for _, d := range diags {
		if d.Severity == Warning && d.Line == 3 && strings.Contains(d.Msg, "mystery") {
			warnings++
		}
	}
	if warnings != 1 {
		t.Fatalf("unknown key must be one warning at line 3: %v", diags)
	}
}

func TestUnknownKeyIsAWarningOnly(t *testing.T) {
	cfg, diags, err := Parse("t.conf", strings.NewReader("colour = blue\n"))
	if err != nil || cfg == nil || len(diags) != 1 || diags[0].Severity != Warning {
		t.Fatalf("cfg %v diags %v err %v", cfg, diags, err)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want time.Duration
		ok   bool
	}{
		{"bare seconds", "5", 5 * time.Second, true},
		{"fraction", "1.5", 1500 * time.Millisecond, true},
		{"go syntax", "250ms", 250 * time.Millisecond, true},
		{"minutes", "15m", 15 * time.Minute, true},
		{"empty", "", 0, false},
		{"words", "five", 0, false},
		{"negative bare", "-1", 0, false},
		{"huge", "1e300", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("got %v, %v", got, err)
			}
		})
	}
}

func TestCheckUserName(t *testing.T) {
	tests := []struct {
		name, user string
		ok         bool
	}{
		{"plain", "alice", true},
		{"with dot and at", "a.b@example.com", true},
		{"utf8", "zoë", true},
		{"empty", "", false},
		{"slash", "a/b", false},
		{"dotdot", "..", false},
		{"embedded dotdot", "a..b", false},
		{"newline", "a\nb", false},
		{"nul", "a\x00b", false},
		{"c1 control", "a\u009bb", false},
		{"bidi override", "a\u202eb", false},
		{"dash first", "-oProxyCommand", false},
		{"invalid utf8", "a\xffb", false},
		{"too long", strings.Repeat("a", MaxUserNameLen+1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckUserName(tc.user)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrUnsafeUserName)) {
				t.Fatalf("got %v", err)
			}
		})
	}
	cfg := Default()
	if _, err := cfg.DevicesPath("../root"); err == nil {
		t.Fatal("DevicesPath accepted a traversal")
	}
	p, err := cfg.DevicesPath("alice")
	if err != nil || p != "/var/lib/pingid/devices/alice/.localFallbackDevices" {
		t.Fatalf("got %q, %v", p, err)
	}
}

func TestLoadChecksOwnerAndMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pingid.conf")
	if err := os.WriteFile(path, []byte("fail_mode = permissive\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(path, LoadOptions{AllowInsecure: true}); err != nil {
		t.Fatalf("insecure allowed: %v", err)
	}

	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	_, _, err := Load(path, LoadOptions{})
	if !errors.Is(err, ErrInsecureFile) || !strings.Contains(err.Error(), path) {
		t.Fatalf("world-writable file: err = %v", err)
	}

	if os.Geteuid() == 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		_, _, err := Load(path, LoadOptions{})
		if !errors.Is(err, ErrInsecureFile) || !strings.Contains(err.Error(), "uid 65534") {
			t.Fatalf("file of another user: err = %v", err)
		}
	}

	if _, _, err := Load(dir, LoadOptions{AllowInsecure: true}); err == nil ||
		!strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("directory: err = %v", err)
	}
	if _, _, err := Load(filepath.Join(dir, "none"), LoadOptions{}); !os.IsNotExist(
		errors.Unwrap(err)) && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: err = %v", err)
	}
}

func TestTheShippedExampleIsValid(t *testing.T) {
	f, err := os.Open("../deploy/pingid.conf.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, diags, err := Parse("pingid.conf.example", f)
	if err != nil || len(diags) != 0 {
		t.Fatalf("err %v diags %v", err, diags)
	}
	if *cfg != func() Config { c := Default(); c.Path = cfg.Path; return c }() {
		t.Fatalf("the example must show the defaults:\n%+v\n%+v", *cfg, Default())
	}
}

func TestParseProperties(t *testing.T) {
	good := "# from the admin portal\nuse_base64_key=MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=\n" +
		"use_signature=true\ntoken=abc\\\n  def\nidp_url=https\\://idp.example.com/pingid/\n" +
		"org_alias=org-1\nadmin_url: https://admin.example.com\n"
	p, diags, err := ParseProperties("p", strings.NewReader(good))
	if err != nil || len(diags) != 0 {
		t.Fatalf("err %v diags %v", err, diags)
	}
	if len(p.Key) != 32 || p.Token != "abcdef" || p.IDPURL != "https://idp.example.com/pingid" ||
		p.OrgAlias != "org-1" || p.AdminURL != "https://admin.example.com" {
		t.Fatalf("got %+v", p)
	}
	if s := p.String(); strings.Contains(s, "abcdef") {
		t.Fatalf("String leaks the token: %s", s)
	}

	tests := []struct{ name, text, want string }{
		{"missing token", strings.Replace(good, "token=abc\\\n  def\n", "", 1), "token is missing"},
		{"bad key", strings.Replace(good, "MTIz", "!!!!", 1), "use_base64_key: not valid base64"},
		{"http url", strings.Replace(good, "https\\://idp", "http\\://idp", 1), "not https"},
		{"unsigned", good + "use_signature=false\n", "use_signature"},
		{"short key", strings.Replace(good, "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=",
			"MTIz", 1), "fewer than 16"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseProperties("p", strings.NewReader(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "MTIz") {
				t.Fatal("error echoes the key")
			}
		})
	}
}

func TestReadTrustedRefusesWhatOthersCouldSwap(t *testing.T) {
	dir := t.TempDir()
	shared := filepath.Join(dir, "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "pingid.conf")
	if err := os.WriteFile(good, []byte("verbose = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inShared := filepath.Join(shared, "pingid.conf")
	if err := os.WriteFile(inShared, []byte("verbose = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	linkInShared := filepath.Join(shared, "link.conf")
	if err := os.Symlink(good, linkInShared); err != nil {
		t.Fatal(err)
	}
	linkToShared := filepath.Join(dir, "to-shared.conf")
	if err := os.Symlink(inShared, linkToShared); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.conf")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	opts := LoadOptions{AllowInsecure: true}
	tests := []struct {
		name, path, want string
	}{
		{"file in a world-writable directory", inShared, "directory " + shared},
		{"link in a world-writable directory", linkInShared, "directory " + shared},
		{"link into a world-writable directory", linkToShared, "directory " + shared},
		{"fifo", fifo, "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := ReadTrusted(tc.path, opts); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want %q", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("ReadTrusted blocked")
			}
		})
	}
	if _, err := ReadTrusted(good, opts); err != nil {
		t.Fatalf("good file: %v", err)
	}
	if _, err := ReadTrusted(inShared, LoadOptions{Development: true}); err != nil {
		t.Fatalf("development files are not checked: %v", err)
	}
}

func TestPropertiesDiagnosticsNeverEchoASecret(t *testing.T) {
	// A key wrapped over two lines: the second line reads as an unknown key.
	text := "use_base64_key=MTIzNDU2Nzg5MDEy\nMzQ1Njc4OTAxMjM0NTY3ODkwMTI=\ntoken=t\n" +
		"idp_url=https://idp.example.com\norg_alias=o\n"
	_, diags, err := ParseProperties("p", strings.NewReader(text))
	if err == nil {
		t.Fatal("a 12-byte key was accepted")
	}
	found := false
	for _, d := range diags {
		if strings.Contains(d.Msg, "MzQ1") || strings.Contains(d.Msg, "MTIz") {
			t.Fatalf("diagnostic echoes the key: %s", d)
		}
		found = found || strings.Contains(d.Msg, "(unreadable key)")
	}
	if !found {
		t.Fatalf("no warning for the stray line: %v", diags)
	}
}

func TestPropertiesMustNotBeReadableByOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pingid.properties")
	text := "use_base64_key=MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI=\ntoken=t\n" +
		"idp_url=https://idp.example.com\norg_alias=o\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := LoadOptions{AllowInsecure: true}
	if _, _, err := LoadProperties(path, opts); err != nil {
		t.Fatalf("mode 0600: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadProperties(path, opts)
	if !errors.Is(err, ErrInsecureFile) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("mode 0644: err = %v", err)
	}
}
