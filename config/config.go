// Package config reads pingid.conf and pingid.properties.
//
// Both files are parsed completely before anything is used: every problem is collected with
// its file and line, unknown keys become warnings, and any invalid value rejects the whole
// file. A Config returned without error is fully validated and safe to share read-only
// between goroutines.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultPath is where the daemon and the helper look for pingid.conf unless told otherwise.
const DefaultPath = "/etc/pingid/pingid.conf"

// maxFileSize bounds what is read of any configuration or properties file.
const maxFileSize = 1 << 20

// FailMode is one of PingID's four fail_mode values.
type FailMode string

// The fail modes, with PingID's names and meaning.
const (
	Restrictive    FailMode = "restrictive"
	PassiveOffline FailMode = "passive_offline_authentication"
	EnforceOffline FailMode = "enforce_offline_authentication"
	Permissive     FailMode = "permissive"
)

// UserNotRegistered is the policy_user_not_registered setting.
type UserNotRegistered string

// PingID's policy_user_not_registered values.
const (
	NotRegisteredRegister  UserNotRegistered = "register"
	NotRegisteredAllow     UserNotRegistered = "allow"
	NotRegisteredFail      UserNotRegistered = "fail"
	NotRegisteredGraceFail UserNotRegistered = "grace_fail"
)

// Config is a validated pingid.conf. The zero value is not useful; start from Default.
type Config struct {
	// Path is the file this config was read from ("" for pure defaults).
	Path string

	FailMode                FailMode
	OfflineDevicesPath      string // template; expand with DevicesPath
	Verbose                 bool
	LogFile                 string
	Proxy                   string
	ProxyVerifyCert         bool
	ProxyCAFile             string
	CAFile                  string
	PolicyUserNotRegistered UserNotRegistered
	DomainPostfix           string
	MaxPrompts              int

	PropertiesFile     string
	PolicyDir          string
	SocketPath         string
	StateDir           string
	OfflineKeyFile     string
	ConnectTimeout     time.Duration
	ProbeInterval      time.Duration
	AuthTimeout        time.Duration
	OfflineMaxAttempts int
	OfflineLockout     time.Duration
}

// Default returns the built-in configuration. It is the one place defaults are defined.
//
// Two defaults differ from PingID's own agent on purpose: proxy_verify_cert is true (TLS is
// never weakened unless asked for), and the device files live under /var/lib/pingid rather
// than in home directories, so users cannot replace or delete their own file.
func Default() Config {
	return Config{
		FailMode:                Restrictive,
		OfflineDevicesPath:      "/var/lib/pingid/devices/${username}/.localFallbackDevices",
		ProxyVerifyCert:         true,
		PolicyUserNotRegistered: NotRegisteredRegister,
		MaxPrompts:              8,
		PropertiesFile:          "/etc/pingid/pingid.properties",
		PolicyDir:               "/etc/pingid/policy.d",
		SocketPath:              "/run/pingid/pingid.sock",
		StateDir:                "/var/lib/pingid/state",
		OfflineKeyFile:          "/etc/pingid/offline.key",
		ConnectTimeout:          5 * time.Second,
		ProbeInterval:           30 * time.Second,
		AuthTimeout:             90 * time.Second,
		OfflineMaxAttempts:      5,
		OfflineLockout:          15 * time.Minute,
	}
}

// Severity says whether a Diagnostic rejects the file.
type Severity int

// Severities of a Diagnostic.
const (
	Warning Severity = iota
	Invalid
)

// Diagnostic is one problem found in a file, with its position.
type Diagnostic struct {
	File     string
	Line     int // 0 when the problem is with the file as a whole
	Severity Severity
	Msg      string
}

func (d Diagnostic) String() string {
	kind := "error"
	if d.Severity == Warning {
		kind = "warning"
	}
	if d.Line == 0 {
		return fmt.Sprintf("%s: %s: %s", d.File, kind, d.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", d.File, d.Line, kind, d.Msg)
}

// Error rejects a file. It lists every invalid value, not only the first.
type Error struct {
	Diagnostics []Diagnostic // only those with Severity Invalid
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Diagnostics))
	for i, d := range e.Diagnostics {
		parts[i] = d.String()
	}
	return strings.Join(parts, "\n")
}

// ErrInsecureFile is wrapped by errors about files that others than root could change.
var ErrInsecureFile = errors.New("file is writable by someone other than root")

// LoadOptions change how files are checked before they are trusted.
type LoadOptions struct {
	// AllowInsecure accepts files and directories owned by the current user as well as
	// root; their modes are still checked. Tests and demos running as an unprivileged user
	// set it; a production daemon never should.
	AllowInsecure bool
	// Development skips every trust check, for files that grant nothing: override sources
	// under test in a checkout ("policy test").
	Development bool
}

// Load reads, checks and validates the config file at path. Warnings come back even when the
// file is valid; err is an *Error for invalid values, or another error when the file cannot
// be read or is insecure.
func Load(path string, opts LoadOptions) (*Config, []Diagnostic, error) {
	data, err := ReadTrusted(path, opts)
	if err != nil {
		return nil, nil, err
	}
	return Parse(path, strings.NewReader(string(data)))
}

// ReadTrusted reads a file that grants access (config, properties, policy override): it
// follows symlinks, as an atomic swap of a linked directory must work, but the final file
// must be a regular file owned by root and writable by nobody else, and so must be the
// directories holding the link and its target, so that nobody else can swap the file. With
// opts.AllowInsecure the owner may be the current user instead of root; the modes are
// checked either way. Reads are bounded to 1 MiB and never block on a FIFO.
func ReadTrusted(path string, opts LoadOptions) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if !opts.Development {
		if err := checkOwnerMode(fi, opts); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if err := checkParents(path, opts); err != nil {
			return nil, err
		}
	}

	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}

// Parse reads a pingid.conf from r; name is used in diagnostics only.
func Parse(name string, r io.Reader) (*Config, []Diagnostic, error) {
	cfg := Default()
	cfg.Path = name
	p := parser{file: name}

	seen := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxFileSize)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, value, ok := strings.Cut(text, "=")
		if !ok {
			p.invalid(line, "expected key = value, got %q", truncate(text))
			continue
		}
		key = strings.TrimSpace(key)
		value = stripQuotes(strings.TrimSpace(value))
		if prev, dup := seen[key]; dup {
			p.warn(line, "%s set again (first at line %d); the last value wins", key, prev)
		}
		seen[key] = line
		p.set(&cfg, line, key, value)
	}
	if err := sc.Err(); err != nil {
		p.invalid(0, "read: %v", err)
	}
	p.validate(&cfg)
	return p.result(&cfg)
}

type parser struct {
	file  string
	diags []Diagnostic
}

func (p *parser) warn(line int, format string, args ...any) {
	p.diags = append(p.diags, Diagnostic{p.file, line, Warning, fmt.Sprintf(format, args...)})
}

func (p *parser) invalid(line int, format string, args ...any) {
	p.diags = append(p.diags, Diagnostic{p.file, line, Invalid, fmt.Sprintf(format, args...)})
}

func (p *parser) result(cfg *Config) (*Config, []Diagnostic, error) {
	if err := p.err(); err != nil {
		return nil, p.diags, err
	}
	return cfg, p.diags, nil
}

// err is an *Error listing the invalid diagnostics, or nil when there are none.
func (p *parser) err() error {
	var bad []Diagnostic
	for _, d := range p.diags {
		if d.Severity == Invalid {
			bad = append(bad, d)
		}
	}
	if len(bad) > 0 {
		return &Error{Diagnostics: bad}
	}
	return nil
}

// set applies one key. Each setter reports its own invalid values.
func (p *parser) set(cfg *Config, line int, key, value string) {
	switch key {
	case "fail_mode":
		switch m := FailMode(value); m {
		case Restrictive, PassiveOffline, EnforceOffline, Permissive:
			cfg.FailMode = m
		default:
			p.invalid(line, "fail_mode: %q is not one of restrictive, "+
				"passive_offline_authentication, enforce_offline_authentication, permissive",
				truncate(value))
		}
	case "policy_user_not_registered":
		switch v := UserNotRegistered(value); v {
		case NotRegisteredRegister, NotRegisteredAllow, NotRegisteredFail, NotRegisteredGraceFail:
			cfg.PolicyUserNotRegistered = v
		default:
			p.invalid(line, "policy_user_not_registered: %q is not one of register, allow, "+
				"fail, grace_fail", truncate(value))
		}
	case "offline_devices_path":
		p.path(line, key, value, &cfg.OfflineDevicesPath)
	case "verbose":
		p.bool(line, key, value, &cfg.Verbose)
	case "proxy_verify_cert":
		p.bool(line, key, value, &cfg.ProxyVerifyCert)
	case "log_file":
		p.path(line, key, value, &cfg.LogFile)
	case "proxy":
		cfg.Proxy = value
	case "proxy_ca_file":
		p.path(line, key, value, &cfg.ProxyCAFile)
	case "ca_file":
		p.path(line, key, value, &cfg.CAFile)
	case "domain_postfix":
		if strings.ContainsAny(value, "/\x00") || hasControl(value) {
			p.invalid(line, "domain_postfix: must not contain '/' or control characters")
			return
		}
		cfg.DomainPostfix = value
	case "max_prompts":
		p.int(line, key, value, 1, 10, &cfg.MaxPrompts)
	case "pingid_properties_file":
		p.path(line, key, value, &cfg.PropertiesFile)
	case "policy_dir":
		p.path(line, key, value, &cfg.PolicyDir)
	case "socket_path":
		p.path(line, key, value, &cfg.SocketPath)
	case "state_dir":
		p.path(line, key, value, &cfg.StateDir)
	case "offline_key_file":
		p.path(line, key, value, &cfg.OfflineKeyFile)
	case "connect_timeout":
		p.duration(line, key, value, 100*time.Millisecond, 2*time.Minute, &cfg.ConnectTimeout)
	case "probe_interval":
		p.duration(line, key, value, time.Second, 24*time.Hour, &cfg.ProbeInterval)
	case "auth_timeout":
		p.duration(line, key, value, time.Second, 10*time.Minute, &cfg.AuthTimeout)
	case "offline_max_attempts":
		p.int(line, key, value, 1, 100, &cfg.OfflineMaxAttempts)
	case "offline_lockout":
		p.duration(line, key, value, time.Second, 7*24*time.Hour, &cfg.OfflineLockout)
	default:
		p.warn(line, "unknown key %q is ignored", truncate(key))
	}
}

// validate checks what depends on more than one key.
func (p *parser) validate(cfg *Config) {
	if cfg.ConnectTimeout >= cfg.AuthTimeout {
		p.invalid(0, "connect_timeout (%s) must be shorter than auth_timeout (%s)",
			cfg.ConnectTimeout, cfg.AuthTimeout)
	}
	if cfg.AuthTimeout > 100*time.Second {
		p.warn(0, "auth_timeout %s is long: keep it under the shim's timeout (120s by "+
			"default) and sshd's LoginGraceTime", cfg.AuthTimeout)
	}
	if !strings.Contains(cfg.OfflineDevicesPath, "${username}") {
		p.invalid(0, "offline_devices_path must contain ${username}")
	}
	if (cfg.ProxyCAFile != "" || !cfg.ProxyVerifyCert) && cfg.Proxy == "" {
		p.warn(0, "proxy_verify_cert and proxy_ca_file have no effect without proxy")
	}
}

func (p *parser) bool(line int, key, value string, dst *bool) {
	switch strings.ToLower(value) {
	case "true", "yes", "on", "1":
		*dst = true
	case "false", "no", "off", "0":
		*dst = false
	default:
		p.invalid(line, "%s: %q is not a boolean (true or false)", key, truncate(value))
	}
}

func (p *parser) int(line int, key, value string, lo, hi int, dst *int) {
	n, err := strconv.Atoi(value)
	if err != nil || n < lo || n > hi {
		p.invalid(line, "%s: %q is not a whole number from %d to %d", key, truncate(value), lo, hi)
		return
	}
	*dst = n
}

func (p *parser) duration(line int, key, value string, lo, hi time.Duration, dst *time.Duration) {
	d, err := ParseDuration(value)
	if err != nil {
		p.invalid(line, "%s: %v", key, err)
		return
	}
	if d < lo || d > hi {
		p.invalid(line, "%s: %s is outside %s to %s", key, d, lo, hi)
		return
	}
	*dst = d
}

func (p *parser) path(line int, key, value string, dst *string) {
	if value == "" {
		p.invalid(line, "%s: empty path", key)
		return
	}
	if !strings.HasPrefix(value, "/") {
		p.invalid(line, "%s: %q is not an absolute path", key, truncate(value))
		return
	}
	if hasControl(value) {
		p.invalid(line, "%s: path contains control characters", key)
		return
	}
	*dst = value
}

// ParseDuration reads a duration in Go's syntax ("1500ms", "2s", "15m"); a bare number,
// possibly with a fraction, means seconds.
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || f > float64(1<<62)/float64(time.Second) {
			return 0, fmt.Errorf("%q is out of range", truncate(s))
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (such as 1500ms, 2s, 15m)", truncate(s))
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", truncate(s))
	}
	return d, nil
}

func stripQuotes(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// truncate keeps echoed values short in messages.
func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
