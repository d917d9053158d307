package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/pingid-ssh/pingid-ssh/engine"
	"github.com/pingid-ssh/pingid-ssh/policy"
)

// EngineResult is figure 1: engine.Decide against a bare prepared OPA query on the same
// policy and input.
type EngineResult struct {
	Decide, Bare testing.BenchmarkResult
}

// Ratio is Decide's ns/op over the bare query's.
func (r EngineResult) Ratio() float64 {
	return float64(r.Decide.NsPerOp()) / float64(max(r.Bare.NsPerOp(), 1))
}

// engineInput is a passive_offline_authentication login during a connect timeout with a
// ready device file: the policy walks its longest path and answers offline.
func engineInput() *engine.Input {
	uid := int64(1001)
	last := int64(3_600_000)
	return &engine.Input{
		FailMode: "passive_offline_authentication",
		Phase:    engine.PhaseProbe,
		User: engine.User{Name: "alice", Exists: true, UID: &uid,
			Groups: []string{"dev", "wheel"}},
		Request: engine.Request{Service: "sshd", RHost: "203.0.113.7", TTY: "ssh"},
		Online: engine.Service{Class: "connect_timeout", LatencyMS: 2003, CheckedMSAgo: 40,
			LastSuccessMSAgo: &last},
		Offline: engine.DeviceFile{Status: "ready", Devices: 1},
		Time:    time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC),
	}
}

// RunEngine measures figure 1 with testing.Benchmark (about a second per side, the best
// of rounds). A wrong decision on either side is an error.
func RunEngine(ctx context.Context, rounds int) (EngineResult, error) {
	set, err := engine.Compile(ctx, nil)
	if err != nil {
		return EngineResult{}, fmt.Errorf("compile policy: %w", err)
	}
	e := engine.New(set, 0)
	in := engineInput()

	q, err := rego.New(rego.Query(policy.Query),
		rego.Module(policy.FailModeFile, policy.FailMode)).PrepareForEval(ctx)
	if err != nil {
		return EngineResult{}, fmt.Errorf("prepare bare query: %w", err)
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return EngineResult{}, fmt.Errorf("encode input: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return EngineResult{}, fmt.Errorf("decode input: %w", err)
	}

	var bad error
	decide := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d := e.Decide(ctx, in); d.Action != engine.Offline {
				bad = fmt.Errorf("engine.Decide answered %s: %v", d.Action, d.Reasons)
			}
		}
	}
	bare := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rs, err := q.Eval(ctx, rego.EvalInput(doc))
			if err != nil || len(rs) == 0 ||
				rs[0].Expressions[0].Value.(map[string]any)["action"] != "offline" {
				bad = fmt.Errorf("bare query answered %v, %v", rs, err)
			}
		}
	}
	var res EngineResult
	for i := 0; i < max(rounds, 1); i++ {
		// Alternate the two so that a slower phase of the machine hits both.
		d, b := testing.Benchmark(decide), testing.Benchmark(bare)
		if i == 0 || d.NsPerOp() < res.Decide.NsPerOp() {
			res.Decide = d
		}
		if i == 0 || b.NsPerOp() < res.Bare.NsPerOp() {
			res.Bare = b
		}
	}
	return res, bad
}
