package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
)

// Config sizes a whole run.
type Config struct {
	Bin            string // the built pingid-ssh binary
	SocketLogins   int
	HelperLogins   int
	FailoverRounds int
	Concurrency    int
	LoadDuration   time.Duration
	EngineRounds   int
	ConnectTimeout time.Duration
	// KeepDir leaves the temporary directory with the daemon's log in place.
	KeepDir bool
	Log     zerolog.Logger
	// Progress receives a line as each figure starts.
	Progress io.Writer
}

// Results holds every figure.
type Results struct {
	Engine   EngineResult
	Latency  LatencyResult
	Failover []FailoverResult
	Load     LoadResult
	Connect  time.Duration
}

// Run measures every figure in order; it stops at the first figure that cannot be
// measured and returns what it has.
func Run(ctx context.Context, c Config) (*Results, error) {
	res := &Results{Connect: c.ConnectTimeout}
	say := func(format string, a ...any) {
		if c.Progress != nil {
			fmt.Fprintf(c.Progress, "pingid-bench: "+format+"\n", a...)
		}
	}

	say("1. engine.Decide vs a bare prepared query")
	var err error
	if res.Engine, err = RunEngine(ctx, c.EngineRounds); err != nil {
		return res, fmt.Errorf("engine: %w", err)
	}

	say("starting the simulator and the daemon")
	e, err := Start(ctx, Options{Bin: c.Bin, ConnectTimeout: c.ConnectTimeout,
		ProbeInterval: 15 * time.Second, Keep: c.KeepDir, Log: c.Log})
	if err != nil {
		return res, err
	}
	defer e.Close()
	if c.KeepDir {
		say("working directory %s is kept", e.Dir)
	}

	say("5. idle RSS, then 2. %d socket and %d pam-helper logins", c.SocketLogins,
		c.HelperLogins)
	if res.Load.RSSIdle, err = e.RSS(); err != nil {
		return res, err
	}
	idle := res.Load.RSSIdle
	if res.Latency, err = RunLatency(ctx, e, c.SocketLogins, c.HelperLogins); err != nil {
		return res, fmt.Errorf("latency: %w", err)
	}

	for _, f := range []pingidtest.Fault{pingidtest.FaultSilent, pingidtest.FaultRefuse} {
		say("3. failover with fault %q, %d rounds", f, c.FailoverRounds)
		fr, err := RunFailover(ctx, e, f, c.FailoverRounds)
		if err != nil {
			return res, fmt.Errorf("failover: %w", err)
		}
		res.Failover = append(res.Failover, fr)
	}
	if err := e.waitUp(ctx); err != nil {
		return res, err
	}

	say("4. %d sessions for %s with a config rename every 100ms", c.Concurrency,
		c.LoadDuration)
	load, err := RunLoad(ctx, e, c.Concurrency, c.LoadDuration)
	load.RSSIdle = idle
	res.Load = load
	if err != nil {
		return res, fmt.Errorf("load: %w", err)
	}
	return res, nil
}

// Machine describes where the figures were taken.
func Machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %s %s/%s", runtime.NumCPU(), model, runtime.Version(),
		runtime.GOOS, runtime.GOARCH)
}

// verdict is "met" or "NOT met".
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

// Table writes every figure as one Markdown table: figure, measure, value, target,
// verdict.
func (r *Results) Table(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	row := func(cells ...string) { fmt.Fprintln(tw, "| "+strings.Join(cells, "\t ")+"\t") }
	row("#", "measure", "value", "target", "verdict")
	row("---", "---", "---", "---", "---")

	en := r.Engine
	row("1", "engine.Decide", fmt.Sprintf("%d ns/op, %d allocs/op", en.Decide.NsPerOp(),
		en.Decide.AllocsPerOp()), "", "")
	row("1", "bare prepared OPA query", fmt.Sprintf("%d ns/op, %d allocs/op",
		en.Bare.NsPerOp(), en.Bare.AllocsPerOp()), "", "")
	row("1", "ratio Decide / bare", fmt.Sprintf("%.2f", en.Ratio()), "<= 1.5",
		verdict(en.Ratio() <= 1.5))

	l := r.Latency
	if len(l.Socket) > 0 && len(l.Helper) > 0 {
		sp50, hp50 := l.Socket.Quantile(0.5), l.Helper.Quantile(0.5)
		row("2", fmt.Sprintf("daemon socket login p50 / p99 (n=%d)", len(l.Socket)),
			ms(sp50)+" / "+ms(l.Socket.Quantile(0.99)), "p50 < 3 ms", verdict(sp50 < 3*time.Millisecond))
		row("2", fmt.Sprintf("pam-helper login p50 / p99 (n=%d)", len(l.Helper)),
			ms(hp50)+" / "+ms(l.Helper.Quantile(0.99)), "", "")
		ratio := float64(sp50) / float64(hp50)
		row("2", "ratio socket / helper (p50)", fmt.Sprintf("%.2f", ratio), "<= 0.5",
			verdict(ratio <= 0.5))
	}

	limit := r.Connect + r.Connect/10
	for _, f := range r.Failover {
		if len(f.Warm) == 0 {
			continue
		}
		row("3a", fmt.Sprintf("%s: to offline prompt, prober aware (median / max, n=%d)",
			f.Fault, len(f.Warm)), ms(f.Warm.Quantile(0.5))+" / "+ms(f.Warm[len(f.Warm)-1]),
			"< 50 ms", verdict(f.Warm[len(f.Warm)-1] < 50*time.Millisecond))
		row("3b", fmt.Sprintf("%s: to offline prompt, first login (median / max, n=%d)",
			f.Fault, len(f.Cold)), ms(f.Cold.Quantile(0.5))+" / "+ms(f.Cold[len(f.Cold)-1]),
			"<= "+ms(limit), verdict(f.Cold[len(f.Cold)-1] <= limit))
	}

	ld := r.Load
	if ld.Duration > 0 {
		row("4", fmt.Sprintf("logins/s, %d sessions, %s", ld.Concurrency,
			ld.Duration.Round(100*time.Millisecond)), fmt.Sprintf("%.0f", ld.PerSecond()),
			">= 2000", verdict(ld.PerSecond() >= 2000))
		row("4", "login p50 / p99 under load", ms(ld.Latency.Quantile(0.5))+" / "+
			ms(ld.Latency.Quantile(0.99)), "", "")
		row("4", "errors / wrong decisions", fmt.Sprintf("%d / %d of %d", ld.Errors,
			ld.Wrong, ld.Logins+ld.Errors+ld.Wrong), "0 / 0",
			verdict(ld.Errors == 0 && ld.Wrong == 0))
		row("4", "config renames / reloads", fmt.Sprintf("%d / %d", ld.Rewrites, ld.Reloads),
			"", "")
		row("5", "daemon open descriptors before / after load", fmt.Sprintf("%d / %d",
			ld.FDsBefore, ld.FDsAfter), "", "")
		row("5", "daemon RSS idle", mb(ld.RSSIdle), "< 60 MB", verdict(ld.RSSIdle < 60<<20))
		row("5", "daemon RSS after load (peak)", mb(ld.RSSAfter)+" ("+mb(ld.RSSPeak)+")",
			"< 60 MB", verdict(ld.RSSPeak < 60<<20))
	}
	tw.Flush()
	if ld.FirstError != "" {
		fmt.Fprintf(w, "\nfirst failed login under load: %s\n", ld.FirstError)
	}
}
