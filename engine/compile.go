package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/pingid-ssh/pingid-ssh/policy"
)

// refusedBuiltin reports the built-ins a policy may not call: anything that reaches the
// network, describes the host, or answers differently each time it is called. A decision
// must depend on its input and nothing else; input.time is the clock of a login.
func refusedBuiltin(name string) bool {
	switch name {
	case "http.send", "opa.runtime", "time.now_ns", "rand.intn", "uuid.rfc4122":
		return true
	}
	return strings.HasPrefix(name, "net.")
}

// explainRefused adds to "undefined function" errors why the function is missing, when it
// is one of the refused built-ins rather than a typo.
func explainRefused(errs ast.Errors) ast.Errors {
	for _, e := range errs {
		name, ok := strings.CutPrefix(e.Message, "undefined function ")
		if ok && refusedBuiltin(name) {
			e.Message += " (refused in pingid-ssh policies: a decision may depend only on " +
				"its input; see policy/capabilities.json)"
		}
	}
	return errs
}

// Capabilities returns OPA's capabilities less the refused built-ins, as JSON for
// "opa check --capabilities" and "opa test --capabilities", so that the opa CLI refuses
// what the engine refuses.
func Capabilities() ([]byte, error) {
	return json.MarshalIndent(capabilities(), "", "  ")
}

// capabilities are OPA's built-ins less the refused ones.
func capabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	kept := caps.Builtins[:0:0]
	for _, b := range caps.Builtins {
		if !refusedBuiltin(b.Name) {
			kept = append(kept, b)
		}
	}
	caps.Builtins = kept
	return caps
}

func newCompiler() *ast.Compiler {
	return ast.NewCompiler().
		WithCapabilities(capabilities()).
		WithStrict(true).
		WithDefaultRegoVersion(ast.RegoV1)
}

// Set is a compiled policy: the shipped policy plus overrides, with the decision query
// prepared once. A Set is immutable and safe for concurrent use.
type Set struct {
	query    rego.PreparedEvalQuery
	revision string
	files    []string
	literals []string // strings in the overrides, for Sweep
}

// Revision identifies the sources the set was compiled from.
func (s *Set) Revision() string { return s.revision }

// Files lists the sources of the set, the shipped policy first.
func (s *Set) Files() []string { return s.files }

// Compile builds a Set from the shipped policy and the given override sources. Test
// sources among them are not compiled into the set; use RunTests for them. Every parse or
// compile problem is returned at once, each with file and line.
func Compile(ctx context.Context, overrides []Source) (*Set, error) {
	return compile(ctx, Base(), overrides)
}

// compile is Compile with the base policy as a parameter, so tests can break it.
func compile(ctx context.Context, base Source, overrides []Source) (*Set, error) {
	srcs := []Source{base}
	for _, s := range overrides {
		if !s.IsTest() {
			srcs = append(srcs, s)
		}
	}
	mods, err := parse(srcs)
	if err != nil {
		return nil, err
	}

	compiler := newCompiler()
	if compiler.Compile(mods); compiler.Failed() {
		return nil, explainRefused(compiler.Errors)
	}
	query, err := rego.New(
		rego.Query(policy.Query),
		rego.Compiler(compiler),
		rego.Store(inmem.New()),
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare query: %w", err)
	}

	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.Name
	}
	return &Set{query: query, revision: revision(srcs), files: names,
		literals: literals(mods, base.Name)}, nil
}

// TestResult is the outcome of one Rego test (or one case of a parameterised test).
type TestResult struct {
	Name     string // package-qualified rule name, with the case note if any
	Location string // file:line
	Pass     bool
	Err      error // an evaluation error, when the test could not run
}

// RunTests compiles the shipped policy, the overrides and their tests together, with the
// same restrictions as Compile, and runs every test_ rule. An error means the sources did
// not compile; failing tests are reported in the results.
func RunTests(ctx context.Context, srcs []Source, timeout time.Duration) ([]TestResult, error) {
	all := append([]Source{Base()}, srcs...)
	mods, err := parse(all)
	if err != nil {
		return nil, err
	}
	ch, err := tester.NewRunner().
		SetCompiler(newCompiler()).
		SetStore(inmem.New()).
		SetModules(mods).
		SetTimeout(timeout).
		RaiseBuiltinErrors(true).
		RunTests(ctx, nil)
	if errs, ok := err.(ast.Errors); ok {
		return nil, explainRefused(errs)
	}
	if err != nil {
		return nil, err
	}

	var out []TestResult
	for r := range ch {
		loc := ""
		if r.Location != nil {
			loc = fmt.Sprintf("%s:%d", r.Location.File, r.Location.Row)
		}
		name := r.Package + "." + r.Name
		if len(r.SubResults) == 0 || r.Error != nil {
			out = append(out, TestResult{name, loc, r.Pass(), r.Error})
			continue
		}
		subFailed := false
		for note, sub := range r.SubResults {
			out = append(out, TestResult{name + "[" + note + "]", loc, !sub.Fail, nil})
			subFailed = subFailed || sub.Fail
		}
		if !r.Pass() && !subFailed {
			out = append(out, TestResult{name, loc, false, nil})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
