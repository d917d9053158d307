package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
)

// FailoverResult is figure 3 for one fault: the time from the start of a login to the
// offline prompt, for the first login after the fault began (Cold) and once the prober
// knows (Warm).
type FailoverResult struct {
	Fault      pingidtest.Fault
	Cold, Warm Latencies
}

// RunFailover repeats, rounds times: service up and known to be up, switch fault on,
// one login at once (cold), then one login with the prober aware (warm), service back.
func RunFailover(ctx context.Context, e *Env, fault pingidtest.Fault, rounds int,
) (FailoverResult, error) {
	res := FailoverResult{Fault: fault}
	for i := 0; i < rounds; i++ {
		if err := e.waitUp(ctx); err != nil {
			return res, err
		}
		down := e.logs.Watch(`"message":"pingid reachability changed"`)
		if err := e.Sim.SetFault("", fault); err != nil {
			return res, fmt.Errorf("set fault: %w", err)
		}
		cold, err := e.offlineLogin(ctx)
		if err != nil {
			return res, fmt.Errorf("%s, first login: %w", fault, err)
		}
		select {
		case <-down:
		case <-time.After(10 * time.Second):
			return res, fmt.Errorf("%s: the prober never saw the outage", fault)
		}
		warm, err := e.offlineLogin(ctx)
		if err != nil {
			return res, fmt.Errorf("%s, prober aware: %w", fault, err)
		}
		res.Cold = append(res.Cold, cold)
		res.Warm = append(res.Warm, warm)
		if err := e.Sim.SetFault("", pingidtest.FaultNone); err != nil {
			return res, fmt.Errorf("clear fault: %w", err)
		}
	}
	slices.Sort(res.Cold)
	slices.Sort(res.Warm)
	return res, nil
}

// offlineLogin runs one login that must reach the offline prompt and returns the time it
// took to get there.
func (e *Env) offlineLogin(ctx context.Context) (time.Duration, error) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := e.SocketLogin(lctx)
	if err != nil {
		return 0, err
	}
	if !out.Offline {
		return 0, fmt.Errorf("no offline prompt (result %s, push %t)", out.Status, out.Push)
	}
	return out.ToPrompt, nil
}

// waitUp waits until a login goes through the online flow again, which it does once the
// prober has seen the service back. Bounded by 30 seconds.
func (e *Env) waitUp(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		out, err := e.SocketLogin(lctx)
		cancel()
		if err == nil && out.Push && out.Status == "success" {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("service not back within 30s: %s", e.logs.Tail())
}
