package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/config"
)

// insecureEnv names the switch that lets tests and demos run on files not owned by root.
const insecureEnv = "PINGID_INSECURE_FILES"

// loadOptions reads the process-wide switches that change how files are trusted.
func loadOptions(e *env) config.LoadOptions {
	return config.LoadOptions{AllowInsecure: e.getenv(insecureEnv) == "1"}
}

// newFlagSet returns a flag set that reports errors to e.stderr and never exits.
func newFlagSet(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("pingid-ssh "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// flagExit is the exit code after a flag parse error: 0 when -h or --help asked for the
// usage, 2 for a real mistake.
func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// loadConfig loads pingid.conf and prints its warnings to stderr.
func loadConfig(e *env, path string) (*config.Config, error) {
	cfg, diags, err := config.Load(path, loadOptions(e))
	for _, d := range diags {
		if d.Severity == config.Warning {
			fmt.Fprintln(e.stderr, d)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return cfg, nil
}

// newLogger builds the process logger: JSON to log_file when set, else to stderr; debug
// level only when verbose. The returned close function flushes and closes a log file.
func newLogger(e *env, cfg *config.Config) (zerolog.Logger, func(), error) {
	var w io.Writer = e.stderr
	closeFn := func() {}
	if cfg != nil && cfg.LogFile != "" {
		// O_NOFOLLOW: a link planted where the log should be must not make root append to
		// a file of someone else's choosing.
		f, err := os.OpenFile(cfg.LogFile,
			os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			return zerolog.Nop(), closeFn, fmt.Errorf("open log file: %w", err)
		}
		w = f
		closeFn = func() { f.Close() }
	}
	level := zerolog.InfoLevel
	if cfg != nil && cfg.Verbose {
		level = zerolog.DebugLevel
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), closeFn, nil
}

// missingPolicyDir says, when policy_dir does not exist, that no override applies: a
// typo there would otherwise drop every override without a word.
func missingPolicyDir(cfg *config.Config) string {
	if _, err := os.Stat(cfg.PolicyDir); errors.Is(err, os.ErrNotExist) {
		return fmt.Sprintf("policy_dir %s does not exist: no overrides apply", cfg.PolicyDir)
	}
	return ""
}
