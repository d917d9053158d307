package watcher

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"

	"github.com/pingid-ssh/pingid-ssh/internal/testlog"
)

// confSet is what the tests reload: the content of one file, standing in for a parsed config.
type confSet struct{ text string }

// confLoader reloads path into cur the way the daemon does: read and validate aside, swap
// only if valid. Content starting with "bad" is invalid.
type confLoader struct {
	path string
	cur  Current[confSet]

	mu    sync.Mutex
	calls int
}

func (l *confLoader) Reload() error {
	l.mu.Lock()
	l.calls++
	l.mu.Unlock()

	data, err := os.ReadFile(l.path)
	if err != nil {
		return fmt.Errorf("read conf: %w", err)
	}
	text := strings.TrimSpace(string(data))
	if strings.HasPrefix(text, "bad") {
		return fmt.Errorf("parse conf: invalid content %q", text)
	}
	l.cur.Swap(&confSet{text: text})
	return nil
}

func (l *confLoader) Calls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}

func (l *confLoader) Text() string {
	if s := l.cur.Load(); s != nil {
		return s.text
	}
	return ""
}

// startRun runs w until the test ends and checks that Run returns.
func startRun(t *testing.T, w *Watcher) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) && !errors.Is(err, ErrClosed) {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return cancel
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRealChanges drives real fsnotify through the ways files change on real hosts. Each
// step is followed by a wait for a reload; the last must make "v2" active.
func TestRealChanges(t *testing.T) {
	plain := func(t *testing.T, etc string) { writeFile(t, filepath.Join(etc, "conf"), "v1") }

	cases := []struct {
		name  string
		setup func(t *testing.T, etc string)
		steps []func(t *testing.T, etc string)
		// keepV1 says the reload after each step but the last must keep "v1" active.
		keepV1 bool
	}{
		{
			name:  "editor write then rename",
			setup: plain,
			steps: []func(*testing.T, string){func(t *testing.T, etc string) {
				writeFile(t, filepath.Join(etc, ".conf.swp"), "v2")
				must(t, os.Rename(filepath.Join(etc, ".conf.swp"), filepath.Join(etc, "conf")))
			}},
		},
		{
			name:   "delete then recreate",
			setup:  plain,
			keepV1: true,
			steps: []func(*testing.T, string){
				func(t *testing.T, etc string) { must(t, os.Remove(filepath.Join(etc, "conf"))) },
				func(t *testing.T, etc string) { writeFile(t, filepath.Join(etc, "conf"), "v2") },
			},
		},
		{
			name:  "in-place truncate and write",
			setup: plain,
			steps: []func(*testing.T, string){func(t *testing.T, etc string) {
				f, err := os.OpenFile(filepath.Join(etc, "conf"), os.O_WRONLY|os.O_TRUNC, 0)
				must(t, err)
				_, err = f.WriteString("v2\n")
				must(t, err)
				must(t, f.Close())
			}},
		},
		{
			name:   "invalid content keeps the last good set",
			setup:  plain,
			keepV1: true,
			steps: []func(*testing.T, string){
				func(t *testing.T, etc string) { writeFile(t, filepath.Join(etc, "conf"), "bad") },
				func(t *testing.T, etc string) { writeFile(t, filepath.Join(etc, "conf"), "v2") },
			},
		},
		{
			name:  "mode change alone is a change",
			setup: plain,
			steps: []func(*testing.T, string){
				func(t *testing.T, etc string) { must(t, os.Chmod(filepath.Join(etc, "conf"), 0o640)) },
				func(t *testing.T, etc string) { writeFile(t, filepath.Join(etc, "conf"), "v2") },
			},
			keepV1: true,
		},
		{
			name: "kubernetes ..data symlink swap",
			setup: func(t *testing.T, etc string) {
				must(t, os.Mkdir(filepath.Join(etc, "..ts1"), 0o755))
				writeFile(t, filepath.Join(etc, "..ts1", "conf"), "v1")
				must(t, os.Symlink("..ts1", filepath.Join(etc, "..data")))
				must(t, os.Symlink("..data/conf", filepath.Join(etc, "conf")))
			},
			steps: []func(*testing.T, string){func(t *testing.T, etc string) {
				must(t, os.Mkdir(filepath.Join(etc, "..ts2"), 0o755))
				writeFile(t, filepath.Join(etc, "..ts2", "conf"), "v2")
				must(t, os.Symlink("..ts2", filepath.Join(etc, "..data_tmp")))
				must(t, os.Rename(filepath.Join(etc, "..data_tmp"), filepath.Join(etc, "..data")))
				must(t, os.RemoveAll(filepath.Join(etc, "..ts1")))
			}},
		},
		{
			name:   "watched directory deleted and recreated",
			setup:  plain,
			keepV1: true,
			steps: []func(*testing.T, string){
				func(t *testing.T, etc string) { must(t, os.RemoveAll(etc)) },
				func(t *testing.T, etc string) {
					must(t, os.Mkdir(etc, 0o755))
					writeFile(t, filepath.Join(etc, "conf"), "v2")
				},
			},
		},
		{
			name:   "watched directory renamed away and replaced",
			setup:  plain,
			keepV1: true,
			steps: []func(*testing.T, string){
				func(t *testing.T, etc string) { must(t, os.Rename(etc, etc+".old")) },
				func(t *testing.T, etc string) {
					must(t, os.Mkdir(etc+".new", 0o755))
					writeFile(t, filepath.Join(etc+".new", "conf"), "v2")
					must(t, os.Rename(etc+".new", etc))
				},
			},
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			etc := filepath.Join(t.TempDir(), "etc")
			must(t, os.Mkdir(etc, 0o755))
			tc.setup(t, etc)
			l := &confLoader{path: filepath.Join(etc, "conf")}
			must(t, l.Reload())

			w, err := New(Options{
				Dirs:     []string{etc},
				Debounce: 10 * time.Millisecond,
				Retry:    20 * time.Millisecond,
				Reload:   l.Reload,
				Log:      zerolog.Nop(),
			})
			must(t, err)
			startRun(t, w)

			for i, step := range tc.steps {
				before := l.Calls()
				step(t, etc)
				if i == len(tc.steps)-1 {
					break
				}
				waitFor(t, fmt.Sprintf("a reload after step %d", i+1),
					func() bool { return l.Calls() > before })
				if tc.keepV1 && l.Text() != "v1" {
					t.Fatalf("after step %d active set is %q, want v1 kept", i+1, l.Text())
				}
			}
			waitFor(t, "v2 to become active", func() bool { return l.Text() == "v2" })
		})
	}
}

// TestRealBurst writes 50 times in a row with a frozen clock: the debounce timer keeps being
// pushed back, so the burst costs one reload once time moves, and that reload sees the end.
func TestRealBurst(t *testing.T) {
	etc := t.TempDir()
	conf := filepath.Join(etc, "conf")
	writeFile(t, conf, "v0")
	l := &confLoader{path: conf}
	clock := newFakeClock()
	w, err := New(Options{Dirs: []string{etc}, Debounce: 200 * time.Millisecond,
		Reload: l.Reload, Log: zerolog.Nop(), Clock: clock})
	must(t, err)
	startRun(t, w)

	for i := 1; i <= 50; i++ {
		f, err := os.OpenFile(conf, os.O_WRONLY|os.O_TRUNC, 0)
		must(t, err)
		_, err = fmt.Fprintf(f, "v%d\n", i)
		must(t, err)
		must(t, f.Close())
	}
	waitFor(t, "the debounce timer to be armed", func() bool { return clock.Armed() > 0 })
	if got := l.Calls(); got != 0 {
		t.Fatalf("%d reloads while the clock was frozen, want 0", got)
	}

	// Events still queued in the kernel when the clock moves can start a second window;
	// step time a fixed number of rounds and bound the total.
	for round := 0; round < 20; round++ {
		clock.Advance(200 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
	waitFor(t, "a reload", func() bool { return l.Calls() >= 1 })
	t.Logf("%d reloads for 50 writes", l.Calls())
	if got := l.Calls(); got > 5 {
		t.Errorf("%d reloads for a burst of 50 writes, want at most 5", got)
	}
	waitFor(t, "the last write to be active", func() bool { return l.Text() == "v50" })
}

// feed runs the loop on channels the test controls. Sending on events returns only once
// the loop took the event; a following zero event works as a barrier: when its send
// returns, the previous event has been handled.
type feed struct {
	w      *Watcher
	clock  *fakeClock
	log    *testlog.Buffer
	events chan fsnotify.Event
	errs   chan error
}

func newFeed(t *testing.T, opts Options) *feed {
	t.Helper()
	f := &feed{clock: newFakeClock(), log: &testlog.Buffer{},
		events: make(chan fsnotify.Event), errs: make(chan error)}
	opts.Dirs = []string{t.TempDir()}
	opts.Clock = f.clock
	opts.Log = zerolog.New(f.log).Level(zerolog.DebugLevel)
	w, err := New(opts)
	must(t, err)
	f.w = w

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.loop(ctx, f.events, f.errs)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		w.Close()
	})
	return f
}

// change sends one file event and waits until the loop has handled it.
func (f *feed) change(name string) {
	f.events <- fsnotify.Event{Name: name, Op: fsnotify.Write}
	f.events <- fsnotify.Event{}
}

// counter is a Reload that counts calls and returns scripted errors.
type counter struct {
	mu     sync.Mutex
	calls  int
	script []error
}

func (c *counter) Reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if len(c.script) > 0 {
		err := c.script[0]
		c.script = c.script[1:]
		return err
	}
	return nil
}

func (c *counter) Calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls
}

func TestDebounce(t *testing.T) {
	const debounce = 200 * time.Millisecond

	t.Run("burst of 50 events is one reload", func(t *testing.T) {
		c := &counter{}
		f := newFeed(t, Options{Debounce: debounce, Reload: c.Reload})
		for i := 0; i < 50; i++ {
			f.change(fmt.Sprintf("/etc/pingid/f%d", i))
		}
		f.clock.Advance(debounce - time.Millisecond)
		if f.clock.Fired() != 0 || c.Calls() != 0 {
			t.Fatalf("fired before the debounce elapsed")
		}
		f.clock.Advance(time.Millisecond)
		waitFor(t, "the reload", func() bool { return c.Calls() == 1 })

		// A forced reload now must be the second and last one: the burst left nothing behind.
		f.w.Trigger()
		waitFor(t, "the triggered reload", func() bool { return c.Calls() >= 2 })
		if got := c.Calls(); got != 2 {
			t.Errorf("calls = %d, want 2", got)
		}
	})

	t.Run("a later event pushes the reload back", func(t *testing.T) {
		c := &counter{}
		f := newFeed(t, Options{Debounce: debounce, Reload: c.Reload})
		f.change("/etc/pingid/a")
		f.clock.Advance(150 * time.Millisecond)
		f.change("/etc/pingid/b")
		f.clock.Advance(150 * time.Millisecond)
		if f.clock.Fired() != 0 {
			t.Fatalf("reload 300ms after the first event, only 150ms after the last")
		}
		f.clock.Advance(50 * time.Millisecond)
		waitFor(t, "the reload", func() bool { return c.Calls() == 1 })
	})

	t.Run("a continuous stream is cut at MaxDelay", func(t *testing.T) {
		c := &counter{}
		f := newFeed(t, Options{Debounce: debounce, MaxDelay: time.Second, Reload: c.Reload})
		for i := 0; i < 8 && f.clock.Fired() == 0; i++ {
			f.change("/etc/pingid/a")
			f.clock.Advance(150 * time.Millisecond)
		}
		if f.clock.Fired() == 0 {
			t.Fatalf("no reload after 1.2s of changes every 150ms with MaxDelay 1s")
		}
		waitFor(t, "the reload", func() bool { return c.Calls() == 1 })
	})

	t.Run("a watch error schedules a reload", func(t *testing.T) {
		c := &counter{}
		f := newFeed(t, Options{Debounce: debounce, Reload: c.Reload})
		f.errs <- fsnotify.ErrEventOverflow
		f.events <- fsnotify.Event{}
		f.clock.Advance(debounce)
		waitFor(t, "the reload", func() bool { return c.Calls() == 1 })
		if count(t, f.log, "warn", "watch error; reloading in case a change was missed") != 1 {
			t.Errorf("watch error not logged")
		}
	})
}

// TestFailingReload checks that the loop keeps going when reloads fail and that each
// distinct error is logged once.
func TestFailingReload(t *testing.T) {
	errA := errors.New("policy.d/a.rego:3: rego_parse_error")
	errB := errors.New("pingid.conf:7: invalid fail_mode")
	c := &counter{script: []error{errA, errA, errA, errB, nil, nil, errA}}
	f := newFeed(t, Options{Debounce: time.Millisecond, Reload: c.Reload})

	for i := 1; i <= 7; i++ {
		f.change("/etc/pingid/pingid.conf")
		f.clock.Advance(time.Millisecond)
		waitFor(t, fmt.Sprintf("reload %d", i), func() bool { return c.Calls() == i })
	}
	f.events <- fsnotify.Event{} // the last reload's logging is done

	const failed = "reload failed; keeping the last good set"
	if got := count(t, f.log, "error", failed); got != 3 {
		t.Errorf("%d error lines for A,A,A,B,ok,ok,A; want 3 (A, B, A again)", got)
	}
	if got := count(t, f.log, "info", "recovered"); got != 1 {
		t.Errorf("%d recovered lines, want 1", got)
	}
	if got := count(t, f.log, "info", "reloaded"); got != 1 {
		t.Errorf("%d reloaded lines, want 1", got)
	}
}

func TestReloadPanicIsAnError(t *testing.T) {
	calls := 0
	var mu sync.Mutex
	reload := func() error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			panic("index out of range")
		}
		return nil
	}
	f := newFeed(t, Options{Debounce: time.Millisecond, Reload: reload})
	f.w.Trigger()
	waitFor(t, "the first reload", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls == 1
	})
	f.change("/etc/pingid/pingid.conf")
	f.clock.Advance(time.Millisecond)
	waitFor(t, "the second reload", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls == 2
	})
	f.events <- fsnotify.Event{}

	var found bool
	for _, e := range f.log.Entries(t) {
		if e["level"] == "error" && strings.Contains(fmt.Sprint(e["error"]), "panicked") {
			found = true
		}
	}
	if !found {
		t.Errorf("panic not logged as a reload error")
	}
	if count(t, f.log, "info", "recovered") != 1 {
		t.Errorf("no recovery after the panic")
	}
}

func TestTrigger(t *testing.T) {
	t.Run("reloads at once without waiting for time", func(t *testing.T) {
		c := &counter{}
		f := newFeed(t, Options{Debounce: time.Hour, Reload: c.Reload})
		f.w.Trigger()
		waitFor(t, "the reload", func() bool { return c.Calls() == 1 })
	})

	t.Run("replaces a pending debounced reload", func(t *testing.T) {
		c := &counter{}
		f := newFeed(t, Options{Debounce: time.Hour, Reload: c.Reload})
		f.change("/etc/pingid/pingid.conf")
		if f.clock.Armed() != 1 {
			t.Fatalf("debounce timer not armed")
		}
		f.w.Trigger()
		waitFor(t, "the reload", func() bool { return c.Calls() == 1 })
		f.events <- fsnotify.Event{}
		if f.clock.Armed() != 0 {
			t.Errorf("debounce timer still armed after a triggered reload")
		}
	})

	t.Run("before Run is served when Run starts", func(t *testing.T) {
		c := &counter{}
		w, err := New(Options{Dirs: []string{t.TempDir()}, Reload: c.Reload,
			Clock: newFakeClock()})
		must(t, err)
		w.Trigger()
		w.Trigger()
		startRun(t, w)
		waitFor(t, "the reload", func() bool { return c.Calls() == 1 })
	})
}

func TestRunStops(t *testing.T) {
	t.Run("on context cancel", func(t *testing.T) {
		w, err := New(Options{Dirs: []string{t.TempDir()}, Reload: func() error { return nil }})
		must(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		if err := w.Run(context.Background()); err == nil {
			t.Errorf("second Run succeeded")
		}
	})

	t.Run("on Close", func(t *testing.T) {
		w, err := New(Options{Dirs: []string{t.TempDir()}, Reload: func() error { return nil }})
		must(t, err)
		done := make(chan error, 1)
		go func() { done <- w.Run(context.Background()) }()
		must(t, w.Close())
		select {
		case err := <-done:
			if !errors.Is(err, ErrClosed) {
				t.Errorf("Run = %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after Close")
		}
		must(t, w.Close())
	})
}

func TestNew(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	writeFile(t, file, "x")
	ok := func() error { return nil }

	cases := []struct {
		name    string
		opts    Options
		wantErr string
		want    []string
	}{
		{name: "no dirs", opts: Options{Reload: ok}, wantErr: "no directories"},
		{name: "no reload", opts: Options{Dirs: []string{dir}}, wantErr: "no Reload"},
		{name: "empty name", opts: Options{Dirs: []string{""}, Reload: ok},
			wantErr: "empty directory name"},
		{name: "missing dir", opts: Options{Dirs: []string{filepath.Join(dir, "nope")}, Reload: ok},
			wantErr: "no such file or directory"},
		{name: "file, not dir", opts: Options{Dirs: []string{file}, Reload: ok},
			wantErr: "not a directory"},
		{name: "duplicates merged",
			opts: Options{Dirs: []string{dir, dir + "/", dir + "/./", dir}, Reload: ok},
			want: []string{dir}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := New(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			must(t, err)
			defer w.Close()
			if got := w.Dirs(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Dirs = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCurrent(t *testing.T) {
	var c Current[confSet]
	if c.Load() != nil {
		t.Fatalf("zero Current is not empty")
	}
	first := &confSet{text: "a"}
	if old := c.Swap(first); old != nil {
		t.Errorf("first Swap returned %v", old)
	}
	if old := c.Swap(&confSet{text: "b"}); old != first {
		t.Errorf("Swap returned %v, want the first value", old)
	}
	if got := NewCurrent(first).Load(); got != first {
		t.Errorf("NewCurrent(v).Load() = %v", got)
	}

	// Readers racing a writer see whole values only (checked by -race).
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				if v := c.Load(); v == nil || v.text == "" {
					t.Errorf("reader saw %v", v)
					return
				}
			}
		}()
	}
	for j := 0; j < 1000; j++ {
		c.Swap(&confSet{text: fmt.Sprint(j)})
	}
	wg.Wait()
}

// TestNestedDirBack checks that a watched directory inside another watched directory is
// watched again as soon as its parent reports it created, without waiting for the retry.
func TestNestedDirBack(t *testing.T) {
	etc := t.TempDir()
	policy := filepath.Join(etc, "policy.d")
	must(t, os.Mkdir(policy, 0o755))
	rego := filepath.Join(policy, "a.rego")
	writeFile(t, rego, "v1")
	l := &confLoader{path: rego}
	must(t, l.Reload())

	w, err := New(Options{
		Dirs:     []string{etc, policy},
		Debounce: 10 * time.Millisecond,
		Retry:    time.Hour, // only the parent's create event can bring the watch back
		Reload:   l.Reload,
		Log:      zerolog.Nop(),
	})
	must(t, err)
	startRun(t, w)

	before := l.Calls()
	must(t, os.RemoveAll(policy))
	waitFor(t, "a reload after the removal", func() bool { return l.Calls() > before })
	if l.Text() != "v1" {
		t.Fatalf("active set %q after the removal, want v1 kept", l.Text())
	}

	must(t, os.Mkdir(policy, 0o755))
	writeFile(t, rego, "v2")
	waitFor(t, "v2 to become active", func() bool { return l.Text() == "v2" })

	// The new directory itself is watched: an in-place write in it is seen.
	f, err := os.OpenFile(rego, os.O_WRONLY|os.O_TRUNC, 0)
	must(t, err)
	_, err = f.WriteString("v3\n")
	must(t, err)
	must(t, f.Close())
	waitFor(t, "v3 to become active", func() bool { return l.Text() == "v3" })
}

func TestIrrelevantChangesAreIgnored(t *testing.T) {
	c := &counter{}
	f := newFeed(t, Options{Reload: c.Reload, Debounce: time.Second,
		Relevant: func(path string) bool { return filepath.Base(path) == "pingid.conf" }})

	for i := 0; i < 10; i++ {
		f.change("/etc/pingid/daemon.log")
	}
	if n := f.clock.Armed(); n != 0 {
		t.Fatalf("%d timers armed by changes to an irrelevant file", n)
	}
	f.change("/etc/pingid/pingid.conf")
	if n := f.clock.Armed(); n != 1 {
		t.Fatalf("%d timers armed after a config change, want 1", n)
	}
	f.clock.Advance(time.Second)
	waitFor(t, "the reload", func() bool { return c.Calls() == 1 })
}
