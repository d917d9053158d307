package offline

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pingid-ssh/pingid-ssh/config"
)

// ErrLockedOut is returned by CheckAttempt when the user is locked out; the code was not
// checked.
var ErrLockedOut = errors.New("locked out after too many wrong codes")

// ErrChallengeReused is returned by CheckAttempt for a challenge that was already checked
// for this user; the code was not checked and no failure was counted. Show a new challenge.
var ErrChallengeReused = errors.New("challenge already used")

const (
	// maxStateSize bounds what is read of a lockout state file.
	maxStateSize = 16 << 10
	// recentChallenges is how many checked challenges per user are remembered to refuse
	// their reuse. Fresh 12-digit challenges repeat by chance about once in 10^12, so a
	// short memory is enough to stop a replay of the ones just shown.
	recentChallenges = 32
	// lockWait bounds the wait for another process's lock on a user's state; holders keep
	// it for the time of a few HMACs and a write.
	lockWait = 10 * time.Second
)

// attemptState is the content of a user's lockout state file.
type attemptState struct {
	Failures    int       `json:"failures"`
	LockedUntil time.Time `json:"locked_until,omitzero"`
	Recent      []string  `json:"recent,omitempty"` // SHA-256 (hex) of checked challenges
}

// refresh ends an expired lockout and shortens one that lies further ahead than a full
// lockout (the clock was set back, or the file was tampered with). It reports whether the
// shortened lockout must be written back so that it is not shortened anew from every later
// "now"; an ended lockout need not be.
func (st *attemptState) refresh(now time.Time, lockout time.Duration) (write bool) {
	if st.LockedUntil.IsZero() {
		return false
	}
	if !now.Before(st.LockedUntil) {
		st.Failures, st.LockedUntil = 0, time.Time{}
		return false
	}
	if limit := now.Add(lockout); st.LockedUntil.After(limit) {
		st.LockedUntil = limit
		return true
	}
	return false
}

func (st *attemptState) locked(now time.Time) bool {
	return !st.LockedUntil.IsZero() && now.Before(st.LockedUntil)
}

// fail counts one failure and starts the lockout when the limit is reached.
func (st *attemptState) fail(now time.Time, max int, lockout time.Duration) bool {
	st.Failures++
	if st.Failures >= max && !st.locked(now) {
		st.LockedUntil = now.Add(lockout)
	}
	return st.locked(now)
}

// Locked reports whether user is locked out now, and until when.
func (s *Store) Locked(user string) (bool, time.Time, error) {
	var locked bool
	var until time.Time
	err := s.withState(user, false, func(st *attemptState, now time.Time) (bool, error) {
		locked, until = st.locked(now), st.LockedUntil
		return false, nil
	})
	if err != nil {
		return false, time.Time{}, fmt.Errorf("lockout: %w", err)
	}
	if !locked {
		until = time.Time{}
	}
	return locked, until, nil
}

// Failures reports how many wrong codes are counted for user since the last success or the
// end of the last lockout.
func (s *Store) Failures(user string) (int, error) {
	var n int
	err := s.withState(user, false, func(st *attemptState, now time.Time) (bool, error) {
		n = st.Failures
		return false, nil
	})
	if err != nil {
		return 0, fmt.Errorf("lockout: %w", err)
	}
	return n, nil
}

// Fail counts one failure for user under the file lock, and reports whether the user is
// locked out afterwards. Failures counted while locked out still count but do not extend
// the lockout.
func (s *Store) Fail(user string) (locked bool, err error) {
	err = s.withState(user, true, func(st *attemptState, now time.Time) (bool, error) {
		locked = st.fail(now, s.maxAttempts, s.lockout)
		return true, nil
	})
	if err != nil {
		return false, fmt.Errorf("lockout: %w", err)
	}
	if locked {
		s.log.Warn().Str("user", user).Msg("offline lockout")
	}
	return locked, nil
}

// Reset clears the user's failure count and any lockout.
func (s *Store) Reset(user string) error {
	err := s.withState(user, false, func(st *attemptState, now time.Time) (bool, error) {
		changed := st.Failures != 0 || !st.LockedUntil.IsZero()
		st.Failures, st.LockedUntil = 0, time.Time{}
		return changed, nil
	})
	if err != nil {
		return fmt.Errorf("lockout: %w", err)
	}
	return nil
}

// CheckAttempt verifies code against devs for challenge, all under the user's file lock, so
// that parallel logins in any number of goroutines and processes never check more codes than
// offline_max_attempts allows:
//
//   - a locked-out user gets ErrLockedOut and the code is not checked;
//   - a challenge already checked for this user gets ErrChallengeReused, unchecked and
//     uncounted: every challenge is single use, success or not;
//   - a right code returns true and clears the failure count;
//   - a wrong code returns false with a nil error and counts one failure, which may start
//     the lockout (Locked tells).
//
// Any error reading or writing the state returns false: it fails closed.
func (s *Store) CheckAttempt(user string, devs []Device, challenge, code string) (bool, error) {
	challenge = NormalizeCode(challenge)
	sum := sha256.Sum256([]byte(user + "\x00" + challenge))
	tag := hex.EncodeToString(sum[:16])

	var ok, lockedNow bool
	var device string
	err := s.withState(user, true, func(st *attemptState, now time.Time) (bool, error) {
		if st.locked(now) {
			return false, ErrLockedOut
		}
		for _, r := range st.Recent {
			if r == tag {
				return false, ErrChallengeReused
			}
		}
		st.Recent = append(st.Recent, tag)
		if len(st.Recent) > recentChallenges {
			st.Recent = st.Recent[len(st.Recent)-recentChallenges:]
		}

		device, ok = VerifyCode(devs, challenge, code)
		if ok {
			st.Failures, st.LockedUntil = 0, time.Time{}
		} else {
			lockedNow = st.fail(now, s.maxAttempts, s.lockout)
		}
		return true, nil
	})
	switch {
	case errors.Is(err, ErrLockedOut):
		s.log.Info().Str("user", user).Msg("offline code refused: locked out")
		return false, ErrLockedOut
	case errors.Is(err, ErrChallengeReused):
		s.log.Warn().Str("user", user).Msg("offline code refused: challenge reused")
		return false, ErrChallengeReused
	case err != nil:
		s.log.Error().Str("user", user).Err(err).Msg("offline code refused: lockout state")
		return false, fmt.Errorf("check attempt: %w", err)
	}

	ev := s.log.Info().Str("user", user).Bool("ok", ok)
	if ok {
		ev = ev.Str("device", device)
	}
	ev.Msg("offline code checked")
	if lockedNow {
		s.log.Warn().Str("user", user).Msg("offline lockout")
	}
	return ok, nil
}

// withState runs fn on the user's lockout state under an exclusive lock on the state file.
// When fn reports a change, the state is written back before the lock is released. With
// create false, a missing file or directory is an empty state and nothing is created
// unless fn changes it.
func (s *Store) withState(user string, create bool,
	fn func(st *attemptState, now time.Time) (bool, error)) error {
	if err := config.CheckUserName(user); err != nil {
		return err
	}
	path := filepath.Join(s.stateDir, user)

	f, err := s.openState(path, create)
	if err != nil {
		if !create && errors.Is(err, errMissing) {
			var st attemptState
			changed, err := fn(&st, s.now())
			if err != nil || !changed {
				return err
			}
			// Only a change to an empty state needs a file; open it for real.
			return s.withState(user, true, fn)
		}
		return err
	}
	defer f.Close()

	if err := lockFile(f, lockWait); err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	// Closing the file releases the lock.

	now := s.now()
	st, repaired, err := s.readState(f, now)
	if err != nil {
		return err
	}
	if st.refresh(now, s.lockout) {
		repaired = true
	}

	changed, err := fn(&st, now)
	if err != nil && !repaired {
		return err
	}
	if changed || repaired {
		if werr := writeState(f, st); werr != nil {
			return werr
		}
	}
	return err
}

// openState opens the state file read-write without following symlinks and checks it.
func (s *Store) openState(path string, create bool) (*os.File, error) {
	flags := unix.O_RDWR
	if create {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create state directory: %w", err)
		}
		flags |= unix.O_CREAT
	}
	f, _, err := s.own.openFile(path, flags)
	return f, err
}

// readState parses the state file. A file that cannot be parsed is logged and replaced
// (repaired is true) by a fresh full lockout: that fails closed, and heals itself when the
// lockout ends.
func (s *Store) readState(f *os.File, now time.Time) (st attemptState, repaired bool,
	err error) {
	data, err := io.ReadAll(io.LimitReader(f, maxStateSize+1))
	if err != nil {
		return attemptState{}, false, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return st, false, nil
	}
	if len(data) > maxStateSize || json.Unmarshal(data, &st) != nil || st.Failures < 0 {
		s.log.Warn().Str("path", f.Name()).Msg("lockout state unparsable; locking out")
		return attemptState{Failures: s.maxAttempts, LockedUntil: now.Add(s.lockout)}, true, nil
	}
	return st, false, nil
}

// writeState replaces the content of the locked state file in place (the lock belongs to
// this open file, so the file cannot be renamed over) and syncs it.
func writeState(f *os.File, st attemptState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode lockout state: %w", err)
	}
	data = append(data, '\n')
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("truncate %s: %w", f.Name(), err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	return nil
}

// lockFile takes an exclusive flock on f, polling so that the wait is bounded.
func lockFile(f *os.File, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	delay := time.Millisecond
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still locked by another process after %s", wait)
		}
		time.Sleep(delay)
		delay = min(2*delay, 20*time.Millisecond)
	}
}
