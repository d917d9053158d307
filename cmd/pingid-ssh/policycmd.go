package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/engine"
)

// runPolicy implements "policy test" and "policy check".
func runPolicy(e *env, args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "test":
			return runPolicyTest(e, args[1:])
		case "check":
			return runPolicyCheck(e, args[1:])
		case "capabilities":
			return runPolicyCapabilities(e, args[1:])
		}
	}
	fmt.Fprintln(e.stderr, "usage:\n"+
		"  pingid-ssh policy test [-v] [--config FILE] [DIR...]\n"+
		"  pingid-ssh policy check [--config FILE] [--policy-dir DIR]\n"+
		"  pingid-ssh policy capabilities   (for opa check/test --capabilities)")
	return 2
}

// runPolicyCapabilities prints the OPA capabilities the engine compiles with: OPA's own
// less the refused built-ins. policy/capabilities.json is this output.
func runPolicyCapabilities(e *env, args []string) int {
	if len(args) > 0 {
		fmt.Fprintln(e.stderr, "usage: pingid-ssh policy capabilities")
		return 2
	}
	data, err := engine.Capabilities()
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 1
	}
	fmt.Fprintf(e.stdout, "%s\n", data)
	return 0
}

// runPolicyTest runs the Rego tests of the given directories (default: policy_dir)
// against the shipped policy. The files are development files, so they are read without
// the ownership checks that guard a deployed policy_dir.
func runPolicyTest(e *env, args []string) int {
	fs := newFlagSet(e, "policy test")
	cfgPath := fs.String("config", config.DefaultPath, "pingid.conf (for policy_dir)")
	verbose := fs.Bool("v", false, "list every test, not only failures")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	dirs := fs.Args()
	if len(dirs) == 0 {
		cfg, err := loadConfig(e, *cfgPath)
		if err != nil {
			fmt.Fprintln(e.stderr, err)
			return 2
		}
		dirs = []string{cfg.PolicyDir}
	}

	var srcs []engine.Source
	for _, dir := range dirs {
		if err := mustBeDir(dir); err != nil {
			fmt.Fprintln(e.stderr, err)
			return 2
		}
		s, err := engine.ReadDir(dir, config.LoadOptions{Development: true})
		if err != nil {
			fmt.Fprintln(e.stderr, err)
			return 2
		}
		srcs = append(srcs, s...)
	}
	results, err := engine.RunTests(context.Background(), srcs, time.Minute)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 1
	}

	failed := 0
	for _, r := range results {
		if !r.Pass {
			failed++
		}
		if r.Pass && !*verbose {
			continue
		}
		status := "PASS"
		if !r.Pass {
			status = "FAIL"
		}
		fmt.Fprintf(e.stdout, "%s %s (%s)\n", status, r.Name, r.Location)
		if r.Err != nil {
			fmt.Fprintf(e.stdout, "  error: %v\n", r.Err)
		}
	}
	fmt.Fprintf(e.stdout, "%d passed, %d failed\n", len(results)-failed, failed)
	if failed > 0 || len(results) == 0 {
		if len(results) == 0 {
			fmt.Fprintln(e.stderr, "no tests found")
		}
		return 1
	}
	return 0
}

// runPolicyCheck loads the deployed policy_dir exactly as the daemon would (trust checks,
// strict compile, the directory's own tests), then evaluates it over a grid of logins to
// find evaluation errors, such as two overrides that choose different actions.
func runPolicyCheck(e *env, args []string) int {
	fs := newFlagSet(e, "policy check")
	cfgPath := fs.String("config", config.DefaultPath, "pingid.conf (for policy_dir)")
	policyDir := fs.String("policy-dir", "", "override directory (default: policy_dir)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	cfg, err := policyConfig(e, *cfgPath, *policyDir)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 2
	}

	if w := missingPolicyDir(cfg); w != "" {
		fmt.Fprintln(e.stderr, "warning:", w)
	}
	ctx := context.Background()
	set, err := engine.Load(ctx, cfg.PolicyDir, loadOptions(e))
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 1
	}
	rep := engine.Sweep(ctx, engine.New(set, 0))
	for _, w := range rep.Warnings {
		fmt.Fprintln(e.stderr, "warning:", w)
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(e.stderr, "error:", p)
	}
	if len(rep.Problems) > 0 {
		return 1
	}
	fmt.Fprintf(e.stdout, "policy ok: revision %s, %d file(s)\n", set.Revision(),
		len(set.Files()))
	return 0
}

// mustBeDir refuses a directory named on the command line that is not there: a typo must
// not read as "no overrides, all is well".
func mustBeDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", dir)
	}
	return nil
}
