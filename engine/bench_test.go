package engine

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/pingid-ssh/pingid-ssh/policy"
)

// The two benchmarks below evaluate the same policy on the same input; their ratio is the
// engine's overhead over OPA (input building, timeout, result checks, decision id).
// Compare them in one run: go test -run '^$' -bench 'Decide|BarePrepared' ./engine

func BenchmarkDecide(b *testing.B) {
	e := mustCompile(b)
	in := login("passive_offline_authentication", "connect_timeout", "ready", PhaseProbe)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d := e.Decide(ctx, in); d.Action != Offline {
			b.Fatalf("got %s", d.Action)
		}
	}
}

func BenchmarkBarePreparedQuery(b *testing.B) {
	ctx := context.Background()
	q, err := rego.New(
		rego.Query(policy.Query),
		rego.Module(policy.FailModeFile, policy.FailMode),
	).PrepareForEval(ctx)
	if err != nil {
		b.Fatal(err)
	}
	raw, err := json.Marshal(login("passive_offline_authentication", "connect_timeout",
		"ready", PhaseProbe))
	if err != nil {
		b.Fatal(err)
	}
	var in map[string]any
	if err := json.Unmarshal(raw, &in); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		rs, err := q.Eval(ctx, rego.EvalInput(in))
		if err != nil || rs[0].Expressions[0].Value.(map[string]any)["action"] != "offline" {
			b.Fatalf("eval: %v %v", rs, err)
		}
	}
}
