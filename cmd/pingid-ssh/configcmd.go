package main

import (
	"errors"
	"fmt"

	"github.com/pingid-ssh/pingid-ssh/config"
)

// runConfig implements "config check": it validates pingid.conf and the properties file
// it names, prints every diagnostic with file and line, and exits 0 only when both are valid.
func runConfig(e *env, args []string) int {
	if len(args) == 0 || args[0] != "check" {
		fmt.Fprintln(e.stderr, "usage: pingid-ssh config check [--config FILE]")
		return 2
	}
	fs := newFlagSet(e, "config check")
	path := fs.String("config", config.DefaultPath, "pingid.conf to check")
	if err := fs.Parse(args[1:]); err != nil {
		return flagExit(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "pingid-ssh config check: unexpected argument %q\n"+
			"usage: pingid-ssh config check [--config FILE]\n", fs.Arg(0))
		return 2
	}

	opts := loadOptions(e)
	cfg, diags, err := config.Load(*path, opts)
	printDiags(e, diags, err)
	if err != nil {
		return 1
	}
	_, diags, err = config.LoadProperties(cfg.PropertiesFile, opts)
	printDiags(e, diags, err)
	if err != nil {
		return 1
	}
	if w := missingPolicyDir(cfg); w != "" {
		fmt.Fprintln(e.stderr, "warning:", w)
	}
	fmt.Fprintf(e.stdout, "%s: ok (fail_mode %s)\n", *path, cfg.FailMode)
	return 0
}

// printDiags prints warnings and errors; an *config.Error's lines are already among diags.
func printDiags(e *env, diags []config.Diagnostic, err error) {
	for _, d := range diags {
		fmt.Fprintln(e.stderr, d)
	}
	var cerr *config.Error
	if err != nil && !errors.As(err, &cerr) {
		fmt.Fprintln(e.stderr, err)
	}
}
