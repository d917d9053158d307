// Package policy_test runs the Rego tests of the shipped policy under go test, with the
// engine's own compiler settings (strict mode, refused built-ins), so the policy cannot
// rely on anything the daemon would refuse.
package policy_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pingid-ssh/pingid-ssh/engine"
)

func TestShippedPolicyRegoTests(t *testing.T) {
	files, err := filepath.Glob("*_test.rego")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Rego tests found: %v", err)
	}
	var srcs []engine.Source
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, engine.Source{Name: f, Text: string(text)})
	}
	results, err := engine.RunTests(context.Background(), srcs, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// 832 table cells alone; fewer results means cases went missing.
	if len(results) < 832 {
		t.Fatalf("only %d results", len(results))
	}
	for _, r := range results {
		if !r.Pass {
			t.Errorf("%s (%s) failed: %v", r.Name, r.Location, r.Err)
		}
	}
}
