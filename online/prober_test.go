package online_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/online"
	"github.com/pingid-ssh/pingid-ssh/online/pingidtest"
)

// fakeClock hands every wait the prober asks for to the test, which fires it.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits chan wait
}

type wait struct {
	d  time.Duration
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC),
		waits: make(chan wait, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.waits <- wait{d, ch}
	return ch
}

// next returns the next wait the prober asked for, failing the test after a generous bound.
func (c *fakeClock) next(t *testing.T) wait {
	t.Helper()
	select {
	case w := <-c.waits:
		return w
	case <-time.After(20 * time.Second):
		t.Fatal("the prober never waited")
		return wait{}
	}
}

// fire advances the clock by w.d and releases the wait.
func (c *fakeClock) fire(w wait) {
	c.mu.Lock()
	c.now = c.now.Add(w.d)
	now := c.now
	c.mu.Unlock()
	w.ch <- now
}

func TestProberSchedule(t *testing.T) {
	sim := newSim(t)
	c := newClient(t, testConfig(t, sim), sim.Properties())
	clock := newFakeClock()
	const interval = 30 * time.Second
	p := online.NewProber(c, interval, zerolog.Nop(), clock)
	if p.State().Known {
		t.Fatal("state known before the first probe")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// Healthy: the first probe succeeds and the next comes after the full interval.
	w := clock.next(t)
	st := p.State()
	if w.d != interval || !st.Known || st.Class != online.ClassOK || st.LastSuccess.IsZero() {
		t.Fatalf("after first probe: wait %s, state %+v", w.d, st)
	}
	firstSuccess := st.LastSuccess

	// Down: the probe fails and the schedule speeds up; LastSuccess stays.
	if err := sim.SetFault("", pingidtest.FaultRefuse); err != nil {
		t.Fatal(err)
	}
	clock.fire(w)
	w = clock.next(t)
	st = p.State()
	if w.d != online.DownInterval(interval) || st.Class != online.ClassConnectRefused {
		t.Fatalf("while down: wait %s, state %+v", w.d, st)
	}
	if !st.LastSuccess.Equal(firstSuccess) || !st.Checked.After(firstSuccess) {
		t.Fatalf("times: %+v (first success %s)", st, firstSuccess)
	}

	// Back up: the next probe succeeds and the slow schedule returns.
	if err := sim.SetFault("", pingidtest.FaultNone); err != nil {
		t.Fatal(err)
	}
	clock.fire(w)
	w = clock.next(t)
	if st := p.State(); w.d != interval || st.Class != online.ClassOK ||
		!st.LastSuccess.After(firstSuccess) {
		t.Fatalf("after recovery: wait %s, state %+v", w.d, st)
	}
}

func TestProberObservesCalls(t *testing.T) {
	sim := newSim(t)
	c := newClient(t, testConfig(t, sim), sim.Properties())
	clock := newFakeClock()
	const interval = time.Minute
	p := online.NewProber(c, interval, zerolog.Nop(), clock)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	slow := clock.next(t) // healthy, waiting a minute

	// A login hits a 503: the state changes at once and the prober looks again soon.
	sim.SetFault("", pingidtest.Fault5xx)
	c.Authenticate(context.Background(), "alice", &prompter{}, 3)
	if st := p.State(); st.Class != online.ClassHTTP5xx {
		t.Fatalf("state after failed call: %+v", st)
	}
	fast := clock.next(t)
	if fast.d != online.DownInterval(interval) {
		t.Fatalf("after a failed call the prober waits %s", fast.d)
	}
	_ = slow
}

func TestProberStateNeverBlocks(t *testing.T) {
	sim := newSim(t)
	sim.SetFault("", pingidtest.FaultSilent)
	cfg := testConfig(t, sim)
	cfg.ConnectTimeout = 30 * time.Second // the probe outlasts the check below
	c := newClient(t, cfg, sim.Properties())
	p := online.NewProber(c, time.Minute, zerolog.Nop(), newFakeClock())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// The probe hangs on the silent server; State answers meanwhile.
	got := make(chan online.ProbeState)
	go func() { got <- p.State() }()
	select {
	case st := <-got:
		if st.Known {
			t.Fatalf("state %+v known while the first probe still runs", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("State blocked on a probe in progress")
	}
}
