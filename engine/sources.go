package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/pingid-ssh/pingid-ssh/config"
	"github.com/pingid-ssh/pingid-ssh/policy"
)

// maxOverrideFiles bounds how many .rego files a policy directory may hold.
const maxOverrideFiles = 256

// Source is one Rego file: its name (used in every error) and its text.
type Source struct {
	Name string
	Text string
}

// IsTest reports whether the source is a test file (name ends in _test.rego). Test files
// never take part in decisions; they gate reloads and run under "policy test".
func (s Source) IsTest() bool {
	return strings.HasSuffix(s.Name, "_test.rego")
}

// Base returns the shipped fail-mode policy as a Source.
func Base() Source {
	return Source{Name: policy.FailModeFile, Text: policy.FailMode}
}

// ReadDir reads the .rego files directly in dir, sorted by name. Names starting with '.'
// are skipped (editors' and Kubernetes' internals), symlinks are followed, and dir and
// each file must pass the trust checks of config.ReadTrusted. A missing dir is not an
// error: it holds no overrides.
func ReadDir(dir string, opts config.LoadOptions) ([]Source, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read policy dir: %w", err)
	}
	if err := config.CheckTrustedDir(opts, dir); err != nil {
		return nil, fmt.Errorf("policy dir: %w", err)
	}

	var out []Source
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".rego") {
			continue
		}
		if e.IsDir() {
			continue
		}
		if len(out) == maxOverrideFiles {
			return nil, fmt.Errorf("policy dir %s: more than %d .rego files", dir,
				maxOverrideFiles)
		}
		path := filepath.Join(dir, name)
		data, err := config.ReadTrusted(path, opts)
		if err != nil {
			return nil, fmt.Errorf("read override: %w", err)
		}
		out = append(out, Source{Name: path, Text: string(data)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// revision hashes every source by name and text, so any change yields a new revision.
func revision(srcs []Source) string {
	h := sha256.New()
	for _, s := range srcs {
		fmt.Fprintf(h, "%d:%s\n%d:%s\n", len(s.Name), s.Name, len(s.Text), s.Text)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// parse parses every source as Rego v1. srcs[0] is the base policy; every other source
// must be an override in the overrides package, or a test file in any package but the two
// the engine reads.
func parse(srcs []Source) (map[string]*ast.Module, error) {
	mods := make(map[string]*ast.Module, len(srcs))
	var errs ast.Errors
	for i, s := range srcs {
		mod, err := ast.ParseModuleWithOpts(s.Name, s.Text, ast.ParserOptions{
			RegoVersion:       ast.RegoV1,
			ProcessAnnotation: true,
		})
		if err != nil {
			if astErrs, ok := err.(ast.Errors); ok {
				errs = append(errs, astErrs...)
				continue
			}
			return nil, fmt.Errorf("parse %s: %w", s.Name, err)
		}
		if mod == nil {
			errs = append(errs, ast.NewError(ast.ParseErr, &ast.Location{File: s.Name},
				"empty module"))
			continue
		}
		if err := checkPackage(s, mod); i > 0 && err != nil {
			errs = append(errs, err)
			continue
		}
		if i > 0 && !s.IsTest() {
			errs = append(errs, checkRuleShapes(mod)...)
		}
		mods[s.Name] = mod
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return mods, nil
}

func checkPackage(s Source, mod *ast.Module) *ast.Error {
	pkg := strings.TrimPrefix(mod.Package.Path.String(), "data.")
	switch {
	case s.IsTest():
		if pkg == "pingid.failmode" || pkg == policy.OverridesPackage {
			return ast.NewError(ast.CompileErr, mod.Package.Location,
				"test files must not declare package %s", pkg)
		}
	case pkg != policy.OverridesPackage:
		return ast.NewError(ast.CompileErr, mod.Package.Location,
			"override files must declare package %s, not %s", policy.OverridesPackage, pkg)
	}
	return nil
}

// checkRuleShapes points at the override's own line when one of the two rules the policy
// reads has the wrong shape; the compiler would otherwise report the clash at the
// shipped policy's line that reads the rule.
func checkRuleShapes(mod *ast.Module) ast.Errors {
	var errs ast.Errors
	for _, r := range mod.Rules {
		if len(r.Head.Ref()) != 1 {
			continue
		}
		switch name := r.Head.Ref()[0].Value.String(); {
		case name == "action" && (r.Head.RuleKind() != ast.SingleValue || r.Head.Args != nil):
			errs = append(errs, ast.NewError(ast.CompileErr, r.Location,
				`action must be one value: action := "online" if { ... }`))
		case name == "deny" && (r.Head.RuleKind() != ast.MultiValue || r.Head.Args != nil):
			errs = append(errs, ast.NewError(ast.CompileErr, r.Location,
				`deny must be a set of reasons: deny contains "why" if { ... }`))
		}
	}
	return errs
}
