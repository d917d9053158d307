// Package engine decides what a login does by evaluating the fail-mode policy and the
// operator's overrides with OPA.
//
// The engine fails closed: whatever goes wrong (no compiled policy, an undefined or
// malformed decision, an evaluation error or timeout) the answer is a deny whose reason
// names the failure. It never panics on policy output.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Action is what a login does.
type Action string

// The four actions of the policy contract.
const (
	Online  Action = "online"
	Offline Action = "offline"
	Deny    Action = "deny"
	Bypass  Action = "bypass"
)

// Failure names why the policy could not give an answer; Decide then denies.
type Failure string

// The ways a decision can fail.
const (
	FailNoPolicy      Failure = "no_policy"
	FailUndefined     Failure = "undefined"
	FailWrongType     Failure = "wrong_type"
	FailUnknownAction Failure = "unknown_action"
	FailEval          Failure = "eval_error"
	FailTimeout       Failure = "timeout"
	FailInput         Failure = "bad_input"
)

// DefaultTimeout bounds one evaluation when Options.Timeout is zero.
const DefaultTimeout = time.Second

// Decision is the engine's answer for one login.
type Decision struct {
	ID       string        `json:"id"`
	Action   Action        `json:"action"`
	Reasons  []string      `json:"reasons"`
	Revision string        `json:"revision"`
	Failure  Failure       `json:"failure,omitempty"` // empty when the policy answered
	Elapsed  time.Duration `json:"-"`
}

// Engine holds the active policy Set and evaluates it. It is safe for concurrent use;
// Swap may run while decisions are being made, and each decision uses one Set throughout.
type Engine struct {
	set     atomic.Pointer[Set]
	timeout time.Duration
}

// New returns an engine serving set (nil means every decision denies until Swap).
// timeout bounds each evaluation; zero means DefaultTimeout.
func New(set *Set, timeout time.Duration) *Engine {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	e := &Engine{timeout: timeout}
	if set != nil {
		e.set.Store(set)
	}
	return e
}

// Swap makes set the active policy for every decision that starts afterwards.
func (e *Engine) Swap(set *Set) { e.set.Store(set) }

// Set returns the active policy set, or nil.
func (e *Engine) Set() *Set { return e.set.Load() }

// Decide evaluates the policy for in. It always returns a Decision; only an answer of the
// policy itself can be anything but a deny.
func (e *Engine) Decide(ctx context.Context, in *Input) Decision {
	return e.decide(ctx, in.value())
}

// DecideJSON evaluates the policy for an arbitrary decoded JSON document, as read from
// "decide --input". Fields are not checked here: the policy denies what it cannot read.
func (e *Engine) DecideJSON(ctx context.Context, doc any) Decision {
	v, err := ast.InterfaceToValue(doc)
	if err != nil {
		return e.fail(FailInput, "input cannot be converted: "+err.Error(), time.Now())
	}
	if _, ok := v.(ast.Object); !ok {
		return e.fail(FailInput, "input is not a JSON object", time.Now())
	}
	return e.decide(ctx, v)
}

func (e *Engine) decide(ctx context.Context, input ast.Value) Decision {
	start := time.Now()
	set := e.set.Load()
	if set == nil {
		return e.fail(FailNoPolicy, "no policy is loaded", start)
	}

	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	if ctx.Err() != nil {
		// OPA notices cancellation asynchronously and may still answer; a login past its
		// deadline gets no answer but a deny.
		return e.fail(FailTimeout, "the login's deadline passed before the decision", start)
	}
	rs, err := set.query.Eval(ctx, rego.EvalParsedInput(input))
	d := Decision{ID: newID(), Revision: set.revision}
	switch {
	case ctx.Err() != nil:
		d.Failure, d.Reasons = FailTimeout, []string{"policy evaluation timed out"}
	case err != nil:
		d.Failure, d.Reasons = FailEval, []string{"policy evaluation failed: " + err.Error()}
	case len(rs) == 0 || len(rs[0].Expressions) == 0:
		d.Failure, d.Reasons = FailUndefined, []string{"policy decision is undefined"}
	default:
		d.Action, d.Reasons, d.Failure = readDecision(rs[0].Expressions[0].Value)
	}
	if d.Failure != "" {
		d.Action = Deny
		d.Reasons = append([]string{"policy failure: " + string(d.Failure)}, d.Reasons...)
	}
	d.Elapsed = time.Since(start)
	return d
}

// readDecision checks the shape {"action": string, "reasons": [string]} and nothing more.
func readDecision(v any) (Action, []string, Failure) {
	obj, ok := v.(map[string]any)
	if !ok || len(obj) != 2 {
		return "", []string{fmt.Sprintf("decision is %T, not an object with "+
			"action and reasons", v)}, FailWrongType
	}
	s, ok := obj["action"].(string)
	if !ok {
		return "", []string{"decision.action is not a string"}, FailWrongType
	}
	raw, ok := obj["reasons"].([]any)
	if !ok {
		return "", []string{"decision.reasons is not an array"}, FailWrongType
	}
	reasons := make([]string, len(raw))
	for i, r := range raw {
		if reasons[i], ok = r.(string); !ok {
			return "", []string{"decision.reasons holds a non-string"}, FailWrongType
		}
	}
	switch a := Action(s); a {
	case Online, Offline, Deny, Bypass:
		return a, reasons, ""
	default:
		return "", []string{fmt.Sprintf("decision.action %q is unknown", s)}, FailUnknownAction
	}
}

func (e *Engine) fail(f Failure, reason string, start time.Time) Decision {
	d := Decision{ID: newID(), Action: Deny, Failure: f,
		Reasons: []string{"policy failure: " + string(f), reason}}
	if set := e.set.Load(); set != nil {
		d.Revision = set.revision
	}
	d.Elapsed = time.Since(start)
	return d
}

// newID returns a random 64-bit decision id in hex.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b[:])
}
