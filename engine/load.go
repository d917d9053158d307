package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pingid-ssh/pingid-ssh/config"
)

// testTimeout bounds the override tests that gate a load.
const testTimeout = 10 * time.Second

// TestsFailedError refuses a policy set whose own tests fail.
type TestsFailedError struct {
	Failed []TestResult
}

func (e *TestsFailedError) Error() string {
	lines := make([]string, len(e.Failed))
	for i, r := range e.Failed {
		lines[i] = fmt.Sprintf("%s: %s failed", r.Location, r.Name)
		if r.Err != nil {
			lines[i] += ": " + r.Err.Error()
		}
	}
	return "override tests failed:\n" + strings.Join(lines, "\n")
}

// Load reads the overrides of dir, compiles them with the shipped policy and, when dir
// holds test files, runs them: a set is returned only if it compiles and every test
// passes. It is what the daemon calls on every reload and the helper on every login.
func Load(ctx context.Context, dir string, opts config.LoadOptions) (*Set, error) {
	srcs, err := ReadDir(dir, opts)
	if err != nil {
		return nil, err
	}
	set, err := Compile(ctx, srcs)
	if err != nil {
		return nil, fmt.Errorf("compile policy: %w", err)
	}
	if !hasTests(srcs) {
		return set, nil
	}
	results, err := RunTests(ctx, srcs, testTimeout)
	if err != nil {
		return nil, fmt.Errorf("compile policy tests: %w", err)
	}
	var failed []TestResult
	for _, r := range results {
		if !r.Pass {
			failed = append(failed, r)
		}
	}
	if len(failed) > 0 {
		return nil, &TestsFailedError{Failed: failed}
	}
	return set, nil
}

func hasTests(srcs []Source) bool {
	for _, s := range srcs {
		if s.IsTest() {
			return true
		}
	}
	return false
}
