package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/engine"
	"github.com/pingid-ssh/pingid-ssh/session"
)

// maxInputSize bounds a decide input file.
const maxInputSize = 1 << 20

// runDecide implements "decide": it prints the policy's decision for an input file.
// Exit 0 whenever a decision was made (deny included), 2 for unusable flags or input.
func runDecide(e *env, args []string) int {
	fs := newFlagSet(e, "decide")
	cfgPath := fs.String("config", config.DefaultPath, "pingid.conf (for policy_dir)")
	policyDir := fs.String("policy-dir", "", "override directory (default: policy_dir)")
	inputPath := fs.String("input", "", "JSON input document, - for stdin")
	user := fs.String("user", "", "decide for this local user, gathering the input here")
	rhost := fs.String("rhost", "", "with --user: the remote host")
	service := fs.String("service", "sshd", "with --user: the PAM service")
	asJSON := fs.Bool("json", false, "print the decision as JSON")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if *inputPath != "" && *user != "" {
		fmt.Fprintln(e.stderr, "pingid-ssh decide: --input and --user exclude each other")
		return 2
	}
	if (*inputPath == "") == (*user == "") || fs.NArg() > 0 {
		fmt.Fprintln(e.stderr, "usage: pingid-ssh decide --input FILE | --user NAME "+
			"[--rhost IP] [--service S] [--json]")
		return 2
	}
	if *user != "" {
		return decideForUser(e, *cfgPath, *user, *rhost, *service, *asJSON)
	}

	ctx := context.Background()
	cfg, err := policyConfig(e, *cfgPath, *policyDir)
	if err != nil {
		fmt.Fprintln(e.stderr, err)
		return 2
	}
	eng := engine.New(nil, 0)
	if set, err := engine.Load(ctx, cfg.PolicyDir, loadOptions(e)); err != nil {
		// Fail closed: with no policy every decision below is a deny that says so.
		fmt.Fprintf(e.stderr, "pingid-ssh decide: policy not loaded: %v\n", err)
	} else {
		eng.Swap(set)
	}

	doc, err := readInput(e, *inputPath)
	if err != nil {
		fmt.Fprintf(e.stderr, "pingid-ssh decide: %v\n", err)
		return 2
	}
	printDecision(e.stdout, eng.DecideJSON(ctx, doc), *asJSON)
	return 0
}

// policyConfig is the config of a policy command: pingid.conf (or the defaults, when the
// default file is absent), with policy_dir replaced by dir when one is named.
func policyConfig(e *env, path, dir string) (*config.Config, error) {
	cfg, err := configOrDefaults(e, path, path != config.DefaultPath)
	if err != nil {
		return nil, err
	}
	if dir != "" {
		if err := mustBeDir(dir); err != nil {
			return nil, err
		}
		cfg.PolicyDir = dir
	}
	return cfg, nil
}

// configOrDefaults loads path; when the file is absent and was not asked for by name,
// the built-in defaults serve (decide --input needs only policy_dir).
func configOrDefaults(e *env, path string, required bool) (*config.Config, error) {
	if _, err := os.Stat(path); !required && errors.Is(err, os.ErrNotExist) {
		cfg := config.Default()
		return &cfg, nil
	}
	return loadConfig(e, path)
}

// readInput decodes one JSON document from path (or stdin for "-"); trailing data and
// oversized files are errors.
func readInput(e *env, path string) (any, error) {
	var r io.Reader = e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read input: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxInputSize+1))
	if err != nil {
		return nil, fmt.Errorf("read input %s: %w", path, err)
	}
	if len(data) > maxInputSize {
		return nil, fmt.Errorf("input %s: larger than %d bytes", path, maxInputSize)
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("input %s: not valid JSON: %w", path, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("input %s: more than one JSON value", path)
	}
	return doc, nil
}

func printDecision(w io.Writer, d engine.Decision, asJSON bool) {
	if asJSON {
		out, _ := json.Marshal(d) // a Decision always marshals
		fmt.Fprintf(w, "%s\n", out)
		return
	}
	fmt.Fprintf(w, "%s\n", d.Action)
	for _, r := range d.Reasons {
		fmt.Fprintf(w, "  - %s\n", r)
	}
	fmt.Fprintf(w, "  (decision %s, policy revision %s)\n", d.ID, d.Revision)
}

// decideForUser gathers the input a login of user would have here (NSS, one probe of the
// service, the device file) and prints the decision and the input it was made on. It
// needs the whole configuration, properties included.
func decideForUser(e *env, path, user, rhost, service string, asJSON bool) int {
	ctx := context.Background()
	rt, err := session.Load(ctx, path, loadOptions(e), zerolog.Nop())
	if err != nil {
		fmt.Fprintf(e.stderr, "pingid-ssh decide: %v\n", err)
		return 2
	}
	defer rt.Client.Close()
	in, err := rt.Input(ctx, user, rhost, service, "ssh")
	if err != nil {
		fmt.Fprintf(e.stderr, "pingid-ssh decide: %v\n", err)
		return 2
	}
	d := rt.Engine.Decide(ctx, in)
	if asJSON {
		out, _ := json.Marshal(struct {
			Input    *engine.Input   `json:"input"`
			Decision engine.Decision `json:"decision"`
		}{in, d})
		fmt.Fprintf(e.stdout, "%s\n", out)
		return 0
	}
	printDecision(e.stdout, d, false)
	fmt.Fprintf(e.stdout, "  input: fail_mode %s, service %s, device file %s\n", in.FailMode,
		in.Online.Class, in.Offline.Status)
	return 0
}
