package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/pingid-ssh/pingid-ssh/session"
)

// Latencies are sorted login times.
type Latencies []time.Duration

// Quantile returns the q-quantile (0..1) by the nearest rank.
func (l Latencies) Quantile(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(q*float64(len(l))+0.5) - 1
	return l[min(max(i, 0), len(l)-1)]
}

// sequential runs n logins one after another with login and checks each is an online
// push that succeeded.
func sequential(ctx context.Context, n int, login func(context.Context) (Outcome, error),
) (Latencies, error) {
	lat := make(Latencies, 0, n)
	for i := 0; i < n; i++ {
		lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := login(lctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("login %d: %w", i+1, err)
		}
		if out.Status != session.StatusSuccess || !out.Push {
			return nil, fmt.Errorf("login %d: %s (push flow %t), want a pushed success",
				i+1, out.Status, out.Push)
		}
		lat = append(lat, out.Total)
	}
	sortDurations(lat)
	return lat, nil
}

// LatencyResult is figure 2.
type LatencyResult struct {
	Socket, Helper Latencies
}

// RunLatency measures n logins through the socket and m through pam-helper, after a few
// warm-up logins on each path.
func RunLatency(ctx context.Context, e *Env, n, m int) (LatencyResult, error) {
	var res LatencyResult
	if _, err := sequential(ctx, 20, e.SocketLogin); err != nil {
		return res, fmt.Errorf("socket warm-up: %w", err)
	}
	var err error
	if res.Socket, err = sequential(ctx, n, e.SocketLogin); err != nil {
		return res, fmt.Errorf("socket: %w", err)
	}
	if _, err := sequential(ctx, 3, e.HelperLogin); err != nil {
		return res, fmt.Errorf("helper warm-up: %w", err)
	}
	if res.Helper, err = sequential(ctx, m, e.HelperLogin); err != nil {
		return res, fmt.Errorf("helper: %w", err)
	}
	return res, nil
}

func sortDurations(l Latencies) { slices.Sort(l) }
