package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pingid-ssh/pingid-ssh/session"
)

// reloadModes are the fail modes the config cycles through during the load. With the
// service up, each of them decides online, so every login must be a pushed success; a
// deny, an offline prompt or a bypass can only come from a half-loaded or lost config.
var reloadModes = []string{"restrictive", "passive_offline_authentication", "permissive"}

// LoadResult is figures 4 and 5.
type LoadResult struct {
	Duration    time.Duration
	Concurrency int
	Logins      int64
	Errors      int64 // transport or protocol failures
	Wrong       int64 // anything but a pushed success
	FirstError  string
	Rewrites    int // config renames
	Reloads     int // reloads the daemon logged
	Latency     Latencies
	RSSIdle     int64
	RSSAfter    int64
	RSSPeak     int64
	FDsBefore   int // the daemon's open descriptors before the load
	FDsAfter    int // and 3 seconds after it
}

// PerSecond is the login rate.
func (r LoadResult) PerSecond() float64 { return float64(r.Logins) / r.Duration.Seconds() }

// RunLoad runs conc shims, each logging in over and over through the socket for d,
// while the config is rewritten every 100 ms. RSS is read before, during and after.
func RunLoad(ctx context.Context, e *Env, conc int, d time.Duration) (LoadResult, error) {
	res := LoadResult{Duration: d, Concurrency: conc}
	var err error
	if res.RSSIdle, err = e.RSS(); err != nil {
		return res, err
	}
	res.FDsBefore = e.FDs()
	// The daemon logs this event once for each configuration it swaps in.
	const reloaded = `"event":"configuration_active"`
	reloadsBefore := e.logs.Count(reloaded)

	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var logins, errs, wrong atomic.Int64
	var firstErr sync.Once
	lat := make([]Latencies, conc)
	var wg sync.WaitGroup
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				// Each login has its own bound, so the last ones finish past the end
				// instead of being cut off and counted as errors.
				lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
				out, err := e.SocketLogin(lctx)
				lcancel()
				switch {
				case err != nil:
					errs.Add(1)
					firstErr.Do(func() { res.FirstError = err.Error() })
				case out.Status != session.StatusSuccess || !out.Push || out.Offline:
					wrong.Add(1)
					firstErr.Do(func() {
						res.FirstError = fmt.Sprintf("result %s, push %t, offline %t",
							out.Status, out.Push, out.Offline)
					})
				default:
					logins.Add(1)
					lat[i] = append(lat[i], out.Total)
				}
			}
		}()
	}

	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	rss := time.NewTicker(time.Second)
	var werr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			mode := reloadModes[res.Rewrites%len(reloadModes)]
			if err := e.WriteConfig(mode); err != nil && werr == nil {
				werr = err
			}
			res.Rewrites++
		case <-rss.C:
			if v, err := e.RSS(); err == nil {
				res.RSSPeak = max(res.RSSPeak, v)
			}
		}
	}
	tick.Stop()
	rss.Stop()
	wg.Wait()
	res.Duration = time.Since(start)

	res.Logins, res.Errors, res.Wrong = logins.Load(), errs.Load(), wrong.Load()
	for _, l := range lat {
		res.Latency = append(res.Latency, l...)
	}
	sortDurations(res.Latency)
	// Let the last reload land before counting and measuring.
	time.Sleep(3 * time.Second)
	res.Reloads = e.logs.Count(reloaded) - reloadsBefore
	if res.RSSAfter, err = e.RSS(); err != nil {
		return res, err
	}
	res.RSSPeak = max(res.RSSPeak, res.RSSAfter)
	res.FDsAfter = e.FDs()
	return res, werr
}
