// Package watcher reloads configuration and policy when files under a set of directories
// change.
//
// It watches directories, never single files: an editor that writes a new file and renames it
// over the old one, or a Kubernetes volume that swaps its "..data" symlink, leaves a watch on
// the old file pointing at an inode nobody uses any more. A watch on the directory sees all of
// these. Changes are debounced so that a burst of writes costs one reload. The reload itself
// (parse and compile everything aside, swap it in only if valid) belongs to the caller; the
// watcher only decides when to run it and logs its outcome.
package watcher

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/rs/zerolog"
)

// Defaults for the zero values of Options.
const (
	DefaultDebounce = 200 * time.Millisecond
	DefaultRetry    = time.Second
	// maxDelayFactor bounds how long a continuous stream of changes can postpone a reload,
	// in units of the debounce interval, when Options.MaxDelay is zero.
	maxDelayFactor = 10
)

// ErrClosed is returned by Run when the watcher was closed.
var ErrClosed = errors.New("watcher: closed")

// Options configure a Watcher. Reload and at least one directory are required.
type Options struct {
	// Dirs are the directories to watch. They are made absolute and deduplicated. Each must
	// exist when New is called; one that is deleted or renamed away later is looked for every
	// Retry and watched again when it reappears, followed by a reload.
	Dirs []string

	// Debounce is how long changes must have settled before a reload (default 200ms).
	Debounce time.Duration

	// MaxDelay bounds how long a continuous stream of changes can postpone a reload
	// (default ten times Debounce).
	MaxDelay time.Duration

	// Retry is how often a vanished directory is looked for (default 1s).
	Retry time.Duration

	// Reload builds the new set and swaps it in. An error means the old set was kept. It is
	// called from the Run goroutine only, never concurrently with itself.
	Reload func() error

	// Log receives the watcher's events; a "component" field is added.
	Log zerolog.Logger

	// Clock drives the debounce and retry timers (default SystemClock).
	Clock Clock

	// Relevant reports whether a change to path may matter; nil means every change does.
	// Changes to a watched directory itself always count. Filtering keeps files that merely
	// share a directory (a log file beside the config, say) from causing reloads.
	Relevant func(path string) bool
}

// Watcher calls Reload after changes under any of the watched directories settle, and when
// Trigger is called. Create it with New, run it with Run (once). Trigger and Close are safe
// for concurrent use.
type Watcher struct {
	dirs     []string
	debounce time.Duration
	maxDelay time.Duration
	retry    time.Duration
	reloadFn func() error
	relevant func(string) bool
	log      zerolog.Logger
	clock    Clock

	fsw       *fsnotify.Watcher
	trigger   chan struct{}
	running   atomic.Bool
	closeOnce sync.Once
	closeErr  error

	// The fields below are owned by the goroutine running the loop.
	present map[string]bool // watched directory -> a watch is in place
	failing bool            // the last reload failed
	lastErr string          // its error text
}

// New validates opts and puts a watch on every directory, so that changes made after New
// returns are seen by Run. A missing directory, or a path that is not a directory, is an
// error. The caller owns the Watcher and must either Run it or Close it.
func New(opts Options) (*Watcher, error) {
	if opts.Reload == nil {
		return nil, errors.New("watcher: no Reload function")
	}
	dirs, err := cleanDirs(opts.Dirs)
	if err != nil {
		return nil, err
	}

	w := &Watcher{
		dirs:     dirs,
		debounce: opts.Debounce,
		maxDelay: opts.MaxDelay,
		retry:    opts.Retry,
		reloadFn: opts.Reload,
		relevant: opts.Relevant,
		log:      opts.Log.With().Str("component", "watcher").Logger(),
		clock:    opts.Clock,
		trigger:  make(chan struct{}, 1),
		present:  make(map[string]bool, len(dirs)),
	}
	if w.debounce <= 0 {
		w.debounce = DefaultDebounce
	}
	if w.maxDelay <= 0 {
		w.maxDelay = maxDelayFactor * w.debounce
	}
	if w.maxDelay < w.debounce {
		w.maxDelay = w.debounce
	}
	if w.retry <= 0 {
		w.retry = DefaultRetry
	}
	if w.clock == nil {
		w.clock = SystemClock{}
	}

	w.fsw, err = fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watcher: start inotify: %w", err)
	}
	for _, d := range dirs {
		if err := w.fsw.Add(d); err != nil {
			w.fsw.Close()
			return nil, fmt.Errorf("watcher: watch %s: %w", d, err)
		}
		w.present[d] = true
	}
	return w, nil
}

// cleanDirs makes every directory absolute, drops duplicates and checks that each exists.
func cleanDirs(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, errors.New("watcher: no directories to watch")
	}
	seen := make(map[string]bool, len(in))
	out := make([]string, 0, len(in))
	for _, d := range in {
		if d == "" {
			return nil, errors.New("watcher: empty directory name")
		}
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("watcher: %s: %w", d, err)
		}
		if seen[abs] {
			continue
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("watcher: watch %s: %w", abs, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("watcher: watch %s: not a directory", abs)
		}
		seen[abs] = true
		out = append(out, abs)
	}
	return out, nil
}

// Dirs returns the directories being watched, absolute and deduplicated.
func (w *Watcher) Dirs() []string { return append([]string(nil), w.dirs...) }

// Trigger asks for a reload now, without waiting for the debounce (SIGHUP). It never blocks;
// triggers that arrive while one is pending are merged. A trigger before Run starts is kept
// and served when it does.
func (w *Watcher) Trigger() {
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// Close releases the inotify instance. Run returns ErrClosed afterwards. It is safe to call
// more than once and concurrently with Run.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() { w.closeErr = w.fsw.Close() })
	return w.closeErr
}

// Run watches and reloads until ctx is done (it returns ctx.Err()) or the watcher is closed
// (ErrClosed). It may be called once; it closes the watcher when it returns. Reload runs on
// this goroutine.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("watcher: Run called more than once")
	}
	defer w.Close()
	return w.loop(ctx, w.fsw.Events, w.fsw.Errors)
}

// loop is Run's single select over file events, watch errors, the timers, triggers and ctx.
// It takes the channels as arguments so that tests can feed it events directly.
func (w *Watcher) loop(ctx context.Context, events <-chan fsnotify.Event,
	errs <-chan error) error {
	debounce := w.clock.NewTimer(w.debounce)
	debounce.Stop()
	defer debounce.Stop()
	retry := w.clock.NewTimer(w.retry)
	retry.Stop()
	defer retry.Stop()

	var (
		debounceC  <-chan time.Time // nil unless a reload is pending
		retryC     <-chan time.Time // nil unless a directory is missing
		burstStart time.Time
	)
	schedule := func() {
		now := w.clock.Now()
		wait := w.debounce
		if debounceC == nil {
			burstStart = now
			debounceC = debounce.C()
		} else if left := burstStart.Add(w.maxDelay).Sub(now); left < wait {
			wait = max(left, 0)
		}
		debounce.Reset(wait)
	}
	armRetry := func() {
		if retryC == nil {
			retry.Reset(w.retry)
			retryC = retry.C()
		}
	}

	for {
		select {
		case <-ctx.Done():
			return ctx.Err()

		case ev, ok := <-events:
			if !ok {
				return ErrClosed
			}
			if ev.Op == 0 {
				// An event without an operation carries no change.
				continue
			}
			kind := w.dirEvent(ev)
			if kind == dirNone && w.relevant != nil && !w.relevant(ev.Name) {
				continue
			}
			w.log.Debug().Str("path", ev.Name).Str("op", ev.Op.String()).Msg("change")
			switch kind {
			case dirGone:
				armRetry()
			case dirCreated:
				if w.readd() && !w.anyMissing() {
					retryC = nil
					retry.Stop()
				}
			}
			schedule()

		case err, ok := <-errs:
			if !ok {
				return ErrClosed
			}
			// Events may have been lost (a queue overflow most of all): reload to be sure
			// the active set matches the files.
			w.log.Warn().Err(err).Msg("watch error; reloading in case a change was missed")
			schedule()

		case <-debounceC:
			debounceC = nil
			w.reload("change")

		case <-retryC:
			retryC = nil
			if w.readd() {
				schedule()
			}
			if w.anyMissing() {
				armRetry()
			}

		case <-w.trigger:
			if debounceC != nil {
				debounce.Stop()
				debounceC = nil
			}
			w.reload("trigger")
		}
	}
}

// dirKind says what an event means for a watched directory itself.
type dirKind int

const (
	dirNone    dirKind = iota
	dirGone            // a watched directory was deleted or renamed away
	dirCreated         // a missing watched directory was created (seen from a watched parent)
)

// dirEvent updates the bookkeeping of watched directories for ev.
func (w *Watcher) dirEvent(ev fsnotify.Event) dirKind {
	name := filepath.Clean(ev.Name)
	present, watched := w.present[name]
	if !watched {
		return dirNone
	}
	if present && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) {
		w.present[name] = false
		// After a delete or a move inotify has dropped the watch already; after a rename
		// seen only from the parent it has not, and the watch would follow the old inode.
		if err := w.fsw.Remove(name); err != nil && !errors.Is(err, fsnotify.ErrNonExistentWatch) {
			w.log.Debug().Err(err).Str("dir", name).Msg("remove stale watch")
		}
		w.log.Warn().Str("dir", name).
			Msg("watched directory vanished; it is watched again when it reappears")
		return dirGone
	}
	if !present && ev.Has(fsnotify.Create) {
		return dirCreated
	}
	return dirNone
}

// readd puts a watch back on every missing directory that exists again, and reports whether
// any was added.
func (w *Watcher) readd() bool {
	added := false
	for _, d := range w.dirs {
		if w.present[d] {
			continue
		}
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() {
			continue
		}
		if err := w.fsw.Add(d); err != nil {
			w.log.Debug().Err(err).Str("dir", d).Msg("watch again")
			continue
		}
		w.present[d] = true
		added = true
		w.log.Info().Str("dir", d).Msg("watched directory is back")
	}
	return added
}

func (w *Watcher) anyMissing() bool {
	for _, d := range w.dirs {
		if !w.present[d] {
			return true
		}
	}
	return false
}

// reload runs Reload and logs its outcome: a failure once per distinct error, a success after
// failures as "recovered".
func (w *Watcher) reload(reason string) {
	err := w.callReload()
	if err != nil {
		msg := err.Error()
		if w.failing && msg == w.lastErr {
			w.log.Debug().Str("reason", reason).Msg("reload still failing with the same error")
			return
		}
		w.failing, w.lastErr = true, msg
		w.log.Error().Err(err).Str("reason", reason).
			Msg("reload failed; keeping the last good set")
		return
	}
	if w.failing {
		w.failing, w.lastErr = false, ""
		w.log.Info().Str("reason", reason).Msg("recovered")
		return
	}
	w.log.Info().Str("reason", reason).Msg("reloaded")
}

// callReload runs Reload, turning a panic into an error so that a bad file can never take
// down the daemon that holds the last good set.
func (w *Watcher) callReload() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("reload panicked: %v", r)
		}
	}()
	return w.reloadFn()
}
