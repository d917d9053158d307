package online

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/rs/zerolog"
)

// ProbeResult is the outcome of one probe.
type ProbeResult struct {
	Class   Class
	Latency time.Duration
	URL     string
	Err     error // nil when Class is ClassOK
}

// Probe sends one GET to idp_url. Any HTTP answer below 500 other than 429 proves the
// service is reachable (ClassOK); the answer is not otherwise read. The probe is bounded
// by connect_timeout in total, and may retry a refused or reset connection, 502, 503,
// 504 or 429 within that bound. It is cheap enough to run once per login.
func (c *Client) Probe(ctx context.Context) ProbeResult {
	start := c.now()
	class, err := c.probe(ctx)
	latency := c.now().Sub(start)
	if ctx.Err() == nil {
		// A probe the caller abandoned proves nothing about the service.
		c.observe(class, latency)
	}
	ev := c.log.Debug().Str("op", "probe").Str("class", string(class)).
		Int64("latency_ms", latency.Milliseconds())
	if err != nil {
		ev = ev.Err(err)
	}
	ev.Msg("pingid probe")
	return ProbeResult{Class: class, Latency: latency, URL: c.base, Err: err}
}

func (c *Client) probe(ctx context.Context) (Class, error) {
	ctx, cancel := context.WithTimeout(ctx, c.connect)
	defer cancel()
	tr := &tracker{idempotent: true}
	ctx = withTrace(context.WithValue(ctx, trackerKey{}, tr), tr)

	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, c.base, nil)
	if err != nil {
		return ClassMalformed, &Error{Op: "probe", Class: ClassMalformed, Err: err}
	}
	resp, err := c.short.Do(req)
	if err != nil {
		class := classifyTransport(err, tr.get())
		return class, &Error{Op: "probe", Class: class, Err: err}
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 500:
		return ClassHTTP5xx, &Error{Op: "probe", Class: ClassHTTP5xx,
			Err: fmt.Errorf("HTTP %d", resp.StatusCode)}
	case resp.StatusCode == http.StatusTooManyRequests:
		return ClassHTTP429, &Error{Op: "probe", Class: ClassHTTP429, Err: fmt.Errorf("HTTP 429")}
	}
	return ClassOK, nil
}

// Clock is the time source of a Prober; tests step a fake one.
type Clock interface {
	Now() time.Time
	// After delivers once, d after now.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real Clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// ProbeState is the prober's latest knowledge of the service.
type ProbeState struct {
	Class       Class
	Latency     time.Duration
	Checked     time.Time // when Class was learned
	LastSuccess time.Time // zero if never
	Known       bool      // false before the first probe or observed call
}

// Prober keeps the health of the PingID API fresh in the background so that a login can
// decide at once. It probes every interval while the service is healthy and every
// DownInterval(interval) while it is not; every call the Client makes is observed too.
// It is safe for concurrent use.
type Prober struct {
	c        *Client
	interval time.Duration
	log      zerolog.Logger
	clock    Clock

	mu    sync.Mutex
	state ProbeState
	kick  chan struct{} // a failure was observed: probe on the fast schedule now
}

// DownInterval is how often a Prober probes while the service is down: a sixth of the
// healthy interval, at least one second.
func DownInterval(interval time.Duration) time.Duration {
	return max(interval/6, time.Second)
}

// NewProber returns a prober for c and registers it to observe c's calls; a nil clock is
// the system clock. Call Run to start probing.
func NewProber(c *Client, interval time.Duration, log zerolog.Logger, clock Clock) *Prober {
	if clock == nil {
		clock = SystemClock{}
	}
	if interval <= 0 {
		interval = 30 * time.Second
	}
	p := &Prober{
		c:        c,
		interval: interval,
		log:      log.With().Str("component", "prober").Logger(),
		clock:    clock,
		kick:     make(chan struct{}, 1),
	}
	c.setObserver(p.Observe)
	return p
}

// Run probes until ctx ends. It probes at once, then on the schedule of the last class.
func (p *Prober) Run(ctx context.Context) {
	for {
		res := p.c.Probe(ctx)
		if ctx.Err() != nil {
			return
		}
		// Probe already reported to Observe through the client's observer; a kick it
		// caused is stale, as this probe is the look it asked for.
		select {
		case <-p.kick:
		default:
		}
		wait := p.interval
		if res.Class != ClassOK {
			wait = DownInterval(p.interval)
		}
		select {
		case <-ctx.Done():
			return
		case <-p.clock.After(wait):
		case <-p.kick:
			// A call failed while healthy: look again on the fast schedule.
			select {
			case <-ctx.Done():
				return
			case <-p.clock.After(DownInterval(p.interval)):
			}
		}
	}
}

// State returns the latest state without blocking on any network activity.
func (p *Prober) State() ProbeState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// Observe records the class and latency of a probe or of any online call. A failure
// while the service was thought healthy makes Run probe again on the fast schedule.
func (p *Prober) Observe(class Class, latency time.Duration) {
	now := p.clock.Now()
	p.mu.Lock()
	prev := p.state
	p.state.Class = class
	p.state.Latency = latency
	p.state.Checked = now
	p.state.Known = true
	if class == ClassOK {
		p.state.LastSuccess = now
	}
	p.mu.Unlock()

	if class != ClassOK && (!prev.Known || prev.Class == ClassOK) {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	if prev.Known && prev.Class != class {
		p.log.Info().Str("class", string(class)).Str("previous", string(prev.Class)).
			Msg("pingid reachability changed")
	}
}
