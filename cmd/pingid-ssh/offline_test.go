package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pingid-ssh/pingid-ssh/offline"
)

var (
	hexKey20 = hex.EncodeToString([]byte("12345678901234567890"))
	hexKey32 = hex.EncodeToString([]byte("12345678901234567890123456789012"))
	hexKey64 = hex.EncodeToString([]byte(
		"1234567890123456789012345678901234567890123456789012345678901234"))
)

func TestOfflineRespondRFCVectors(t *testing.T) {
	// One row of every table of RFC 6287 Appendix C; the offline package checks them all.
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"C.1 SHA1 QN08", []string{"--suite", "OCRA-1:HOTP-SHA1-6:QN08", "--key", hexKey20,
			"--challenge", "55555555"}, "388898"},
		{"C.1 counter and PIN", []string{"--suite", "OCRA-1:HOTP-SHA256-8:C-QN08-PSHA1",
			"--key", hexKey32, "--challenge", "12345678", "--counter", "9", "--pin", "1234"},
			"08522129"},
		{"C.1 PIN hash", []string{"--suite", "OCRA-1:HOTP-SHA256-8:QN08-PSHA1", "--key",
			hexKey32, "--challenge", "44444444", "--pin-hash",
			"7110eda4d09e062aa5e4a390b0a572ac0d2c0220"}, "86807031"},
		{"C.1 SHA512 counter", []string{"--suite", "OCRA-1:HOTP-SHA512-8:C-QN08", "--key",
			hexKey64, "--challenge", "77777777", "--counter", "7"}, "51946085"},
		{"C.1 time as Unix seconds", []string{"--suite", "OCRA-1:HOTP-SHA512-8:QN08-T1M",
			"--key", hexKey64, "--challenge", "22222222", "--time", "1206446760"},
			"22048402"},
		{"C.1 time as RFC 3339", []string{"--suite", "OCRA-1:HOTP-SHA512-8:QN08-T1M",
			"--key", hexKey64, "--challenge", "22222222", "--time", "2008-03-25T12:06:59Z"},
			"22048402"},
		{"C.2 server SHA256", []string{"--suite", "OCRA-1:HOTP-SHA256-8:QA08", "--key",
			hexKey32, "--challenge", "CLI22223SRV11113"}, "03351211"},
		{"C.2 client SHA256", []string{"--suite", "OCRA-1:HOTP-SHA256-8:QA08", "--key",
			hexKey32, "--challenge", "SRV11114CLI22224"}, "28934924"},
		{"C.2 server SHA512", []string{"--suite", "OCRA-1:HOTP-SHA512-8:QA08", "--key",
			hexKey64, "--challenge", "CLI22220SRV11110"}, "79496648"},
		{"C.2 client SHA512 PIN", []string{"--suite", "OCRA-1:HOTP-SHA512-8:QA08-PSHA1",
			"--key", hexKey64, "--challenge", "SRV11112CLI22222", "--pin", "1234"},
			"01600026"},
		{"C.3 signature", []string{"--suite", "OCRA-1:HOTP-SHA256-8:QA08", "--key",
			hexKey32, "--challenge", "SIG13000"}, "76028668"},
		{"C.3 signature with time", []string{"--suite", "OCRA-1:HOTP-SHA512-8:QA10-T1M",
			"--key", hexKey64, "--challenge", "SIG1400000", "--time", "1206446760"},
			"65360607"},
		{"grouped challenge", []string{"--suite", "OCRA-1:HOTP-SHA1-6:QN08", "--key",
			hexKey20, "--challenge", "0000 0000"}, "237653"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "", nil,
				append([]string{"offline", "respond"}, tt.args...)...)
			if code != 0 || stdout != tt.want+"\n" {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
		})
	}
}

func TestOfflineRespondDefaultSuite(t *testing.T) {
	key := strings.Repeat("ab", 32)
	code, stdout, _ := runCmd(t, "", nil, "offline", "respond", "--key", key,
		"--challenge", "4821 9930 1174")
	keyBytes, _ := hex.DecodeString(key)
	s, _ := offline.ParseSuite(offline.DefaultSuite)
	want, err := s.Compute(keyBytes, offline.Input{Question: "482199301174"})
	if err != nil || code != 0 || stdout != want+"\n" {
		t.Fatalf("exit %d, stdout %q, want %q (%v)", code, stdout, want, err)
	}
}

func TestOfflineRespondRejects(t *testing.T) {
	tests := []struct {
		name string
		args []string
		msg  string
	}{
		{"bad suite", []string{"--suite", "OCRA-1:HOTP-MD5-6:QN08", "--key", hexKey20,
			"--challenge", "1234"}, "--suite"},
		{"key not hex", []string{"--key", "xyz", "--challenge", "1234"}, "--key"},
		{"no key", []string{"--challenge", "1234"}, "--key"},
		{"no challenge", []string{"--key", hexKey20}, "--challenge"},
		{"letters in a numeric challenge", []string{"--key", hexKey20, "--challenge",
			"12ab"}, "alphabet"},
		{"counter the suite lacks", []string{"--key", hexKey20, "--challenge", "1234",
			"--counter", "1"}, "--counter"},
		{"counter missing", []string{"--suite", "OCRA-1:HOTP-SHA1-6:C-QN08", "--key",
			hexKey20, "--challenge", "1234"}, "--counter"},
		{"PIN missing", []string{"--suite", "OCRA-1:HOTP-SHA1-6:QN08-PSHA1", "--key",
			hexKey20, "--challenge", "1234"}, "PIN"},
		{"bad time", []string{"--suite", "OCRA-1:HOTP-SHA1-6:QN08-T1M", "--key", hexKey20,
			"--challenge", "1234", "--time", "yesterday"}, "--time"},
		{"session not hex", []string{"--suite", "OCRA-1:HOTP-SHA1-6:QN08-S064", "--key",
			hexKey20, "--challenge", "1234", "--session", "zz"}, "--session"},
		{"positional argument", []string{"--key", hexKey20, "--challenge", "1234", "extra"},
			"unexpected argument"},
		{"unknown flag", []string{"--frob"}, "frob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "", nil,
				append([]string{"offline", "respond"}, tt.args...)...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, tt.msg) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and %q", code, stdout,
					stderr, tt.msg)
			}
		})
	}
}

func TestOfflineUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no sub-command", []string{"offline"}},
		{"unknown sub-command", []string{"offline", "frob"}},
		{"status without user", []string{"offline", "status"}},
		{"status with unsafe user", []string{"offline", "status", "--user", "../root"}},
		{"unlock without user", []string{"offline", "unlock"}},
		{"unlock with unsafe user", []string{"offline", "unlock", "--user", "../root"}},
		{"unlock with an argument", []string{"offline", "unlock", "--user", "alice", "x"}},
		{"init-key with both sources", []string{"offline", "init-key", "--config", "/x",
			"--key-file", "/y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, "", insecure, tt.args...)
			if code != 2 || stderr == "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
		})
	}
}

// offlineConfig writes a pingid.conf whose offline files live under a new temporary
// directory.
func offlineConfig(t *testing.T) (confPath, dir string) {
	t.Helper()
	dir = t.TempDir()
	conf := fmt.Sprintf("offline_key_file = %s\noffline_devices_path = %s\nstate_dir = %s\n",
		filepath.Join(dir, "etc", "offline.key"),
		filepath.Join(dir, "devices", "${username}", ".localFallbackDevices"),
		filepath.Join(dir, "state"))
	confPath = filepath.Join(dir, "pingid.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return confPath, dir
}

func TestOfflineInitKey(t *testing.T) {
	conf, dir := offlineConfig(t)
	code, stdout, stderr := runCmd(t, "", insecure, "offline", "init-key", "--config", conf)
	keyPath := filepath.Join(dir, "etc", "offline.key")
	if code != 0 || !strings.Contains(stdout, keyPath) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	key, err := os.ReadFile(keyPath)
	if err != nil || len(key) != offline.HostKeySize {
		t.Fatalf("key: %d bytes, %v", len(key), err)
	}
	if strings.Contains(stdout, hex.EncodeToString(key)) {
		t.Error("the key was printed")
	}

	code, _, stderr = runCmd(t, "", insecure, "offline", "init-key", "--config", conf)
	if code != 1 || !strings.Contains(stderr, "refusing to overwrite") {
		t.Errorf("second init-key: exit %d, stderr %q", code, stderr)
	}

	other := filepath.Join(dir, "other.key")
	code, _, stderr = runCmd(t, "", nil, "offline", "init-key", "--key-file", other)
	if fi, err := os.Stat(other); code != 0 || err != nil || fi.Mode() != 0o600 {
		t.Errorf("--key-file: exit %d, stderr %q, %v", code, stderr, err)
	}
}

func TestOfflineStatusAndEnroll(t *testing.T) {
	conf, _ := offlineConfig(t)
	status := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		return runCmd(t, "", insecure, append([]string{"offline", "status", "--config", conf,
			"--user", "alice"}, args...)...)
	}

	code, stdout, _ := status(t)
	if code != 1 || stdout != "alice: no_key\n" {
		t.Fatalf("before init-key: exit %d, stdout %q", code, stdout)
	}
	if code, _, stderr := runCmd(t, "", insecure, "offline", "init-key", "--config",
		conf); code != 0 {
		t.Fatal(stderr)
	}
	code, stdout, _ = status(t, "--json")
	if code != 1 || stdout != `{"user":"alice","status":"missing","devices":0,"age_seconds":0}`+
		"\n" {
		t.Fatalf("missing: exit %d, stdout %q", code, stdout)
	}

	secret := strings.Repeat("5a", 32)
	enroll := []string{"offline", "enroll", "--config", conf, "--user", "alice",
		"--id", "phone", "--name", "Alice's phone", "--key", secret}
	if code, stdout, stderr := runCmd(t, "", insecure, enroll...); code != 0 ||
		stdout != "alice: 1 device(s)\n" {
		t.Fatalf("enroll: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	enroll[7] = "tablet"
	if code, stdout, stderr := runCmd(t, "", insecure, enroll...); code != 0 ||
		stdout != "alice: 2 device(s)\n" {
		t.Fatalf("second enroll: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	// Enrolling an existing ID replaces that device.
	if code, stdout, _ := runCmd(t, "", insecure, enroll...); code != 0 ||
		stdout != "alice: 2 device(s)\n" {
		t.Fatalf("re-enroll: exit %d, stdout %q", code, stdout)
	}

	code, stdout, stderr := status(t)
	if code != 0 || !strings.HasPrefix(stdout, "alice: ready, 2 device(s), file age ") {
		t.Fatalf("ready: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, _ = status(t, "--json")
	var got map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || code != 0 {
		t.Fatalf("json: exit %d, %q, %v", code, stdout, err)
	}
	if got["status"] != "ready" || got["devices"] != float64(2) || len(got) != 4 {
		t.Errorf("json status = %v", got)
	}
	if strings.Contains(stdout+stderr, secret) || strings.Contains(stdout+stderr, "WlpaWl") {
		t.Error("a device key was printed")
	}

	// A code computed by respond for the enrolled key is accepted by the store.
	_, answerOut, _ := runCmd(t, "", nil, "offline", "respond", "--key", secret,
		"--challenge", "1234 5678 9012")
	cfg, err := loadConfig(&env{stderr: os.Stderr, getenv: func(string) string { return "1" }},
		conf)
	if err != nil {
		t.Fatal(err)
	}
	store := offline.NewStore(cfg, offline.Options{AllowInsecure: os.Geteuid() != 0})
	devs, _, err := store.Load("alice")
	if err != nil {
		t.Fatal(err)
	}
	ok, err := store.CheckAttempt("alice", devs, "123456789012", strings.TrimSpace(answerOut))
	if !ok || err != nil {
		t.Errorf("CheckAttempt = %v, %v", ok, err)
	}
}

func TestOfflineEnrollRejects(t *testing.T) {
	conf, _ := offlineConfig(t)
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"no user", []string{"--id", "a", "--key", strings.Repeat("00", 32)}, 2},
		{"short key", []string{"--user", "alice", "--id", "a", "--key", "0011"}, 2},
		{"no id", []string{"--user", "alice", "--key", strings.Repeat("00", 32)}, 2},
		{"suite with a counter", []string{"--user", "alice", "--id", "a", "--key",
			strings.Repeat("00", 32), "--suite", "OCRA-1:HOTP-SHA1-6:C-QN08"}, 2},
		{"no host key", []string{"--user", "alice", "--id", "a", "--key",
			strings.Repeat("00", 32)}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"offline", "enroll", "--config", conf}, tt.args...)
			code, _, stderr := runCmd(t, "", insecure, args...)
			if code != tt.want || stderr == "" {
				t.Fatalf("exit %d, stderr %q; want %d", code, stderr, tt.want)
			}
		})
	}
}

func TestOfflineUnlock(t *testing.T) {
	conf, _ := offlineConfig(t)
	cli := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		return runCmd(t, "", insecure, append(args, "--config", conf)...)
	}
	if code, _, stderr := cli(t, "offline", "init-key"); code != 0 {
		t.Fatal(stderr)
	}
	secret := strings.Repeat("5a", 32)
	if code, _, stderr := cli(t, "offline", "enroll", "--user", "alice", "--id", "phone",
		"--key", secret); code != 0 {
		t.Fatal(stderr)
	}

	code, stdout, stderr := cli(t, "offline", "unlock", "--user", "alice")
	if code != 0 || stdout != "alice: no failed codes counted, nothing to clear\n" {
		t.Fatalf("unlock with nothing counted: exit %d, stdout %q, stderr %q", code, stdout,
			stderr)
	}

	// Lock alice out with wrong codes through the store, as offline logins would.
	cfg, err := loadConfig(&env{stderr: os.Stderr, getenv: func(string) string { return "1" }},
		conf)
	if err != nil {
		t.Fatal(err)
	}
	store := offline.NewStore(cfg, offline.Options{AllowInsecure: os.Geteuid() != 0})
	devs, _, err := store.Load("alice")
	if err != nil {
		t.Fatal(err)
	}
	// wrongCode returns a code that differs from the right one in its first digit.
	wrongCode := func(challenge string) string {
		_, right, _ := runCmd(t, "", nil, "offline", "respond", "--key", secret,
			"--challenge", challenge)
		wrong := []byte(strings.TrimSpace(right))
		wrong[0] = '0' + (wrong[0]-'0'+1)%10
		return string(wrong)
	}
	for i := range cfg.OfflineMaxAttempts {
		challenge := fmt.Sprintf("%012d", 100000000000+i)
		if ok, err := store.CheckAttempt("alice", devs, challenge, wrongCode(challenge)); ok ||
			err != nil {
			t.Fatalf("wrong code %d: %v, %v", i, ok, err)
		}
	}
	code, stdout, _ = cli(t, "offline", "status", "--user", "alice")
	if code != 1 || !strings.HasPrefix(stdout, "alice: locked_out until ") {
		t.Fatalf("after wrong codes: exit %d, stdout %q", code, stdout)
	}

	code, stdout, stderr = cli(t, "offline", "unlock", "--user", "alice")
	want := fmt.Sprintf("alice: cleared %d failed code(s) and the lockout until ",
		cfg.OfflineMaxAttempts)
	if code != 0 || !strings.HasPrefix(stdout, want) {
		t.Fatalf("unlock: exit %d, stdout %q, stderr %q; want prefix %q", code, stdout,
			stderr, want)
	}
	code, stdout, _ = cli(t, "offline", "status", "--user", "alice")
	if code != 0 || !strings.HasPrefix(stdout, "alice: ready, 1 device(s)") {
		t.Fatalf("after unlock: exit %d, stdout %q", code, stdout)
	}
	if n, err := store.Failures("alice"); n != 0 || err != nil {
		t.Errorf("failures after unlock = %d, %v", n, err)
	}

	// A count below the limit is cleared too, and said so.
	last := "999999999999"
	if ok, err := store.CheckAttempt("alice", devs, last, wrongCode(last)); ok || err != nil {
		t.Fatalf("one wrong code: %v, %v", ok, err)
	}
	code, stdout, _ = cli(t, "offline", "unlock", "--user", "alice")
	if code != 0 || stdout != "alice: cleared 1 failed code(s); was not locked out\n" {
		t.Fatalf("unlock below the limit: exit %d, stdout %q", code, stdout)
	}
}

func TestOfflineHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "help"} {
		t.Run(arg, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, "", nil, "offline", arg)
			if code != 0 || !strings.HasPrefix(stdout, "usage:") || stderr != "" ||
				!strings.Contains(stdout, "offline unlock --user NAME") {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
		})
	}
}
